// Fair runners: a runner that appends without ever suspending (the in-memory provider stores at
// once) is suspended by River after its budget, so the other runs and readers on its thread go on.

#include <river/caller.hpp>

#include "support/bounded.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

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

// Notes each chunk `r` reads, as "read <name>".
asio::awaitable<void> note_reads(river::basic_event_reader<int> r, std::string name, std::vector<std::string>& seen) {
  while (auto ev = co_await r.next())
    if (ev->chunk()) seen.push_back("read " + name);
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

TEST_CASE("a paced runner's reader gets its event before the next runner due in the same turn appends") {
  // Two runners wait for the same instant, as paced runners due together do; each notes its
  // appends, each run's reader what it reads. A reader queued behind every runner of the turn
  // would read after both appends.
  constexpr int rounds = 20;
  std::vector<std::string> seen;
  river::router routes;
  auto due = std::make_shared<clock_type::time_point>();
  routes.add("paced",
             river::stream<json, int>().runner([&, due](river::run_context<json, int>& ctx) -> asio::awaitable<void> {
               const auto name = ctx.input().at("name").get<std::string>();
               asio::steady_timer t(ctx.get_executor());
               for (int i = 0; i < rounds; ++i) {
                 t.expires_at(*due + std::chrono::milliseconds(5 * (i + 1)));
                 co_await t.async_wait(asio::use_awaitable);
                 seen.push_back("append " + name);
                 co_await ctx.append(i);
               }
             }));
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        river::caller c(io.get_executor(), routes);
        *due = clock_type::now() + 20ms;
        // (Braced initializers inside a co_await expression trip GCC 12.)
        json input_a = {{"name", "a"}}, input_b = {{"name", "b"}};
        auto a = (co_await c.start<int>("paced", input_a)).value();
        auto b = (co_await c.start<int>("paced", input_b)).value();
        bool a_done = false;
        asio::co_spawn(io, note_reads(std::move(a), "a", seen), [&](std::exception_ptr) { a_done = true; });
        co_await note_reads(std::move(b), "b", seen);
        while (!a_done) co_await asio::post(io, asio::use_awaitable);
      },
      20s, 1);
  REQUIRE(seen.size() == 4 * rounds);
  for (std::size_t i = 0; i < seen.size(); i += 2) {
    INFO("step " << i);
    CHECK(seen[i].substr(0, 7) == "append ");
    CHECK(seen[i + 1] == "read " + seen[i].substr(7));
  }
}

TEST_CASE(
    "a burst of appends reaches a reader on the runner's thread in one piece per streak, its first event at once") {
  // After a wait the runner's first append is read before the runner goes on; the rest of the
  // burst waits for the runner to yield (its budget: 64 appends), and is then read in one piece.
  constexpr int burst = 128;
  // Only the appends end a streak here: the time bound would end it early on a slow build.
  river::caller_options options;
  options.budget.appends = 64;
  options.budget.time = std::chrono::hours(1);
  std::vector<std::string> seen;
  river::router routes;
  routes.add("burst",
             river::stream<json, int>().runner([&](river::run_context<json, int>& ctx) -> asio::awaitable<void> {
               asio::steady_timer t(ctx.get_executor());
               t.expires_after(5ms);
               co_await t.async_wait(asio::use_awaitable);
               for (int i = 0; i < burst; ++i) {
                 seen.push_back("append " + std::to_string(i));
                 co_await ctx.append(i);
               }
             }));
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        river::caller c(io.get_executor(), routes, options);
        auto r = (co_await c.start<int>("burst", json::object())).value();
        while (auto ev = co_await r.next())
          if (ev->chunk()) seen.push_back("read " + std::to_string(*ev->chunk()));
      },
      20s, 1);
  REQUIRE(seen.size() == 2 * burst);
  const auto at = [&](const std::string& step) { return std::find(seen.begin(), seen.end(), step) - seen.begin(); };
  CHECK(at("read 0") == at("append 0") + 1);
  CHECK(at("read 1") > at("append 63"));
  CHECK(at("read 63") < at("append 64"));
  CHECK(at("read 64") > at("append 127"));
}
