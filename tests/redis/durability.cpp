// Leases, cancel from another instance, Redis going away: the provider's durability rules.

#include <river/redis/provider.hpp>

#include "redis/provider_support.hpp"
#include "support/child_process.hpp"

#include <river/redis/detail/stream_entry.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <signal.h>

using namespace river::test;
using river::errc;

namespace {

// Starts the producer helper and waits (at most 10 s) until its run has two records.
std::unique_ptr<child_process> start_producer(const redis_server& server, const std::string& run_id,
                                              const std::string& timeout_ms) {
  auto producer = std::make_unique<child_process>(
      std::vector<std::string>{RIVER_REDIS_PRODUCER, server.url(), "default", run_id, timeout_ms});
  auto line = producer->read_line();
  if (line != "ready") FAIL("the producer did not get ready: '" << line.value_or("") << "'");
  return producer;
}

}  // namespace

TEST_CASE("redis provider: when the producer process dies, readers anywhere get 'producer lost' within the bound") {
  if (!redis_or_skip()) return;
  redis_server server;
  auto producer = start_producer(server, "leased", "600");
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.producer_lost_timeout = 600ms;  // lease 300 ms, checked every 300 ms
    redis::provider a(io.get_executor(), cfg);
    redis::provider b(io.get_executor(), cfg);
    auto ra = co_await open(a, "leased");
    auto rb = co_await open(b, "leased");
    std::vector<river::record_view> batch;
    // Alive: the lease is renewed, so nothing happens for longer than the bound.
    co_await sleep_for(900ms);
    auto first = (co_await ra->read(batch, 10, clock_type::now() + 100ms)).value();
    CHECK(first == river::read_status::records);
    CHECK(batch.size() == 2);
    producer->kill(SIGKILL);
    const auto t0 = clock_type::now();
    auto rest_a = co_await drain(*ra);
    const auto elapsed = clock_type::now() - t0;
    auto all_b = co_await drain(*rb);
    REQUIRE(rest_a.size() == 1);
    CHECK(rest_a[0].find("stream_fatal_error") != std::string::npos);
    CHECK(rest_a[0].find("producer lost") != std::string::npos);
    CHECK(elapsed < 600ms + 400ms);
    REQUIRE(all_b.size() == 3);
    CHECK(all_b[2] == rest_a[0]);
    // Two instances watched the lease; the log was closed exactly once.
    auto req = cmd({"XRANGE", "stream-default-leased", "-", "+"});
    auto r = co_await raw(server, std::move(req));
    auto entries = redis::detail::decode_range(r.at(0)).value();
    REQUIRE(entries.size() == 4);
    CHECK(entries[3].fields[0].first == "end");
    CHECK(a.get_stats().producers_lost + b.get_stats().producers_lost == 1);
  });
}

TEST_CASE("redis provider: Redis restarted mid-run keeps every acknowledged event, readers continue") {
  if (!redis_or_skip()) return;
  redis_server::options opts;
  opts.appendonly = true;
  redis_server server(opts);
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.producer_lost_timeout = 10s;  // the restart must not look like a dead producer
    redis::provider p(io.get_executor(), cfg);
    redis::provider remote(io.get_executor(), cfg);
    auto log = co_await create(p, "restart");
    auto reader = co_await open(remote, "restart");
    std::vector<std::string> acknowledged;
    int failures = 0;
    bool restarted = false;
    std::string failure_text;
    for (int i = 0; acknowledged.size() < 200; ++i) {
      if (i == 60) {
        server.kill();
        co_await sleep_for(100ms);
        server.start();
        restarted = true;
      }
      auto r = co_await log.writer->append(chunk(i), false);
      if (r) {
        acknowledged.push_back(*r + "=" + chunk(i));
      } else {
        ++failures;
        failure_text = r.error().message;
        CHECK(r.error().code == errc::storage_failure);
        co_await sleep_for(5ms);
      }
    }
    CHECK(restarted);
    // A short restart is a delay: appends wait for Redis and none fails.
    CHECK(failures == 0);
    INFO(failure_text);
    auto last = co_await append(*log.writer, chunk(-1), true);
    acknowledged.push_back(last + "=" + chunk(-1));
    // Everything acknowledged is in Redis, in order; the reader saw exactly that.
    auto req = cmd({"XRANGE", "stream-default-restart", "-", "+"});
    auto r = co_await raw(server, std::move(req));
    auto entries = redis::detail::decode_range(r.at(0)).value();
    std::vector<std::string> stored;
    for (auto& e : entries)
      if (e.fields[0].first == "item") stored.push_back(e.id + "=" + e.fields[0].second);
    CHECK(stored == acknowledged);
    auto seen = co_await drain(*reader, 50);
    CHECK(seen == acknowledged);
  }, 30s);
}

