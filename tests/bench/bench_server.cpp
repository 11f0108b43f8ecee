// bench/bench_server serves the `bench` stream of the wire-protocol benchmark as its specification
// says (input {n, size, intervalUs}; chunks {i, t, p}; stream_end with totalChunks n), in memory
// and on Redis, so the benchmark cannot rot. Read through River's own HTTP client.

#include <river/http/client.hpp>

#include "support/bounded.hpp"
#include "support/child_process.hpp"
#include "support/redis_server.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

using namespace river::test;
using json = nlohmann::json;

namespace bench_test {

struct bench_chunk {
  std::int64_t i = -1;
  std::int64_t t = 0;
  std::string p;
  friend bool operator==(const bench_chunk&, const bench_chunk&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(bench_chunk, i, t, p)

}  // namespace bench_test

namespace {

using bench_test::bench_chunk;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One bench_server on a free loopback port, with `extra` arguments.
struct bench_instance {
  explicit bench_instance(std::vector<std::string> extra) : process(args(std::move(extra))) {
    auto listening = process.wait_for_line("listening on http://127.0.0.1:");
    REQUIRE(listening);
    url = "http://127.0.0.1:" + *listening + "/api/river";
  }
  static std::vector<std::string> args(std::vector<std::string> extra) {
    std::vector<std::string> a = {RIVER_BENCH_SERVER, "--host", "127.0.0.1", "--port", "0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  child_process process;
  std::string url;
};

// Checks every event of a bench run field by field, from chunk `first` on.
asio::awaitable<void> check_run(river::http::basic_event_stream<bench_chunk>& events, int n, int size, int first,
                                std::int64_t started_us) {
  int next = first;
  bool ended = false;
  while (auto ev = co_await events.next()) {
    if (const auto* c = ev->chunk()) {
      CHECK(c->i == next);
      CHECK(c->t >= started_us);
      CHECK(c->t <= now_us());
      CHECK(c->p == std::string(static_cast<std::size_t>(size), 'x'));
      ++next;
    } else if (const auto* end = ev->get_if<river::events::end>()) {
      CHECK(end->total_chunks == static_cast<std::uint64_t>(n));
      ended = true;
    } else {
      CHECK(ev->kind() == river::event_kind::start);
    }
  }
  CHECK(next == n);
  CHECK(ended);
}

void serve_bench(bench_instance& server) {
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        river::http::client c(io.get_executor(), server.url);
        const auto started = now_us();
        json input = {{"n", 50}, {"size", 100}, {"intervalUs", 1000}};
        auto run = (co_await c.start<bench_chunk>("bench", input)).value();
        // Read the first half live, then resume from there and read the rest.
        std::optional<std::string> position;
        for (int i = 0; i < 26; ++i) {
          auto ev = co_await run.next();
          REQUIRE(ev);
          position = ev->position;
        }
        auto resumed = (co_await c.resume<bench_chunk>(run.resumption_token(), position)).value();
        co_await check_run(resumed, 50, 100, 25, started);
        co_await check_run(run, 50, 100, 25, started);
        // A burst with no pause and no payload, and defaults for size and interval.
        json burst = {{"n", 2000}};
        auto fast = (co_await c.start<bench_chunk>("bench", burst)).value();
        co_await check_run(fast, 2000, 0, 0, started);
        // Bad input is refused with the field named.
        json bad = {{"n", 1}, {"size", -1}};
        auto refused = co_await c.start<bench_chunk>("bench", bad);
        REQUIRE(refused.has_error());
        CHECK(refused.error().context.value("field", "") == "size");
      },
      60s);
  CHECK(server.process.stop(SIGTERM, std::chrono::seconds(5)) == 0);
}

}  // namespace

TEST_CASE("bench_server serves the bench stream from memory", "[bench]") {
  bench_instance server({});
  serve_bench(server);
}

TEST_CASE("bench_server serves the bench stream from Redis", "[bench][redis]") {
  if (!redis_or_skip()) return;
  redis_server redis;
  bench_instance server({"--redis", redis.url()});
  serve_bench(server);
}
