// Failovers on a Redis Cluster the test starts (three masters, a replica each): a request made
// while its master is down goes to the replica that takes over; a master killed while a run
// streams. With `wait_replicas`, no event a reader saw is lost and the run goes on on the
// promoted replica; without it, a failover that lost acknowledged events stops the run and its
// readers end with a fatal error that says so, never a history with a hole.

#include <river/redis/cluster.hpp>
#include <river/redis/detail/hash_slot.hpp>
#include <river/redis/provider.hpp>

#include "redis/provider_support.hpp"
#include "support/redis_cluster.hpp"

#include <signal.h>

using namespace river::test;
using namespace std::chrono_literals;

namespace {

redis_cluster::options with_replicas() {
  redis_cluster::options o;
  o.replicas = 1;
  o.node_timeout_ms = 1000;
  return o;
}

redis::config failover_config(const redis_cluster& c, std::string storage) {
  redis::config cfg;
  cfg.url = c.url();
  cfg.storage_id = std::move(storage);
  cfg.producer_lost_timeout = 6s;  // longer than a failover: the lease outlives it
  cfg.connection.reconnect_min = 10ms;
  cfg.connection.reconnect_max = 100ms;
  cfg.connection.response_timeout = 2s;
  return cfg;
}

}  // namespace

TEST_CASE("redis cluster failover: a request made while its master is down goes to the replica that takes over") {
  if (!redis_cluster_or_skip()) return;
  redis_cluster c(with_replicas());
  const std::string key = "waits-for-its-master";
  const auto slot = redis::detail::hash_slot(key);
  const auto master = c.master_of(slot);
  const auto replica = c.replica_of(master);
  REQUIRE(replica != 0);
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        redis::connection_config cc;
        cc.reconnect_min = 10ms;
        cc.reconnect_max = 100ms;
        cc.wait_for_connection = 20s;  // requests wait for their node instead of failing at once
        redis::cluster client(io.get_executor(), c.url(), cc);
        client.start();
        while (!client.connected()) co_await sleep_for(5ms);
        c.node_on(master).kill();
        while (client.connected()) co_await sleep_for(5ms);
        // The dead master's connection refuses it (never written) and the cluster keeps it; once
        // the replica has taken the slots over, the layout drops the old master and the request
        // goes to the new one.
        redis::request set;
        set.push({"SET", key, "after"});
        std::optional<std::pair<river::error_code, redis::response>> got;
        client.async_exec(set, [&](river::error_code ec, redis::response r) { got.emplace(ec, std::move(r)); });
        co_await sleep_for(50ms);
        CHECK_FALSE(got.has_value());
        CHECK(c.cli_on(replica, {"CLUSTER", "FAILOVER", "TAKEOVER"}) == "OK");
        while (!got) co_await sleep_for(5ms);
        INFO(got->first.message());
        CHECK_FALSE(got->first);
        REQUIRE(got->second.size() == 1);
        CHECK(got->second[0].text == "OK");
        CHECK(c.cli_on(replica, {"GET", key}) == "after");
      },
      60s);
}

TEST_CASE("redis cluster failover: with wait_replicas, a master killed mid-run loses no event a reader saw") {
  if (!redis_cluster_or_skip()) return;
  redis_cluster c(with_replicas());
  const std::string key = "stream-replicated-run";
  const auto slot = redis::detail::hash_slot(key);
  const auto master = c.master_of(slot);
  const auto replica = c.replica_of(master);
  REQUIRE(replica != 0);
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto cfg = failover_config(c, "replicated");
        cfg.wait_replicas = 1;
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
        int i = 1;
        for (; i < 60; ++i) {
          (void)co_await append(*log.writer, chunk(i));
          co_await sleep_for(3ms);
        }
        c.node_on(master).kill();
        // Appends go on while the replica takes over (they wait once the window is full).
        while (c.master_of(slot) != replica) {
          auto r = co_await log.writer->append(chunk(i++), false);
          INFO((r ? std::string() : r.error().message));
          REQUIRE(r.has_value());
          co_await sleep_for(10ms);
        }
        // The old master comes back as a replica of the new one: batches are replicated again
        // (until then WAIT finds no replica, and the appends wait).
        c.node_on(master).start();
        for (int more = 0; more < 30; ++more) (void)co_await append(*log.writer, chunk(i++));
        (void)co_await append(*log.writer, chunk(i++), true);
        while (done < 2) co_await sleep_for(5ms);
        const auto expected = co_await stored(c.node_on(replica), key);
        CHECK(expected.size() == static_cast<std::size_t>(i));
        CHECK(got_local == expected);
        CHECK(got_remote == expected);
      },
      60s);
}