TEST_CASE("redis provider: with Redis away past the outage limit, appends fail clearly and the run is stopped") {
  if (!redis_or_skip()) return;
  redis_server::options opts;
  opts.appendonly = true;
  redis_server server(opts);
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.outage_limit = 300ms;
    cfg.producer_lost_timeout = 10s;
    redis::provider p(io.get_executor(), cfg);
    bool stopped = false;
    auto log = co_await create(p, "outage", [&] { stopped = true; });
    co_await append(*log.writer, chunk(0));
    // Stored once this instance's reader has it.
    std::vector<river::record_view> first;
    (void)co_await log.reader->read(first, 1, forever);
    REQUIRE(first.size() == 1);
    server.kill();
    // Written behind: queued at once, then sent until the outage limit passes.
    auto queued = co_await log.writer->append(chunk(1), false);
    CHECK(queued.has_value());
    const auto t0 = clock_type::now();
    while (!stopped && clock_type::now() - t0 < 3s) co_await sleep_for(10ms);
    CHECK(stopped);
    auto refused = co_await log.writer->append(chunk(2), false);
    REQUIRE(!refused);
    CHECK(refused.error().code == errc::storage_failure);
    CHECK(refused.error().message.find("Redis was unreachable for longer than the outage limit") != std::string::npos);
    // Redis comes back: the abandoned run is closed with a fatal error, readable anywhere.
    server.start();
    log.writer.reset();
    redis::provider other(io.get_executor(), cfg);
    std::vector<std::string> all;
    for (int attempt = 0; attempt < 300; ++attempt) {
      auto reader = co_await open(other, "outage");
      all = co_await drain(*reader);
      if (all.size() == 2) break;
      co_await sleep_for(10ms);
    }
    REQUIRE(all.size() == 2);
    CHECK(all[1].find("Redis was unreachable for longer than the outage limit") != std::string::npos);
  });
}

TEST_CASE("redis provider: appends write behind up to the window, and readers see only what Redis holds") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.write_window = 4;
    cfg.producer_lost_timeout = 10s;
    redis::provider p(io.get_executor(), cfg);
    auto log = co_await create(p, "behind");
    ::kill(server.pid(), SIGSTOP);
    // Four appends fit the window with Redis paused; each has its position at once.
    std::vector<std::string> positions;
    for (int i = 0; i < 4; ++i) positions.push_back(co_await append(*log.writer, chunk(i)));
    // The fifth waits for room.
    bool fifth_done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          positions.push_back(co_await append(*log.writer, chunk(4)));
          fifth_done = true;
        },
        asio::detached);
    co_await sleep_for(200ms);
    CHECK_FALSE(fifth_done);
    std::vector<river::record_view> ready;
    CHECK(log.reader->poll(ready, 10) == river::read_status::idle);
    ::kill(server.pid(), SIGCONT);
    const auto t0 = clock_type::now();
    while (!fifth_done && clock_type::now() - t0 < 5s) co_await sleep_for(5ms);
    REQUIRE(fifth_done);
    (void)co_await append(*log.writer, chunk(5), true);
    // In call order, each once, at the positions the appends gave.
    auto all = co_await drain(*log.reader, 10);
    REQUIRE(all.size() == 6);
    for (std::size_t i = 0; i < 5; ++i) CHECK(all[i] == positions[i] + "=" + chunk(static_cast<int>(i)));
    auto xlen = cmd({"XLEN", "stream-default-behind"});
    auto entries = co_await raw(server, std::move(xlen));
    CHECK(entries.at(0).integer == 7);  // six events and the end entry
  });
}
