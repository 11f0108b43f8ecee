// The disconnect policy: a run of a stream with `cancel_when_unwatched` is cancelled once nobody
// has read it for the grace period; one whose reader comes back in time goes on; `continue_run`
// (the default) never cancels.

#include <river/caller.hpp>

#include "support/bounded.hpp"
#include "support/collect.hpp"

#include <boost/describe/class.hpp>

using namespace river::test;
using river::event_kind;
using json = nlohmann::json;

namespace disconnect_test {

struct tick_input {
  int count = 0;
};
BOOST_DESCRIBE_STRUCT(tick_input, (), (count))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(tick_input, count)

constexpr auto tick_every = 10ms;

// "tick": {"n": i} every 10 ms, `count` times.
river::router tick_router(river::disconnect_policy policy) {
  river::router r;
  r.add("tick", river::stream<tick_input>().disconnect(policy).runner(
                    [](river::run_context<tick_input, json>& ctx) -> asio::awaitable<void> {
                      for (int i = 0; i < ctx.input().count; ++i) {
                        co_await sleep_for(tick_every);
                        json chunk = {{"n", i}};
                        co_await ctx.append(chunk);
                      }
                    }));
  return r;
}

asio::awaitable<river::event_reader> start_ticks(river::caller& c, int count) {
  json input = {{"count", count}};
  co_return (co_await c.start("tick", input)).value();
}

// Waits (bounded) for the caller's runs to end.
asio::awaitable<void> until_no_run(river::caller& c) {
  for (int i = 0; i < 1000 && c.active_runs() != 0; ++i) co_await sleep_for(10ms);
  REQUIRE(c.active_runs() == 0u);
}

// The whole run, read again from its start.
asio::awaitable<std::vector<river::event>> reread(river::caller& c, const std::string& token) {
  auto reader = (co_await c.resume(token)).value();
  co_return co_await collect(reader);
}

}  // namespace disconnect_test

using namespace disconnect_test;

TEST_CASE("cancel_when_unwatched: a run whose only reader goes away ends aborted after the grace") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    constexpr auto grace = 200ms;
    river::caller c(io.get_executor(), tick_router(river::disconnect_policy::cancel_when_unwatched(grace)));
    auto reader = co_await start_ticks(c, 3000);  // thirty seconds, unless cancelled
    const auto token = reader.resumption_token();
    for (int i = 0; i < 3; ++i) (void)co_await reader.next();
    const auto left = std::chrono::steady_clock::now();
    reader = river::event_reader();
    co_await until_no_run(c);
    const auto after = std::chrono::steady_clock::now() - left;
    CHECK(after >= grace);
    CHECK(c.stats().runs_aborted == 1u);
    const auto evs = co_await reread(c, token);
    REQUIRE(evs.size() >= 5u);
    CHECK(evs.back().kind() == event_kind::aborted);
    CHECK(evs.size() < 100u);  // stopped long before its thousand ticks
  });
}

TEST_CASE("cancel_when_unwatched: a reader that comes back within the grace keeps the run going") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    constexpr auto grace = 300ms;
    river::caller c(io.get_executor(), tick_router(river::disconnect_policy::cancel_when_unwatched(grace)));
    auto reader = co_await start_ticks(c, 60);
    const auto token = reader.resumption_token();
    // Three times: the reader leaves, and another comes back after a third of the grace.
    for (int round = 0; round < 3; ++round) {
      (void)co_await reader.next();
      reader = river::event_reader();
      co_await sleep_for(grace / 3);
      reader = (co_await c.resume(token)).value();
    }
    const auto rest = co_await collect(reader);
    REQUIRE_FALSE(rest.empty());
    CHECK(rest.back().kind() == event_kind::end);
    co_await until_no_run(c);
    CHECK(c.stats().runs_aborted == 0u);
    CHECK(c.stats().runs_ended == 1u);
  });
}

TEST_CASE("cancel_when_unwatched: any of several readers keeps the run going") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    constexpr auto grace = 100ms;
    river::caller c(io.get_executor(), tick_router(river::disconnect_policy::cancel_when_unwatched(grace)));
    auto first = co_await start_ticks(c, 40);
    auto second = (co_await c.resume(first.resumption_token())).value();
    first = river::event_reader();  // the starter goes; the other reader stays
    const auto evs = co_await collect(second);
    REQUIRE_FALSE(evs.empty());
    CHECK(evs.back().kind() == event_kind::end);
    CHECK(c.stats().runs_aborted == 0u);
  });
}

TEST_CASE("continue_run, the default: a run nobody reads goes on to its end") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), tick_router(river::disconnect_policy::continue_run()));
    auto reader = co_await start_ticks(c, 40);  // 400 ms: longer than any grace above
    const auto token = reader.resumption_token();
    reader = river::event_reader();
    co_await until_no_run(c);
    CHECK(c.stats().runs_ended == 1u);
    CHECK(c.stats().runs_aborted == 0u);
    const auto evs = co_await reread(c, token);
    CHECK(evs.size() == 42u);
    CHECK(evs.back().kind() == event_kind::end);
  });
}

TEST_CASE("the disconnect policy's checks: four per grace, from every 10 ms to once a second") {
  using river::detail::unwatched_check_interval;
  CHECK(unwatched_check_interval(3s) == 750ms);
  CHECK(unwatched_check_interval(20ms) == 10ms);
  CHECK(unwatched_check_interval(60s) == 1s);
  const auto policy = river::disconnect_policy{};
  CHECK_FALSE(policy.cancels());
  CHECK(river::disconnect_policy::cancel_when_unwatched().grace == 3s);
}