TEST_CASE("redis cluster failover: without wait_replicas, events lost in a failover stop the run with a fatal error") {
  if (!redis_cluster_or_skip()) return;
  redis_cluster c(with_replicas());
  const std::string key = "stream-async-run";
  const auto slot = redis::detail::hash_slot(key);
  const auto master = c.master_of(slot);
  const auto replica = c.replica_of(master);
  REQUIRE(replica != 0);
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto cfg = failover_config(c, "async");
        redis::provider owner(io.get_executor(), cfg);
        redis::provider elsewhere(io.get_executor(), cfg);
        auto log = co_await create(owner, "run");
        std::vector<std::string> positions;
        for (int i = 0; i < 10; ++i) positions.push_back(co_await append(*log.writer, chunk(i)));
        auto remote = co_await open(elsewhere, "run");
        // Readers here and elsewhere follow the run as it goes.
        std::vector<std::string> local, far;
        int done = 0;
        auto ex = co_await asio::this_coro::executor;
        drain_in_background(ex, *log.reader, local, done);
        drain_in_background(ex, *remote, far, done);
        // Redis has those (appends complete before they are stored), and so has the replica:
        // WAIT answers once it acknowledged every write.
        for (int tries = 0; tries < 200 && redis_cli(master, {"XLEN", key}) != "10"; ++tries) co_await sleep_for(10ms);
        CHECK(redis_cli(master, {"WAIT", "1", "5000"}) == "1");
        // The replica stops, and its link is cut (bytes already sent would still reach it from
        // the socket's buffer): what the master acknowledges now, only the master holds.
        ::kill(c.node_on(replica).pid(), SIGSTOP);
        CHECK(redis_cli(master, {"CLIENT", "KILL", "TYPE", "replica"}) == "1");
        for (int i = 10; i < 20; ++i) positions.push_back(co_await append(*log.writer, chunk(i)));
        co_await sleep_for(300ms);  // acknowledged: readers here and elsewhere see them
        c.node_on(master).kill();
        ::kill(c.node_on(replica).pid(), SIGCONT);
        // The run stops once its writer finds the hole, on the promoted replica.
        std::optional<river::error> stopped;

        for (int i = 20; i < 5000 && !stopped; ++i) {
          auto r = co_await log.writer->append(chunk(i), false);
          if (!r) stopped = r.error();
          co_await sleep_for(10ms);
        }
        REQUIRE(stopped);
        CHECK(stopped->message.find("Redis lost events of this run") != std::string::npos);
        log.writer.reset();  // the runner ends: the run's log is closed with the fatal error
        while (done < 2) co_await sleep_for(5ms);
        std::vector<std::string> appended;
        for (std::size_t i = 0; i < positions.size(); ++i) appended.push_back(positions[i] + "=" + chunk(static_cast<int>(i)));
        // Each reader saw the events Redis acknowledged, then the fatal error: nothing after the
        // hole, no history served as if complete.
        for (auto* got : {&local, &far}) {
          INFO("read: " << got->size() << " last: " << (got->empty() ? std::string() : got->back()));
          REQUIRE(got->size() == 21);
          CHECK(std::vector(got->begin(), got->end() - 1) == appended);
          CHECK(got->back().find("stream_fatal_error") != std::string::npos);
          CHECK(got->back().find("Redis lost events of this run") != std::string::npos);
        }
        // The promoted replica kept the first ten; the fatal error follows them, and nothing
        // stored after the hole stays; a resume reads that.
        const auto kept = co_await stored(c.node_on(replica), key);
        REQUIRE(kept.size() == 11);
        CHECK(std::vector(kept.begin(), kept.begin() + 10) == std::vector(appended.begin(), appended.begin() + 10));
        CHECK(kept.back() == local.back());
      },
      60s);
}

