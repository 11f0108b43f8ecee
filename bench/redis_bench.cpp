// Redis provider benchmark: prints numbers, asserts nothing.
//
//   redis_bench [--events N]
//
//   redis_bench --cluster [--events N]
//
// Starts a private redis-server (no persistence) on a free loopback port, then measures:
//   1. durable appends per second with 1, 100 and 1000 concurrent runs, next to redis-benchmark's
//      pipelined XADD on the same server (and prints the ratios);
//   2. the cost of a remote reader per event (process CPU, Redis commands) while its instance
//      follows 10, 1000 and 10000 other runs: it must not grow with them;
//   3. latency from `append` on one provider instance to a reader on another (p50, p99);
//   4. the Redis connections one process uses to serve 1000 live readers.
// With --cluster, Redis Clusters of 1, 2 and 3 masters instead (redis_cluster_bench.cpp).

#include "redis_bench_support.hpp"

#include <river/redis/provider.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <iostream>
#include <memory>
#include <thread>

namespace redis_bench {

// One run streams `events` events, paced, to a reader on another instance that also follows
// `followed` runs that stay idle: the process's CPU and Redis's commands per event.
reader_cost remote_reader_cost(const std::string& url, const std::vector<std::uint16_t>& ports, int followed, int events) {
  reader_cost cost;
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = config_for(url);
    cfg.storage_id = "followed-" + std::to_string(followed);
    cfg.producer_lost_timeout = std::chrono::minutes(10);  // no lease checks while measuring
    cfg.max_running_runs = static_cast<std::size_t>(followed) + 1;  // the idle runs and the streaming one
    river::redis::provider writer_side(io.get_executor(), cfg);
    river::redis::provider reader_side(io.get_executor(), cfg);
    std::vector<river::new_log> idle;
    std::vector<std::unique_ptr<river::log_reader>> readers;
    std::vector<river::record_view> batch;
    for (int i = 0; i < followed; ++i) {
      auto id = "idle-" + std::to_string(i);
      idle.push_back((co_await writer_side.create_log(id, nullptr)).value());
      (void)(co_await idle.back().writer->append(payload, false)).value();
      readers.push_back((co_await reader_side.open_log(cfg.storage_id, id, std::nullopt)).value());
      batch.clear();
      (void)(co_await readers.back()->read(batch, 16, clock_type::time_point::max())).value();
    }
    auto log = (co_await writer_side.create_log("streaming", nullptr)).value();
    (void)(co_await log.writer->append(payload, false)).value();
    auto reader = (co_await reader_side.open_log(cfg.storage_id, "streaming", std::nullopt)).value();
    bool done = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      std::vector<river::record_view> b;
      for (;;) {
        b.clear();
        if ((co_await reader->read(b, 64, clock_type::time_point::max())).value() == river::read_status::end) break;
      }
      done = true;
    }, asio::detached);
    co_await sleep_for(100ms);
    const auto commands0 = redis_commands(ports);
    const auto cpu0 = cpu_seconds();
    for (int i = 0; i < events; ++i) {
      (void)(co_await log.writer->append(payload, i == events - 1)).value();
      co_await sleep_for(200us);
    }
    while (!done) co_await sleep_for(1ms);
    cost.cpu_us = (cpu_seconds() - cpu0) * 1e6 / events;
    cost.commands = static_cast<double>(redis_commands(ports) - commands0 - ports.size()) / events;
    co_await writer_side.close();
    co_await reader_side.close();
  });
  return cost;
}

