// The Redis provider on a Redis Cluster the tests start (three masters on loopback ports): runs
// spread over the masters, each run's keys and channels on its stream's slot, reads, resumes and
// cancels across instances, a producer lost, a run whose slot migrates while it streams, a node
// that hangs.

#include <river/redis/cluster.hpp>
#include <river/redis/detail/hash_slot.hpp>
#include <river/redis/provider.hpp>

#include "redis/provider_support.hpp"
#include "support/redis_cluster.hpp"

#include <boost/asio/strand.hpp>

#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <sstream>

using namespace river::test;
using namespace std::chrono_literals;
using river::errc;

namespace {

redis::config cluster_config(const redis_cluster& c, std::string storage = "default") {
  redis::config cfg;
  cfg.url = c.url();
  cfg.storage_id = std::move(storage);
  cfg.producer_lost_timeout = 1500ms;
  cfg.connection.reconnect_min = 10ms;
  cfg.connection.reconnect_max = 100ms;
  return cfg;
}

std::vector<std::string> cli_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l);
  return lines;
}

// What Redis holds for a run, read from the master of its slot.
asio::awaitable<std::vector<std::string>> stored_in(redis_cluster& c, const std::string& key) {
  co_return co_await stored(c.node_on(c.master_of(redis::detail::hash_slot(key))), key);
}

// One cluster for the contract's cases; each fixture has a storage namespace of its own.
redis_cluster& shared_cluster() {
  static redis_cluster c;
  return c;
}

struct cluster_fixture {
  std::string storage = "contract" + std::to_string(next());
  static int next() {
    static std::atomic<int> n{0};
    return ++n;
  }
  std::shared_ptr<river::provider> make(const river::executor& ex) {
    return std::make_shared<redis::provider>(ex, cluster_config(shared_cluster(), storage));
  }
};

}  // namespace

TEST_CASE("redis cluster: a client sends each command to its slot's master and hands the replies back in order") {
  if (!redis_cluster_or_skip()) return;
  auto& c = shared_cluster();
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::connection_config cc;
    cc.wait_for_connection = 5s;
    redis::cluster client(io.get_executor(), c.url(), cc);
    client.start();
    // Keys of every master in one request, a transaction among them, a command without a key.
    redis::request req;
    for (int i = 0; i < 30; ++i) req.push({"SET", "routing-" + std::to_string(i), std::to_string(i * 7)});
    req.push({"MULTI"});
    req.push({"INCR", "{routing-3}.n"});
    req.push({"INCR", "{routing-3}.n"});
    req.push({"EXEC"});
    req.push({"PING"});
    for (int i = 0; i < 30; ++i) req.push({"GET", "routing-" + std::to_string(i)});
    auto [ec, replies] = co_await client.async_exec(req, asio::as_tuple(asio::use_awaitable));
    REQUIRE_FALSE(ec);
    REQUIRE(replies.size() == 30 + 4 + 1 + 30);
    for (int i = 0; i < 30; ++i) CHECK(replies[static_cast<std::size_t>(i)].text == "OK");
    CHECK(redis::to_string(replies[33]) == "[1, 2]");
    CHECK(replies[34].text == "PONG");
    for (int i = 0; i < 30; ++i) CHECK(replies[35 + static_cast<std::size_t>(i)].text == std::to_string(i * 7));
    const auto s = client.get_stats();
    CHECK(s.masters == 3);
    CHECK(client.connected());
    // Every master holds some of them, each the keys of its own slots.
    std::set<std::string> masters_used;
    for (int i = 0; i < 30; ++i) masters_used.insert(client.master_of(redis::detail::hash_slot("routing-" + std::to_string(i))));
    CHECK(masters_used.size() == 3);
    for (int i = 0; i < 30; ++i) {
      const auto key = "routing-" + std::to_string(i);
      CHECK(std::to_string(c.master_of(redis::detail::hash_slot(key))) == client.master_of(redis::detail::hash_slot(key)).substr(10));
    }
  });
}

TEST_CASE("redis cluster: key slots are those that CLUSTER KEYSLOT gives") {
  if (!redis_cluster_or_skip()) return;
  auto& c = shared_cluster();
  for (const std::string key : {"123456789", "stream-default-run", "river-lease:{stream-default-run}", "a{b}c", "x{}y", "é"}) {
    INFO(key);
    CHECK(c.cli(0, {"CLUSTER", "KEYSLOT", key}) == std::to_string(redis::detail::hash_slot(key)));
  }
}

