#include <river/run_context.hpp>

#include <river/caller.hpp>

#include "support/bounded.hpp"
#include "support/collect.hpp"

#include <boost/asio/steady_timer.hpp>

using namespace river::test;
using river::event_kind;
namespace events = river::events;
using json = nlohmann::json;

namespace {

using ctx_t = river::run_context<json, json>;
using runner_t = std::function<asio::awaitable<void>(ctx_t&)>;

river::router one_stream(runner_t runner) {
  river::router r;
  r.add("s", river::stream<json, json>().runner(std::move(runner)));
  return r;
}

asio::awaitable<std::vector<river::event>> run_to_end(river::caller& c, json input = json::object()) {
  auto reader = (co_await c.start("s", std::move(input))).value();
  co_return co_await collect(reader);
}

}  // namespace

TEST_CASE("a runner's appends become the run's events, in order, between start and end") {
  auto c_router = one_stream([](ctx_t& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      json chunk = {{"i", i}};
      co_await ctx.append(chunk);
    }
    river::error warning("slow down", river::error_type::custom);
    co_await ctx.append_error(warning);
    json last = "last";
    co_await ctx.append(last);
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), c_router);
    auto evs = co_await run_to_end(c);
    CHECK(kinds(evs) == std::vector{event_kind::start, event_kind::chunk, event_kind::chunk, event_kind::chunk,
                                    event_kind::error, event_kind::chunk, event_kind::end});
    CHECK(*evs[1].chunk() == json{{"i", 0}});
    CHECK(*evs[3].chunk() == json{{"i", 2}});
    CHECK(evs[4].get_if<events::error>()->value.message == "slow down");
    CHECK(*evs[5].chunk() == "last");
    CHECK(evs[6].get_if<events::end>()->total_chunks == 4);
    for (std::size_t i = 0; i < evs.size(); ++i) CHECK(evs[i].position == std::to_string(i + 1));
  });
}

TEST_CASE("an exception that escapes the runner becomes a fatal error event") {
  auto routes = one_stream([](ctx_t& ctx) -> asio::awaitable<void> {
    json chunk = 1;
    co_await ctx.append(chunk);
    throw std::runtime_error("kaput");
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    auto evs = co_await run_to_end(c);
    REQUIRE(kinds(evs) == std::vector{event_kind::start, event_kind::chunk, event_kind::fatal_error});
    CHECK(river::to_json_text(evs[2]) ==
          R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_fatal_error","error":{"__name__":"RiverError","message":"Failed to run runner function","type":"stream","cause":"kaput","context":{}}}})");
    CHECK(c.stats().runs_failed == 1);
  });
}

TEST_CASE("a runner that returns without a terminal event gets stream_end") {
  auto routes = one_stream([](ctx_t& ctx) -> asio::awaitable<void> {
    json a = "a", b = "b";
    co_await ctx.append(a);
    co_await ctx.append(b);
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    auto evs = co_await run_to_end(c);
    REQUIRE(evs.size() == 4);
    auto end = evs[3].get_if<events::end>();
    REQUIRE(end);
    CHECK(end->total_chunks == 2);
    CHECK(end->total_time_ms < 5000);
    CHECK(c.stats().runs_ended == 1);
  });
}

TEST_CASE("an append after the terminal event is refused and stores nothing") {
  std::vector<river::error_code> refusals;
  auto routes = one_stream([&](ctx_t& ctx) -> asio::awaitable<void> {
    co_await ctx.close();
    CHECK(ctx.closed());
    json late = "late";
    river::error e("late", river::error_type::custom);
    for (int attempt = 0; attempt < 4; ++attempt) {
      try {
        if (attempt == 0) co_await ctx.append(late);
        if (attempt == 1) co_await ctx.append_error(e);
        if (attempt == 2) co_await ctx.fail(e);
        if (attempt == 3) co_await ctx.close();
      } catch (const boost::system::system_error& ex) {
        refusals.push_back(ex.code());
      }
    }
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    auto evs = co_await run_to_end(c);
    CHECK(kinds(evs) == std::vector{event_kind::start, event_kind::end});
    // The reader ended at the terminal event; a fresh one sees the same log.
    auto again = (co_await c.resume(evs[0].get_if<events::start>()->resumption_token)).value();
    auto awaited1 = co_await collect(again);
    CHECK(texts(awaited1) == texts(evs));
  });
  CHECK(refusals == std::vector<river::error_code>(4, river::errc::run_closed));
}

TEST_CASE("fail ends the run with the runner's own fatal error") {
  auto routes = one_stream([](ctx_t& ctx) -> asio::awaitable<void> {
    river::error e("model unavailable", river::error_type::custom, {{"model", "m1"}});
    co_await ctx.fail(e);
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    auto evs = co_await run_to_end(c);
    REQUIRE(kinds(evs) == std::vector{event_kind::start, event_kind::fatal_error});
    CHECK(evs[1].get_if<events::fatal_error>()->value ==
          river::error("model unavailable", river::error_type::custom, {{"model", "m1"}}));
  });
}