// Appends `total` events spread over `runs` concurrent runs; returns appends per second.
double append_rate(const std::string& url, int runs, int total, std::size_t wait_replicas) {
  double rate = 0;
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = config_for(url);
    cfg.wait_replicas = wait_replicas;
    river::redis::provider p(io.get_executor(), cfg);
    std::vector<river::new_log> logs;
    for (int r = 0; r < runs; ++r)
      logs.push_back((co_await p.create_log("bench-" + std::to_string(runs) + "-" + std::to_string(r), nullptr)).value());
    const int per_run = total / runs;
    int done = 0;
    // Woken by the last run to finish, not polled: a polling timer would interleave with the runs.
    asio::steady_timer all_done(io, clock_type::time_point::max());
    const auto t0 = clock_type::now();
    for (int r = 0; r < runs; ++r) {
      asio::co_spawn(io, [&, w = logs[static_cast<std::size_t>(r)].writer]() -> asio::awaitable<void> {
        for (int i = 0; i < per_run; ++i) (void)(co_await w->append(payload, i == per_run - 1)).value();
        if (++done == runs) all_done.cancel();
      }, asio::detached);
    }
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    rate = per_run * runs / secs;
    appends_per_write = static_cast<double>(p.get_stats().appends) / static_cast<double>(std::max<std::uint64_t>(1, p.get_stats().writes));
    co_await p.close();
  });
  return rate;
}

}  // namespace redis_bench

using namespace redis_bench;