TEST_CASE("redis cluster: runs spread over every master, and every key and channel of a run is on its stream's slot") {
  if (!redis_cluster_or_skip()) return;
  auto& c = shared_cluster();
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = cluster_config(c, "spread");
    // The checks below call redis-cli on this thread, which holds up lease renewals meanwhile
    // (a second or more on a slow machine): the leases must outlast them.
    cfg.producer_lost_timeout = 20s;
    redis::provider owner(io.get_executor(), cfg);
    redis::provider elsewhere(io.get_executor(), cfg);
    constexpr int runs = 12;
    std::vector<river::new_log> logs;
    std::vector<std::unique_ptr<river::log_reader>> remote;
    std::atomic<int> cancels{0};
    for (int r = 0; r < runs; ++r) {
      logs.push_back(co_await create(owner, "run" + std::to_string(r), [&cancels] { ++cancels; }));
      (void)co_await append(*logs.back().writer, chunk(0));
      remote.push_back(co_await open(elsewhere, "run" + std::to_string(r)));
    }
    // While they run: the keys and channels they made, on every node.
    std::map<std::string, std::set<unsigned>> slots_of;  // run id -> slots of its names
    std::set<std::uint16_t> masters;
    for (std::size_t n = 0; n < c.size(); ++n) {
      auto names = cli_lines(c.cli(n, {"--raw", "KEYS", "*{stream-spread-*"}));
      for (auto& k : cli_lines(c.cli(n, {"--raw", "KEYS", "stream-spread-*"}))) names.push_back(k);
      for (auto& ch : cli_lines(c.cli(n, {"--raw", "PUBSUB", "SHARDCHANNELS", "*stream-spread-*"}))) names.push_back(ch);
      for (auto& name : names) {
        const auto at = name.find("stream-spread-");
        REQUIRE(at != std::string::npos);
        auto run = name.substr(at + 14);
        if (!run.empty() && run.back() == '}') run.pop_back();
        slots_of[run].insert(redis::detail::hash_slot(name));
        CHECK(c.master_of(redis::detail::hash_slot(name)) == c.node(n).port());
        masters.insert(c.node(n).port());
      }
    }
    CHECK(masters.size() == 3);
    REQUIRE(slots_of.size() == runs);
    for (auto& [run, slots] : slots_of) {
      INFO(run);
      CHECK(slots == std::set<unsigned>{redis::detail::hash_slot("stream-spread-" + run)});
    }
    // A cancel from the other instance reaches the owner.
    auto asked = co_await elsewhere.request_cancel("spread", "run0");
    INFO((asked ? std::string() : asked.error().message));
    CHECK(asked.has_value());
    for (int i = 0; i < 200 && cancels == 0; ++i) co_await sleep_for(5ms);
    CHECK(cancels >= 1);  // by the message, and perhaps again by a lease renewal that found the flag
    for (int r = 0; r < runs; ++r) (void)co_await append(*logs[static_cast<std::size_t>(r)].writer, chunk(1), true);
    for (int r = 0; r < runs; ++r) {
      const auto key = "stream-spread-run" + std::to_string(r);
      auto expected = co_await stored_in(c, key);
      CHECK(expected.size() == 2);
      auto live = co_await drain(*remote[static_cast<std::size_t>(r)]);
      CHECK(live == expected);
      // A resume on the other instance after the first event.
      auto after = expected[0].substr(0, expected[0].find('='));
      auto resumed = co_await open(elsewhere, "run" + std::to_string(r), after);
      auto rest = co_await drain(*resumed);
      CHECK(rest == std::vector<std::string>{expected[1]});
      // Retention: the finished run expires.
      const auto ttl = std::stoll(c.cli(0, {"-c", "PTTL", key}));
      CHECK(ttl > 23 * 3600 * 1000);
    }
  });
}

