// Live reads on Redis: readers on the instance that runs a run are fed from its acknowledged
// appends, readers elsewhere from notices and XRANGE; either way they get what Redis holds, in
// Redis's order, from any position, with the work per event independent of the runs followed.

#include "redis/provider_support.hpp"

using namespace river::test;
using river::read_status;
using namespace std::chrono_literals;

namespace {

// Every record a reader yields until the log ends, as "position=data"; each record carries its
// frame, the bytes an event stream sends for it.
asio::awaitable<std::vector<std::string>> drain_framed(river::log_reader& r) {
  std::vector<std::string> out;
  std::vector<river::record_view> batch;
  for (;;) {
    batch.clear();
    auto st = co_await r.read(batch, 7, forever);
    REQUIRE(st.has_value());
    for (auto& rec : batch) {
      CHECK(rec.frame == "data: " + std::string(rec.data) + "\n\nid: " + std::string(rec.position) + "\n\n");
      out.push_back(std::string(rec.position) + "=" + std::string(rec.data));
    }
    if (*st == read_status::end) co_return out;
  }
}

// What `INFO commandstats` says now.
asio::awaitable<std::string> command_stats(const redis_server& server) {
  redis::request req;
  req.push({"INFO", "commandstats"});
  auto replies = co_await raw(server, std::move(req));
  co_return replies.at(0).text;
}

// How many commands Redis ran so far.
asio::awaitable<std::uint64_t> command_count(const redis_server& server) {
  const auto info = co_await command_stats(server);
  std::uint64_t n = 0;
  for (std::size_t at = info.find("calls="); at != std::string::npos; at = info.find("calls=", at + 1))
    n += std::stoull(info.substr(at + 6));
  co_return n;
}

// How many times Redis ran `command` so far.
asio::awaitable<std::uint64_t> calls_of(const redis_server& server, std::string_view command) {
  const auto info = co_await command_stats(server);
  const auto key = "cmdstat_" + std::string(command) + ":calls=";
  const auto at = info.find(key);
  co_return at == std::string::npos ? 0 : std::stoull(info.substr(at + key.size()));
}

}  // namespace

TEST_CASE("redis live reads: readers of a run this instance runs read its feed, not Redis, from the start on") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.feed_window = 4;
    redis::provider owner(io.get_executor(), cfg);
    auto log = co_await create(owner, "run");
    const auto first_position = co_await append(*log.writer, chunk(0));
    for (int i = 1; i < 3; ++i) (void)co_await append(*log.writer, chunk(i));
    // The run's own reader, from the start, and one that joins after the first event (opening
    // it checks in Redis that the position is an entry of the run; reading it reads nothing there).
    auto joined = co_await open(owner, "run", first_position);
    const auto before = co_await calls_of(server, "xrange");
    std::vector<river::record_view> batch;
    auto st = co_await log.reader->read(batch, 100, forever);
    REQUIRE(st.has_value());
    CHECK(batch.size() == 3);
    batch.clear();
    st = co_await joined->read(batch, 100, forever);
    REQUIRE(st.has_value());
    CHECK(batch.size() == 2);
    CHECK(co_await calls_of(server, "xrange") == before);
    // Past the feed's window of 4 events, a reader from the start replays what the feed let go.
    for (int i = 3; i < 8; ++i) (void)co_await append(*log.writer, chunk(i), i == 7);
    auto late = co_await open(owner, "run");
    const auto got_late = co_await drain_framed(*late);
    CHECK(co_await calls_of(server, "xrange") > before);
    const auto got_rest = co_await drain_framed(*log.reader);
    const auto expected = co_await stored(server, "stream-default-run");
    REQUIRE(expected.size() == 8);
    CHECK(expected[0].starts_with(first_position + "="));
    CHECK(got_late == expected);
    CHECK(got_rest == std::vector(expected.begin() + 3, expected.end()));
  });
}

