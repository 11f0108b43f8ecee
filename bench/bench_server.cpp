// bench_server: serves the `bench` stream of the wire-protocol benchmark (../shared/bench, see its
// README): input {"n", "size", "intervalUs"}, n chunks {"i", "t", "p"} where `t` is the wall-clock
// time in microseconds at which the chunk is handed to append and `p` is `size` 'x' characters, a
// pause of `intervalUs` between consecutive chunks, then stream_end.
//
//   bench_server [--host H] [--port P] [--threads N] [--redis URL]
//
// Runs are kept in memory (generous limits: the benchmark's big runs must fit) or, with --redis,
// in Redis. The runner appends with a plain `co_await ctx.append(chunk)` and never yields by
// hand: keeping other runs and readers served is River's job. Exits 0 on SIGTERM or SIGINT.

#include <river/http/server.hpp>
#include <river/redis/provider.hpp>
#include <river/river.hpp>

#include "bench_chunk.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace asio = boost::asio;

namespace bench {

struct bench_input {
  std::int64_t n = 0;
  std::int64_t size = 0;
  std::int64_t intervalUs = 0;
};

// Integers in the ranges of the benchmark's specification; the field is named on failure.
inline std::int64_t bounded_integer(const nlohmann::json& j, const char* field, std::int64_t max, bool required) {
  auto it = j.find(field);
  if (it == j.end()) {
    if (required) throw river::invalid_field(field, "is missing");
    return 0;
  }
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > max)
    throw river::invalid_field(field, "must be an integer in [0, " + std::to_string(max) + "]");
  return it->get<std::int64_t>();
}

inline void from_json(const nlohmann::json& j, bench_input& in) {
  if (!j.is_object()) throw river::invalid_field("", "must be an object");
  in.n = bounded_integer(j, "n", 10'000'000, true);
  in.size = bounded_integer(j, "size", std::int64_t{16} << 20, false);
  in.intervalUs = bounded_integer(j, "intervalUs", 60'000'000, false);
}

}  // namespace bench

namespace {

std::int64_t realtime_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Where a pause starts: the time read when the first runner of this turn of the thread's event
// loop woke, shared by every runner woken in the same turn (those whose timers expired together:
// they are queued before the reset this posts). The two baselines do the same (floor.c reads the
// clock once per loop iteration, Node's timers count from libuv's loop time), so runs that are due
// together stay due together and wake the thread once, however long each takes to append.
std::chrono::steady_clock::time_point pause_start(const river::executor& ex) {
  struct turn_clock {
    std::chrono::steady_clock::time_point reading;
    std::atomic<bool> valid{false};
  };
  thread_local turn_clock clock;
  if (!clock.valid.load(std::memory_order_relaxed)) {
    clock.reading = std::chrono::steady_clock::now();
    clock.valid.store(true, std::memory_order_relaxed);
    asio::post(ex, [c = &clock] { c->valid.store(false, std::memory_order_relaxed); });
  }
  return clock.reading;
}

asio::awaitable<void> run_bench(river::run_context<bench::bench_input, bench::bench_chunk>& ctx) {
  const auto& in = ctx.input();
  bench::bench_chunk chunk;
  chunk.p.assign(static_cast<std::size_t>(in.size), 'x');
  asio::steady_timer pause(ctx.get_executor());
  for (std::int64_t i = 0; i < in.n; ++i) {
    if (i > 0 && in.intervalUs > 0) {
      pause.expires_at(pause_start(ctx.get_executor()) + std::chrono::microseconds(in.intervalUs));
      co_await pause.async_wait(asio::use_awaitable);
    }
    chunk.i = i;
    chunk.t = realtime_us();
    co_await ctx.append(chunk);
  }
}

constexpr std::string_view usage_text =
    "usage: bench_server [--host H] [--port P] [--threads N] [--redis URL]\n"
    "  --host H      address to listen on (default 127.0.0.1)\n"
    "  --port P      port to listen on; 0 picks a free one (default 8080)\n"
    "  --threads N   I/O threads (default 1)\n"
    "  --redis URL   keep runs in Redis instead of in memory\n";

template <class T>
bool parse_number(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

int main(int argc, char** argv) {
  river::http::server_options options;
  river::http::run_options run;
  run.grace = std::chrono::seconds(1);  // the benchmark stops servers within 5 s
  std::optional<std::string> redis_url;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::cout << usage_text, 0;
    if (i + 1 >= argc) return std::cerr << usage_text, 2;
    const std::string_view value = argv[++i];
    if (arg == "--host") options.address = std::string(value);
    else if (arg == "--port") { if (!parse_number(value, options.port)) return std::cerr << usage_text, 2; }
    else if (arg == "--threads") { if (!parse_number(value, run.threads) || run.threads == 0) return std::cerr << usage_text, 2; }
    else if (arg == "--redis") redis_url = std::string(value);
    else return std::cerr << usage_text, 2;
  }
  if (redis_url && !river::redis::valid_url(*redis_url)) {
    std::cerr << "bench_server: not a Redis URL: " << *redis_url << "\n";
    return 2;
  }
  run.on_listening = [](const river::http::server& s) {
    std::cout << "listening on http://" << s.local_endpoint() << std::endl;
  };

  // The load generator is one client that starts thousands of runs at once: no per-client limits.
  options.max_runs_per_client = 0;
  options.endpoint.start_rate_per_client.per_second = 0;

  // Every run of the benchmark must fit: its big runs hold 8 MiB each, 50 at a time.
  river::memory::config memory;
  memory.max_bytes = std::size_t{8} << 30;
  memory.max_run_bytes = std::size_t{1} << 30;
  memory.max_runs = 1'000'000;
  memory.retention = std::chrono::minutes(5);

  return river::http::run_server(
      [&](const river::executor& ex) {
        auto bench = river::stream<bench::bench_input, bench::bench_chunk>().runner(run_bench);
        if (redis_url) {
          river::redis::config cfg;
          cfg.url = *redis_url;
          cfg.storage_id = "bench";
          bench.provider(std::make_shared<river::redis::provider>(ex, cfg));
        } else {
          bench.provider(std::make_shared<river::memory::provider>(memory));
        }
        river::router routes;
        routes.add("bench", std::move(bench));
        return routes;
      },
      options, std::move(run));
}