int main(int argc, char** argv) {
  int events = 200'000;
  bool cluster = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--events" && i + 1 < argc) events = std::atoi(argv[++i]);
    else if (std::string(argv[i]) == "--cluster") cluster = true;
  }
  if (cluster) return cluster_bench(events);

  const auto port = free_port();
  char dir[] = "/tmp/river-bench-XXXXXX";
  if (!::mkdtemp(dir)) return 1;
  const pid_t server = spawn({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", dir, "--logfile", std::string(dir) + "/redis.log"});
  if (server <= 0) {
    std::cerr << "redis_bench: cannot start redis-server\n";
    return 1;
  }
  for (int i = 0; i < 500; ++i) {
    if (run_and_capture("redis-cli -p " + std::to_string(port) + " PING 2>/dev/null").starts_with("PONG")) break;
    std::this_thread::sleep_for(10ms);
  }
  const auto url = "redis://127.0.0.1:" + std::to_string(port);
  std::cout << "redis_bench: redis-server " << port << ", " << events << " events of " << payload.size()
            << " bytes per measurement, one thread\n";

  // 1. Throughput. The machine's load moves every number, so each is measured in several rounds,
  // interleaved, and the medians are compared.
  auto raw_rate_of = [&](const std::string& options) {
    const auto out = run_and_capture("redis-benchmark -p " + std::to_string(port) + " -n " + std::to_string(events) +
                                     " " + options + " -q XADD bench:raw '*' item '" + payload + "' 2>/dev/null");
    const double rate = requests_per_second(out);
    run_and_capture("redis-cli -p " + std::to_string(port) + " DEL bench:raw >/dev/null 2>&1");
    return rate;
  };
  constexpr int rounds = 5;
  std::vector<double> raw_wide, raw_deep, one_v, hundred_v, thousand_v, batch_v;
  for (int r = 0; r < rounds; ++r) {
    raw_wide.push_back(raw_rate_of("-c 50 -P 16"));
    raw_deep.push_back(raw_rate_of("-c 1 -P 100"));
    one_v.push_back(append_rate(url, 1, std::min(events, 20'000)));
    hundred_v.push_back(append_rate(url, 100, events));
    batch_v.push_back(appends_per_write);
    thousand_v.push_back(append_rate(url, 1000, events));
  }
  const double raw_rate = percentile(raw_wide, 0.5), raw_depth_rate = percentile(raw_deep, 0.5);
  const double one = percentile(one_v, 0.5), hundred = percentile(hundred_v, 0.5), thousand = percentile(thousand_v, 0.5);
  std::printf("medians of %d interleaved rounds:\n", rounds);
  std::printf("raw pipelined XADD (redis-benchmark -c 50 -P 16): %10.0f appends/s\n", raw_rate);
  std::printf("raw pipelined XADD, 100 in flight (-c 1 -P 100):   %10.0f appends/s\n", raw_depth_rate);
  std::printf("provider, 1 run (each append awaited):             %10.0f appends/s\n", one);
  std::printf("provider, 100 concurrent runs:                     %10.0f appends/s  (%.1f appends per write)\n",
              hundred, percentile(batch_v, 0.5));
  std::printf("provider, 1000 concurrent runs:                    %10.0f appends/s\n", thousand);
  std::printf("ratio, 1000 runs / raw -c 50 -P 16:                %10.1f%%\n", raw_rate > 0 ? 100 * thousand / raw_rate : 0);
  std::printf("ratio, 100 runs / raw with 100 in flight:          %10.1f%%\n",
              raw_depth_rate > 0 ? 100 * hundred / raw_depth_rate : 0);

  // 2. A remote reader's cost per event, whatever the number of runs its instance follows.
  for (int followed : {10, 1000, 10000}) {
    const auto cost = remote_reader_cost(url, {port}, followed, 2000);
    std::printf("remote reader, its instance following %5d runs: %6.1f us of process CPU and %.2f Redis commands per event\n",
                followed, cost.cpu_us, cost.commands);
  }

  // 3. Append to remote reader latency: the reader is on another provider instance.
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    river::redis::provider writer_side(io.get_executor(), config_for(url));
    river::redis::provider reader_side(io.get_executor(), config_for(url));
    auto log = (co_await writer_side.create_log("latency", nullptr)).value();
    auto reader = (co_await reader_side.open_log("default", "latency", std::nullopt)).value();
    constexpr int samples = 5000;
    std::vector<clock_type::time_point> sent(samples);
    std::vector<double> ms;
    bool done = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      std::vector<river::record_view> batch;
      std::size_t seen = 0;
      for (;;) {
        batch.clear();
        auto st = (co_await reader->read(batch, 64, clock_type::time_point::max())).value();
        const auto now = clock_type::now();
        for (std::size_t i = 0; i < batch.size(); ++i, ++seen)
          ms.push_back(std::chrono::duration<double, std::milli>(now - sent[seen]).count());
        if (st == river::read_status::end) break;
      }
      done = true;
    }, asio::detached);
    co_await sleep_for(50ms);
    for (int i = 0; i < samples; ++i) {
      sent[static_cast<std::size_t>(i)] = clock_type::now();
      (void)(co_await log.writer->append(payload, i == samples - 1)).value();
      co_await sleep_for(200us);
    }
    while (!done) co_await sleep_for(1ms);
    std::printf("append -> remote reader latency over %d events:  p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", samples,
                percentile(ms, 0.5), percentile(ms, 0.99), percentile(ms, 1.0));
    co_await writer_side.close();
    co_await reader_side.close();
  });

  // 4. Connections for 1000 live readers.
  run([&](asio::io_context& io) -> asio::awaitable<void> {
    river::redis::provider writer_side(io.get_executor(), config_for(url));
    river::redis::provider reader_side(io.get_executor(), config_for(url));
    constexpr int n = 1000;
    std::vector<river::new_log> logs;
    for (int i = 0; i < n; ++i) {
      logs.push_back((co_await writer_side.create_log("many-" + std::to_string(i), nullptr)).value());
      (void)(co_await logs.back().writer->append(payload, false)).value();
    }
    int finished = 0;
    std::vector<std::unique_ptr<river::log_reader>> readers;
    for (int i = 0; i < n; ++i)
      readers.push_back((co_await reader_side.open_log("default", "many-" + std::to_string(i), std::nullopt)).value());
    for (auto& r : readers) {
      asio::co_spawn(io, [&, rp = r.get()]() -> asio::awaitable<void> {
        std::vector<river::record_view> batch;
        while ((co_await rp->read(batch, 16, clock_type::time_point::max())).value() != river::read_status::end) batch.clear();
        ++finished;
      }, asio::detached);
    }
    co_await sleep_for(300ms);
    const auto s = reader_side.get_stats();
    const auto t0 = clock_type::now();
    for (auto& l : logs) asio::co_spawn(io, [w = l.writer]() -> asio::awaitable<void> {
      (void)(co_await w->append(payload, true)).value();
    }, asio::detached);
    while (finished < n) co_await sleep_for(1ms);
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
    std::printf("1000 live readers (1000 runs) in one process:     %zu Redis connections, %zu runs followed;"
                " last events of all 1000 runs delivered in %.1f ms\n",
                s.connections, s.followed, ms);
    co_await writer_side.close();
    co_await reader_side.close();
  });

  ::kill(server, SIGTERM);
  ::waitpid(server, nullptr, 0);
  std::system((std::string("rm -rf ") + dir).c_str());
  return 0;
}
