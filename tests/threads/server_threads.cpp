// The server on four I/O threads, with clients that start, resume and cancel runs at once and a
// shutdown in the middle of it all: built with ThreadSanitizer in CI (scripts/test.sh), where any
// data race fails the test; in the other builds it checks what every client got.

#include <river/http/server.hpp>
#include <river/memory/provider.hpp>
#include <river/redis/provider.hpp>

#include "http/server_fixture.hpp"
#include "support/redis_server.hpp"
#include "support/sse_parsers.hpp"

#include <atomic>
#include <functional>
#include <thread>

using namespace river::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr int clients = 24;
constexpr int ticks = 60;

struct tally {
  std::atomic<int> finished{0};   // streams that ended with their run's terminal event
  std::atomic<int> cut{0};        // streams cut by the shutdown (no terminal event, no last chunk)
  std::atomic<int> refused{0};    // requests answered 503 once the shutdown began
  std::atomic<int> cancelled{0};  // DELETE answered 202
  std::atomic<int> resumed{0};    // resumes that read the run from its start
  std::atomic<int> dropped{0};    // clients that went away from a run cancelled when unwatched
  int past_middle = 0;            // first-wave clients done with their resume or cancel
  std::function<void()> on_first_wave_ready;
};

bool is_terminal(const json& e) {
  if (e.value("type", "") == "aborted") return true;
  if (!e.contains("special")) return false;
  const auto kind = e["special"].value("RIVER_SPECIAL_TYPE_KEY", "");
  return kind == "stream_end" || kind == "aborted" || kind == "stream_fatal_error";
}

// Checks one stream's events: chunks 0, 1, 2... in order, then at most a terminal event.
void check_stream(const std::vector<json>& events, tally& t, bool complete) {
  REQUIRE_FALSE(events.empty());
  CHECK(events.front()["special"]["RIVER_SPECIAL_TYPE_KEY"] == "stream_start");
  int next = 0;
  for (std::size_t i = 1; i < events.size(); ++i) {
    if (is_terminal(events[i])) {
      CHECK(i + 1 == events.size());
      break;
    }
    INFO("event " << i << ": " << events[i].dump());
    REQUIRE(events[i].value("type", "") == "chunk");
    CHECK(events[i]["chunk"]["n"] == next);
    ++next;
  }
  if (is_terminal(events.back()))
    ++t.finished;
  else if (!complete)
    ++t.cut;
  else
    FAIL("a complete response without its run's terminal event: " << events.back().dump());
}

// One client: starts a run, reads some of it, then resumes it on a second connection (from the
// start), cancels it, only reads on, or goes away, as its number says. A third of the runs are
// cancelled when unwatched (their readers counted across the server's threads).
asio::awaitable<void> client(tcp::endpoint ep, int n, tally& t) {
  auto ex = co_await asio::this_coro::executor;
  http_connection c(ex);
  json input = {{"count", ticks}, {"delay_ms", 5}};
  const auto stream = n % 3 == 0 ? "tick_unwatched" : "tick";
  const auto started = co_await c.open(ep, post_request("/api/river", start_body(stream, input)));
  if (started || c.status() == 503) {
    ++t.refused;
    co_return;
  }
  REQUIRE(c.status() == 200);
  co_await c.read_events(3);
  const auto token = token_of(c.body());
  if (n % 3 == 1) {
    // Resumed while the run goes on: both streams are read to the end side by side.
    http_connection again(ex);
    const auto failed = co_await again.open(ep, get_request("/api/river", token));
    if (n < clients && ++t.past_middle == clients) t.on_first_wave_ready();
    if (!failed && again.status() == 200) {
      co_await again.read_events(5);
      co_await c.read_events(10);
      co_await again.read_to_end();
      check_stream(parse_like_river_client(again.body()), t, again.done());
      ++t.resumed;
    } else {
      ++t.refused;
    }
  } else if (n % 3 == 2) {
    auto reply = co_await exchange(ep, "DELETE /api/river?resumeKey=" + url_encode(token) +
                                           " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    if (reply.status == 202) ++t.cancelled;
    if (n < clients && ++t.past_middle == clients) t.on_first_wave_ready();
  } else {
    if (n < clients && ++t.past_middle == clients) t.on_first_wave_ready();
    if (n % 6 == 3) {
      c.close();
      ++t.dropped;
      co_return;
    }
  }
  co_await c.read_to_end();
  check_stream(parse_like_river_client(c.body()), t, c.done());
}

// Runs the clients against a server on four threads (its provider made on the server's
// executor, as `run_server` does); shuts it down, which closes the provider, while they are busy.
using provider_factory = std::function<std::shared_ptr<river::provider>(river::executor)>;

void run_against(const provider_factory& make_provider) {
  asio::io_context server_io(4);
  auto guard = asio::make_work_guard(server_io);
  river::http::server srv(server_io.get_executor(), test_router(make_provider(server_io.get_executor())),
                          test_options());
  REQUIRE_FALSE(srv.start());
  const auto ep = srv.local_endpoint();
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { server_io.run(); });

  tally t;
  asio::io_context client_io(1);
  for (int i = 0; i < clients; ++i) asio::co_spawn(client_io, client(ep, i, t), asio::detached);
  // Once every client of the first wave has resumed or cancelled its run (which goes on), the
  // server shuts down while a second wave starts.
  std::atomic<bool> shut_down{false};
  t.on_first_wave_ready = [&] {
    asio::co_spawn(server_io, srv.shutdown(20ms), [&](std::exception_ptr, river::result<void>) {
      shut_down = true;
      guard.reset();
    });
    for (int i = 0; i < clients; ++i) asio::co_spawn(client_io, client(ep, clients + i, t), asio::detached);
  };
  client_io.run_for(20s);
  for (auto& th : threads) th.join();

  INFO("finished " << t.finished << ", cut " << t.cut << ", refused " << t.refused << ", cancelled "
                   << t.cancelled << ", resumed " << t.resumed << ", dropped " << t.dropped);
  CHECK(client_io.stopped());
  CHECK(shut_down);
  CHECK(t.finished > 0);
  CHECK(t.finished + t.cut + t.refused + t.dropped >= clients);
  CHECK(t.resumed + t.cancelled > 0);
}

}  // namespace

TEST_CASE("four I/O threads, memory provider: concurrent start, resume, cancel and shutdown", "[threads]") {
  raise_fd_limit();
  run_against([](river::executor) { return std::make_shared<river::memory::provider>(); });
}

TEST_CASE("four I/O threads, Redis provider: concurrent start, resume, cancel and shutdown", "[threads][redis]") {
  if (!redis_or_skip()) return;
  raise_fd_limit();
  redis_server redis;
  run_against([&](river::executor ex) {
    river::redis::config cfg;
    cfg.url = redis.url();
    return std::make_shared<river::redis::provider>(std::move(ex), cfg);
  });
}
