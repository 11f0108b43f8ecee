// Fair runners: a runner that appends without ever suspending (the in-memory provider stores at
// once) is suspended by River after its budget, so the other runs and readers on its thread go on.

#include <river/caller.hpp>

#include "support/bounded.hpp"

#include <boost/asio/steady_timer.hpp>

using namespace river::test;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int hog_appends = 100'000;

// Busy for `d` without suspending: a runner's own work between appends.
void spin(std::chrono::microseconds d) {
  const auto until = clock_type::now() + d;
  while (clock_type::now() < until) {
  }
}

}  // namespace

TEST_CASE("a runner in a tight loop of appends does not hold up another run's reader beyond its budget") {
  river::router routes;
  clock_type::duration hog_took{};
  routes.add("hog", river::stream<json, int>().runner([&](river::run_context<json, int>& ctx) -> asio::awaitable<void> {
    const auto started = clock_type::now();
    for (int i = 0; i < hog_appends; ++i) {
      spin(std::chrono::microseconds(4));
      co_await ctx.append(i);
    }
    hog_took = clock_type::now() - started;
  }));
  routes.add("paced", river::stream<json, int>().runner([](river::run_context<json, int>& ctx) -> asio::awaitable<void> {
    asio::steady_timer t(ctx.get_executor());
    for (int i = 0; i < 100; ++i) {
      t.expires_after(2ms);
      co_await t.async_wait(asio::use_awaitable);
      co_await ctx.append(i);
    }
  }));
  clock_type::duration longest_gap{};
  int paced_seen = 0;
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        river::caller c(io.get_executor(), routes);
        json input = json::object();
        auto paced = (co_await c.start("paced", input)).value();
        auto hog = (co_await c.start("hog", input)).value();
        auto last = clock_type::now();
        bool hog_running = true;
        while (auto ev = co_await paced.next()) {
          const auto now = clock_type::now();
          hog_running = c.active_runs() == 2;
          if (hog_running) longest_gap = std::max(longest_gap, now - last);
          last = now;
          if (ev->chunk()) ++paced_seen;
        }
        while (auto ev = co_await hog.next()) {
        }
      },
      120s, 1);
  INFO("hog ran " << std::chrono::duration_cast<std::chrono::milliseconds>(hog_took).count() << " ms; longest gap "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(longest_gap).count() << " ms");
  CHECK(paced_seen == 100);
  // The hog runs long enough that without fairness the paced reader would wait for all of it.
  REQUIRE(hog_took > 300ms);
  // Its budget (runner_budget: 64 appends or 500 us) bounds the gap; the bound here is generous.
  CHECK(longest_gap < 60ms);
}

TEST_CASE("a runner that appends big events yields once their bytes reach its budget") {
  // Only the bytes can end a streak here: the appends and the time are out of reach.
  river::caller_options options;
  options.budget.appends = 1'000'000;
  options.budget.time = std::chrono::hours(1);
  options.budget.bytes = 64 * 1024;
  constexpr int big_events = 64;
  river::router routes;
  bool hog_running = false;
  routes.add("hog", river::stream<json, std::string>().runner(
                        [&](river::run_context<json, std::string>& ctx) -> asio::awaitable<void> {
                          hog_running = true;
                          const std::string big(16 * 1024, 'x');
                          for (int i = 0; i < big_events; ++i) co_await ctx.append(big);
                          hog_running = false;
                        }));
  int turns_during_hog = 0;
  int hog_events = 0;
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        river::caller c(io.get_executor(), routes, options);
        auto hog = (co_await c.start("hog", json::object())).value();
        // A neighbour on the same thread gets a turn each time the hog yields.
        bool hog_seen = false;
        for (int i = 0; i < 100'000; ++i) {
          co_await asio::post(io, asio::use_awaitable);
          if (hog_running) {
            hog_seen = true;
            ++turns_during_hog;
          } else if (hog_seen) {
            break;
          }
        }
        while (auto ev = co_await hog.next())
          if (ev->chunk()) ++hog_events;
      },
      60s, 1);
  CHECK(hog_events == big_events);
  // 64 events of over 16 KiB each against 64 KiB: a yield every fourth append, 16 in all. Without
  // the bytes bound the hog would run its loop in one turn.
  CHECK(turns_during_hog >= 15);
  CHECK(turns_during_hog <= 17);
}
