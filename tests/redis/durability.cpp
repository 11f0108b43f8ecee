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
using namespace std::chrono_literals;

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

// Cuts every connection of the clients called `name`: they reconnect, in a new epoch.
asio::awaitable<void> cut_clients_named(const redis_server& server, const std::string& name) {
  auto list_clients = cmd({"CLIENT", "LIST"});
  auto list = co_await raw(server, std::move(list_clients));
  const auto text = list.at(0).text;
  int cut = 0;
  for (std::size_t at = 0; at < text.size();) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const auto line = text.substr(at, end - at);
    at = end + 1;
    if (line.find(" name=" + name + " ") == std::string::npos || !line.starts_with("id=")) continue;
    const auto id = line.substr(3, line.find(' ') - 3);
    auto kill = cmd({"CLIENT", "KILL", "ID", id});
    auto killed = co_await raw(server, std::move(kill));
    cut += static_cast<int>(killed.at(0).integer);
  }
  REQUIRE(cut > 0);
}

// Appends chunks 0 to n - 1: their positions.
asio::awaitable<std::vector<std::string>> append_chunks(river::log_writer& w, int n) {
  std::vector<std::string> positions;
  for (int i = 0; i < n; ++i) positions.push_back(co_await append(w, chunk(i)));
  co_return positions;
}

// An owner, and a second instance whose connections a test cuts (`cut_clients_named`).
struct owner_and_elsewhere {
  static constexpr const char* elsewhere_name = "elsewhere";
  static redis::config named(redis::config cfg) {
    cfg.connection.client_name = elsewhere_name;
    return cfg;
  }
  owner_and_elsewhere(asio::io_context& io, const redis_server& server)
      : owner(io.get_executor(), test_config(server)), elsewhere(io.get_executor(), named(test_config(server))) {}
  redis::provider owner;
  redis::provider elsewhere;
};

// The run "run" of the owner, with chunks 0 to 9 appended.
struct run_of_ten {
  river::new_log log;
  std::vector<std::string> positions;
};
asio::awaitable<run_of_ten> start_run_of_ten(redis::provider& owner) {
  auto log = co_await create(owner, "run");
  auto positions = co_await append_chunks(*log.writer, 10);
  co_return run_of_ten{std::move(log), std::move(positions)};
}

}  // namespace

TEST_CASE("redis durability: a reader elsewhere whose last event Redis lost ends with a fatal error, never reads past the hole") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    // The owner's connections stay: its writer does not notice, and stores after the hole.
    owner_and_elsewhere at(io, server);
    auto [log, positions] = co_await start_run_of_ten(at.owner);
    std::vector<std::string> seen;
    for (int i = 0; i < 10; ++i) seen.push_back(positions[static_cast<std::size_t>(i)] + "=" + chunk(i));
    auto reader = co_await open(at.elsewhere, "run");
    std::vector<std::string> got;
    int done = 0;
    drain_in_background(co_await asio::this_coro::executor, *reader, got, done);
    for (int tries = 0; tries < 500 && got.size() < 10 && done == 0; ++tries) co_await sleep_for(10ms);
    // Redis loses the last three events the reader saw (as a replica promoted without them
    // would), and the reader's instance reaches Redis again, in a new epoch.
    auto lose = cmd({"XDEL", "stream-default-run", positions[7], positions[8], positions[9]});
    co_await raw(server, std::move(lose));
    co_await cut_clients_named(server, at.elsewhere_name);
    for (int i = 10; i < 12; ++i) (void)co_await append(*log.writer, chunk(i));
    (void)co_await append(*log.writer, chunk(12), true);
    while (done == 0) co_await sleep_for(5ms);
    INFO("read: " << got.size() << " last: " << (got.empty() ? std::string() : got.back()));
    REQUIRE(got.size() == 11);
    CHECK(std::vector(got.begin(), got.begin() + 10) == seen);
    CHECK(got.back().starts_with(positions[9] + "="));
    CHECK(got.back().find("stream_fatal_error") != std::string::npos);
    CHECK(got.back().find("Redis lost events of this run") != std::string::npos);
  });
}

TEST_CASE("redis durability: a replaying reader whose position Redis lost ends with a fatal error") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    owner_and_elsewhere at(io, server);
    const auto [log, positions] = co_await start_run_of_ten(at.owner);
    // Appends complete before Redis holds them: the reader starts once it holds all ten, and
    // replays two at a time.
    for (int tries = 0; tries < 500; ++tries) {
      const auto held = co_await stored(server, "stream-default-run");
      if (held.size() == 10) break;
      co_await sleep_for(10ms);
    }
    auto reader = co_await open(at.elsewhere, "run");
    std::vector<river::record_view> batch;
    auto st = co_await reader->read(batch, 2, forever);
    REQUIRE(st.has_value());
    REQUIRE(batch.size() == 2);
    CHECK(batch[1].position == positions[1]);
    // The entry at the reader's position is lost, the rest stays; the next read is from a
    // server reached in a new epoch.
    auto lose = cmd({"XDEL", "stream-default-run", positions[1]});
    co_await raw(server, std::move(lose));
    co_await cut_clients_named(server, at.elsewhere_name);
    batch.clear();
    st = co_await reader->read(batch, 2, forever);
    REQUIRE(st.has_value());
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].position == positions[1]);
    CHECK(std::string(batch[0].data).find("stream_fatal_error") != std::string::npos);
    CHECK(std::string(batch[0].data).find("Redis lost events of this run") != std::string::npos);
    batch.clear();
    st = co_await reader->read(batch, 2, forever);
    REQUIRE(st.has_value());
    CHECK(*st == river::read_status::end);
    CHECK(batch.empty());
  });
}

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
    auto positions = co_await append_chunks(*log.writer, 4);
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