TEST_CASE("redis cluster: when the producer process dies, readers elsewhere get 'producer lost'") {
  if (!redis_cluster_or_skip()) return;
  auto& c = shared_cluster();
  child_process producer(std::vector<std::string>{RIVER_REDIS_PRODUCER, c.url(), "lost", "run", "600"});
  REQUIRE(producer.read_line() == "ready");
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = cluster_config(c, "lost");
    cfg.producer_lost_timeout = 600ms;
    redis::provider reader_side(io.get_executor(), cfg);
    auto reader = co_await open(reader_side, "run");
    std::vector<river::record_view> batch;
    co_await sleep_for(900ms);  // alive: the lease is renewed on the run's master
    auto first = co_await reader->read(batch, 10, clock_type::now() + 100ms);
    CHECK(first.value() == river::read_status::records);
    CHECK(batch.size() == 2);
    producer.kill(SIGKILL);
    auto rest = co_await drain(*reader);
    REQUIRE(rest.size() == 1);
    CHECK(rest[0].find("producer lost") != std::string::npos);
  });
}

TEST_CASE("redis cluster: a run whose slot migrates while it streams loses and repeats nothing") {
  if (!redis_cluster_or_skip()) return;
  auto& c = shared_cluster();
  const std::string key = "stream-migrating-run";
  const auto slot = redis::detail::hash_slot(key);
  const auto from = c.master_of(slot);
  std::uint16_t to = 0;
  for (std::size_t n = 0; n < c.size(); ++n)
    if (c.node(n).port() != from && c.cli(n, {"ROLE"}).starts_with("master")) to = c.node(n).port();
  REQUIRE(to != 0);
  const auto from_id = redis_cli(from, {"CLUSTER", "MYID"}), to_id = redis_cli(to, {"CLUSTER", "MYID"});
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto cfg = cluster_config(c, "migrating");
        cfg.feed_window = 16;
        redis::provider owner(io.get_executor(), cfg);
        redis::provider elsewhere(io.get_executor(), cfg);
        auto log = co_await create(owner, "run");
        (void)co_await append(*log.writer, chunk(0));
        auto remote = co_await open(elsewhere, "run");
        std::vector<std::string> got_local, got_remote;
        int done = 0;
        auto ex = co_await asio::this_coro::executor;
        drain_in_background(ex, *log.reader, got_local, done);
        drain_in_background(ex, *remote, got_remote, done);
        // The slot moves as redis-cli --cluster reshard moves it, one key at a time, with pauses
        // for appends to meet each state (some keys moved: ASK; all moved: MOVED).
        // On this thread between appends (Catch2 is not thread safe: redis-cli runs under its
        // checks); each redis-cli call holds the appends for a few milliseconds.
        bool migrated = false;
        std::string trace;
        asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
          trace += redis_cli(to, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", from_id}) + ";";
          trace += redis_cli(from, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", to_id}) + ";";
          co_await sleep_for(100ms);
          for (auto& k : cli_lines(redis_cli(from, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100"}))) {
            trace += redis_cli(from, {"MIGRATE", "127.0.0.1", std::to_string(to), k, "0", "5000"}) + ";";
            co_await sleep_for(150ms);
          }
          for (std::size_t n = 0; n < c.size(); ++n)
            if (c.cli(n, {"ROLE"}).starts_with("master"))
              trace += c.cli(n, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id}) + ";";
          migrated = true;
        }, asio::detached);
        int i = 1;
        while (!migrated) {
          (void)co_await append(*log.writer, chunk(i++));
          co_await sleep_for(2ms);
        }
        for (int more = 0; more < 50; ++more) {
          (void)co_await append(*log.writer, chunk(i++));
          co_await sleep_for(2ms);
        }
        (void)co_await append(*log.writer, chunk(i++), true);
        INFO(trace);
        while (done < 2) co_await sleep_for(1ms);
        CHECK(c.master_of(slot) == to);
        const auto expected = co_await stored_in(c, key);
        CHECK(expected.size() == static_cast<std::size_t>(i));
        CHECK(got_local == expected);
        CHECK(got_remote == expected);
        // The appends met the migration: the target served some of them after ASKING.
        const auto stats = redis_cli(to, {"INFO", "commandstats"});
        CHECK(stats.find("cmdstat_asking") != std::string::npos);
        // And a resume after the end reads the whole run from the new master.
        auto again = co_await open(elsewhere, "run");
        auto whole = co_await drain(*again);
        CHECK(whole == expected);
      },
      60s);
}