TEST_CASE("redis live reads: readers here and elsewhere, live and from every position, get what Redis holds") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.feed_window = 8;  // replays and feeds both take part
    redis::provider owner(io.get_executor(), cfg);
    redis::provider elsewhere(io.get_executor(), cfg);
    auto log = co_await create(owner, "run");
    auto first = co_await append(*log.writer, chunk(0));
    auto remote_live = co_await open(elsewhere, "run");
    std::vector<std::string> got_local, got_remote;
    int done = 0;
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, [&]() -> asio::awaitable<void> { got_local = co_await drain_framed(*log.reader); ++done; }, asio::detached);
    asio::co_spawn(ex, [&]() -> asio::awaitable<void> { got_remote = co_await drain_framed(*remote_live); ++done; }, asio::detached);
    constexpr int n = 40;
    for (int i = 1; i < n; ++i) {
      (void)co_await append(*log.writer, chunk(i), i == n - 1);
      if (i % 5 == 0) co_await sleep_for(1ms);
    }
    while (done < 2) co_await sleep_for(1ms);
    const auto expected = co_await stored(server, "stream-default-run");
    REQUIRE(expected.size() == n);
    CHECK(got_local == expected);
    CHECK(got_remote == expected);
    CHECK(elsewhere.get_stats().notices > 0);
    // After the end, from every position, on both instances.
    for (std::size_t p = 0; p <= expected.size(); ++p) {
      std::optional<std::string> after;
      if (p > 0) after = expected[p - 1].substr(0, expected[p - 1].find('='));
      for (auto* provider : {&owner, &elsewhere}) {
        auto reader = co_await open(*provider, "run", after);
        auto got = co_await drain_framed(*reader);
        INFO("position " << p);
        CHECK(got == std::vector(expected.begin() + static_cast<std::ptrdiff_t>(p), expected.end()));
      }
    }
    (void)first;
  });
}

TEST_CASE("redis live reads: an instance following 5000 runs pays the same per event as one following 10") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto cfg = test_config(server);
        // Each run's lease is renewed every third of a lease and checked by each follower: with a lease
        // far longer than this test may take, none of that lands among the commands counted, however
        // slow the machine is at opening 5000 runs.
        cfg.producer_lost_timeout = 3h;
        redis::provider owner(io.get_executor(), cfg);
        redis::provider elsewhere(io.get_executor(), cfg);
        auto ex = co_await asio::this_coro::executor;
        // Commands per event on the streaming run while `followed` other runs are followed.
        auto per_event = [&](int followed, std::string prefix) -> asio::awaitable<double> {
          std::vector<river::new_log> idle;
          std::vector<std::unique_ptr<river::log_reader>> readers;
          for (int i = 0; i < followed; ++i) {
            auto id = prefix + std::to_string(i);
            idle.push_back(co_await create(owner, id));
            (void)co_await append(*idle.back().writer, chunk(i));
            readers.push_back(co_await open(elsewhere, id));
            std::vector<river::record_view> batch;
            auto st = co_await readers.back()->read(batch, 10, forever);
            REQUIRE(st.has_value());
          }
          auto log = co_await create(owner, prefix + "streaming");
          (void)co_await append(*log.writer, chunk(0));
          auto reader = co_await open(elsewhere, prefix + "streaming");
          std::vector<std::string> got;
          bool finished = false;
          asio::co_spawn(ex, [&]() -> asio::awaitable<void> { got = co_await drain(*reader, 50); finished = true; }, asio::detached);
          co_await sleep_for(50ms);  // subscribed, caught up
          const auto before = co_await command_count(server);
          constexpr int events = 200;
          for (int i = 1; i <= events; ++i) {
            (void)co_await append(*log.writer, chunk(i), i == events);
            co_await sleep_for(1ms);
          }
          while (!finished) co_await sleep_for(1ms);
          const auto after = co_await command_count(server);
          CHECK(got.size() == events + 1);
          CHECK(elsewhere.get_stats().followed >= static_cast<std::size_t>(followed));
          co_return static_cast<double>(after - before - 1) / events;  // less the INFO itself
        };
        const auto few = co_await per_event(10, "few-");
        const auto many = co_await per_event(5000, "many-");
        INFO("commands per event: following 10 runs " << few << ", following 5000 runs " << many);
        CHECK(few < 6);
        CHECK(many < few * 1.5 + 0.5);
      },
      120s);
}

TEST_CASE("redis live reads: notices lost to a killed subscriber connection lose no event") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    redis::provider owner(io.get_executor(), cfg);
    redis::provider elsewhere(io.get_executor(), cfg);
    auto log = co_await create(owner, "run");
    (void)co_await append(*log.writer, chunk(0));
    auto reader = co_await open(elsewhere, "run");
    std::vector<std::string> got;
    bool finished = false;
    asio::co_spawn(co_await asio::this_coro::executor,
                   [&]() -> asio::awaitable<void> { got = co_await drain(*reader, 4); finished = true; }, asio::detached);
    constexpr int n = 120;
    for (int i = 1; i < n; ++i) {
      if (i == 30 || i == 70) {
        // Every subscriber connection, both instances': their notices and requests are lost.
        auto kill = cmd({"CLIENT", "KILL", "TYPE", "pubsub"});
        co_await raw(server, std::move(kill));
      }
      (void)co_await append(*log.writer, chunk(i), i == n - 1);
      co_await sleep_for(2ms);
    }
    while (!finished) co_await sleep_for(1ms);
    const auto expected = co_await stored(server, "stream-default-run");
    CHECK(got == expected);
    CHECK(got.size() == n);
  });
}