TEST_CASE("cancel ends the run with aborted and cancels what the runner waits for") {
  std::atomic<bool> wait_cancelled{false};
  std::atomic<bool> append_refused{false};
  auto routes = one_stream([&](ctx_t& ctx) -> asio::awaitable<void> {
    json tick = "tick";
    co_await ctx.append(tick);
    asio::steady_timer t(ctx.get_executor(), std::chrono::hours(1));
    auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    wait_cancelled = ec == asio::error::operation_aborted && ctx.cancelled();
    try {
      co_await ctx.append(tick);
    } catch (const boost::system::system_error& e) {
      append_refused = e.code() == river::errc::run_closed;
    }
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    json input = json::object();
    auto reader = (co_await c.start("s", input)).value();
    auto first = co_await reader.next();
    auto second = co_await reader.next();
    REQUIRE(second->kind() == event_kind::chunk);
    auto cancelled = co_await c.cancel(reader.resumption_token());
    CHECK(cancelled.has_value());
    auto rest = co_await collect(reader);
    CHECK(kinds(rest) == std::vector{event_kind::aborted});
    while (c.active_runs() != 0) co_await sleep_for(1ms);
    CHECK(c.stats().runs_aborted == 1);
    auto again = co_await c.cancel(reader.resumption_token());
    CHECK(again.error().code == river::errc::run_already_finished);
  });
  CHECK(wait_cancelled);
  CHECK(append_refused);
}

TEST_CASE("a runner keeps going after its only reader goes away") {
  auto routes = one_stream([](ctx_t& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < 20; ++i) {
      co_await sleep_for(2ms);
      json chunk = i;
      co_await ctx.append(chunk);
    }
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    std::string token;
    {
      json input = json::object();
      auto reader = (co_await c.start("s", input)).value();
      token = reader.resumption_token();
      (void)co_await reader.next();
    }  // the only reader is gone
    while (c.active_runs() != 0) co_await sleep_for(2ms);
    auto replay = (co_await c.resume(token)).value();
    auto evs = co_await collect(replay);
    REQUIRE(evs.size() == 22);
    for (int i = 0; i < 20; ++i) CHECK(*evs[static_cast<std::size_t>(i) + 1].chunk() == i);
    CHECK(evs.back().get_if<events::end>()->total_chunks == 20);
  });
}

TEST_CASE("the context tells the runner who it is") {
  std::string seen_run_id, seen_storage, seen_stream, seen_header;
  json seen_input;
  auto routes = one_stream([&](ctx_t& ctx) -> asio::awaitable<void> {
    seen_run_id = ctx.run_id();
    seen_storage = ctx.storage_id();
    seen_stream = ctx.stream_name();
    seen_header = std::string(ctx.metadata().header("x-user").value_or(""));
    seen_input = ctx.input();
    co_return;
  });
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    river::request_metadata md(river::request_metadata::header_list{{"X-User", "ada"}});
    json input = {{"q", 1}};
    auto reader = (co_await c.start("s", input, md)).value();
    auto evs = co_await collect(reader);
    CHECK(seen_run_id == reader.run_id());
    CHECK(evs[0].get_if<events::start>()->run_id == reader.run_id());
    CHECK(seen_run_id.size() == 36);
    CHECK(seen_storage == "default");
    CHECK(seen_stream == "s");
    CHECK(seen_header == "ada");
    CHECK(seen_input == json{{"q", 1}});
  });
}

TEST_CASE("typed chunks are encoded with the chunk type's conversion") {
  river::router routes;
  routes.add("typed", river::stream<json, std::string>().runner(
                          [](river::run_context<json, std::string>& ctx) -> asio::awaitable<void> {
                            std::string t = "tok\"en";
                            co_await ctx.append(t);
                          }));
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    json input = nullptr;
    auto reader = (co_await c.start("typed", input)).value();
    auto evs = co_await collect(reader);
    CHECK(river::to_json_text(evs[1]) == R"({"type":"chunk","chunk":"tok\"en"})");
  });
}

TEST_CASE("a refused append is not counted in stream_end and the runner can go on") {
  river::memory::config cfg;
  cfg.max_run_bytes = 400;
  auto provider = std::make_shared<river::memory::provider>(cfg);
  river::error_code refusal;
  river::router routes;
  routes.add("s", river::stream<json, std::string>().provider(provider).runner(
                      [&](river::run_context<json, std::string>& ctx) -> asio::awaitable<void> {
                        std::string big(500, 'x'), small = "ok";
                        try {
                          co_await ctx.append(big);
                        } catch (const boost::system::system_error& e) {
                          refusal = e.code();
                        }
                        co_await ctx.append(small);
                      }));
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    auto evs = co_await run_to_end(c);
    REQUIRE(kinds(evs) == std::vector{event_kind::start, event_kind::chunk, event_kind::end});
    CHECK(*evs[1].chunk() == "ok");
    CHECK(evs[2].get_if<events::end>()->total_chunks == 1);
  });
  CHECK(refusal == river::errc::run_too_large);
}