TEST_CASE("redis cluster: a master that hangs fails its requests at the response timeout while the others keep serving") {
  if (!redis_cluster_or_skip()) return;
  auto& c = shared_cluster();
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::connection_config cc;
    cc.response_timeout = 300ms;
    cc.reconnect_min = 10ms;
    cc.reconnect_max = 50ms;
    redis::cluster client(io.get_executor(), c.url(), cc);
    client.start();
    // One key on each master.
    std::map<std::uint16_t, std::string> key_on;
    for (int i = 0; key_on.size() < 3; ++i) {
      const auto k = "hang-" + std::to_string(i);
      key_on.emplace(c.master_of(redis::detail::hash_slot(k)), k);
    }
    while (!client.connected()) co_await sleep_for(5ms);
    auto& stopped = c.node_on(key_on.begin()->first);
    ::kill(stopped.pid(), SIGSTOP);
    redis::request hung;
    hung.push({"SET", key_on.begin()->second, "x"});
    const auto t0 = clock_type::now();
    auto [ec, replies] = co_await client.async_exec(hung, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == redis::error::response_timeout);
    CHECK(clock_type::now() - t0 < 2s);
    for (auto it = std::next(key_on.begin()); it != key_on.end(); ++it) {
      redis::request fine;
      fine.push({"SET", it->second, "y"});
      auto [fec, fr] = co_await client.async_exec(fine, asio::as_tuple(asio::use_awaitable));
      CHECK_FALSE(fec);
      CHECK(fr.at(0).text == "OK");
    }
    ::kill(stopped.pid(), SIGCONT);
    // Back: the node's connection comes again and serves.
    redis::request back;
    back.push({"GET", key_on.begin()->second});
    for (int tries = 0; tries < 200; ++tries) {
      auto [bec, br] = co_await client.async_exec(back, asio::as_tuple(asio::use_awaitable));
      if (!bec) break;
      co_await sleep_for(10ms);
    }
    auto [bec, br] = co_await client.async_exec(back, asio::as_tuple(asio::use_awaitable));
    CHECK_FALSE(bec);
  });
}

TEST_CASE("redis cluster: the URL's login reaches every node, and a wrong one is a clear error") {
  if (!redis_cluster_or_skip()) return;
  redis_cluster::options opts;
  opts.password = "s3cret";
  redis_cluster c(opts);
  const auto seed = "127.0.0.1:" + std::to_string(c.node(1).port());
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = cluster_config(c, "auth");
    cfg.url = "redis+cluster://:s3cret@" + seed;
    redis::provider p(io.get_executor(), cfg);
    // Runs on every master: each connection logged in.
    for (int r = 0; r < 6; ++r) {
      auto log = co_await create(p, "run" + std::to_string(r));
      (void)co_await append(*log.writer, chunk(r), true);
      auto reader = co_await open(p, "run" + std::to_string(r));
      auto got = co_await drain(*reader);
      REQUIRE(got.size() == 1);
      CHECK(got[0].ends_with("=" + chunk(r)));
    }
    CHECK(p.health().reachable);

    cfg.url = "redis+cluster://:wrong@" + seed;
    cfg.start_wait = 300ms;
    redis::provider refused(io.get_executor(), cfg);
    for (int i = 0; i < 200 && refused.health().detail.find("WRONGPASS") == std::string::npos; ++i) co_await sleep_for(10ms);
    const auto health = refused.health();
    CHECK_FALSE(health.reachable);
    INFO(health.detail);
    CHECK(health.detail.find("WRONGPASS") != std::string::npos);
    auto none = co_await refused.create_log("never", nullptr);
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().code == river::errc::storage_unavailable);
  });
}

TEST_CASE("redis cluster: runs appending on two threads are all stored, in order, on their masters") {
  if (!redis_cluster_or_skip()) return;
  auto& c = shared_cluster();
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::provider p(io.get_executor(), cluster_config(c, "threads"));
    constexpr int runs = 60, events = 20;
    const auto failed = co_await append_on_strands(p, "t", runs, events);
    CHECK(failed == 0);
    for (int r = 0; r < runs; r += 7) {
      const auto got = co_await stored_in(c, "stream-threads-t" + std::to_string(r));
      REQUIRE(got.size() == static_cast<std::size_t>(events));
      for (int i = 0; i < events; ++i) CHECK(got[static_cast<std::size_t>(i)].ends_with("=" + chunk(i)));
    }
  }, 30s, 2);  // two threads: the cluster client is used from both at once
}

RIVER_PROVIDER_CONTRACT(cluster_fixture, "redis cluster provider")
