#include <river/caller.hpp>

#include "support/bounded.hpp"
#include "support/collect.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/describe/class.hpp>

using namespace river::test;
using river::event_kind;
using river::errc;
namespace events = river::events;
using json = nlohmann::json;

namespace caller_test {

struct chat_input {
  std::string message;
};
BOOST_DESCRIBE_STRUCT(chat_input, (), (message))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(chat_input, message)

struct chat_chunk {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(chat_chunk, text)

std::atomic<int> runner_calls{0};

// Echoes the message word by word (three chunks for "a b c").
river::router chat_router(std::shared_ptr<river::provider> p = nullptr) {
  river::router r;
  auto s = river::stream<chat_input, chat_chunk>().runner(
      [](river::run_context<chat_input, chat_chunk>& ctx) -> asio::awaitable<void> {
        ++runner_calls;
        std::string word;
        for (char ch : ctx.input().message + " ") {
          if (ch != ' ') {
            word.push_back(ch);
            continue;
          }
          chat_chunk c{word};
          co_await ctx.append(c);
          word.clear();
        }
      });
  if (p) s.provider(p);
  r.add("chat", s);
  return r;
}

asio::awaitable<river::event_reader> start_chat(river::caller& c, std::string message) {
  json input = {{"message", std::move(message)}};
  co_return (co_await c.start("chat", input)).value();
}

}  // namespace caller_test

using namespace caller_test;

TEST_CASE("starting an unknown stream is stream_not_found") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router());
    json input = {{"message", "x"}};
    auto r = co_await c.start("nope", input);
    REQUIRE(r.has_error());
    CHECK(r.error().code == errc::stream_not_found);
    CHECK(r.error().context == json{{"routerStreamKey", "nope"}});
  });
}

TEST_CASE("invalid input is refused before the runner sees it") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router());
    const int calls_before = runner_calls;
    json input = {{"message", 42}};
    auto r = co_await c.start("chat", input);
    REQUIRE(r.has_error());
    CHECK(r.error().code == errc::invalid_input);
    CHECK(r.error().type == river::error_type::validation);
    CHECK(r.error().context["field"] == "message");
    CHECK(runner_calls == calls_before);
    CHECK(c.stats().runs_started == 0);
  });
}

TEST_CASE("a run resumes from its start and from every position") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router());
    auto first = co_await start_chat(c, "one two three four");
    auto all = co_await collect(first);
    REQUIRE(all.size() == 6);
    auto from_start = (co_await c.resume(first.resumption_token())).value();
    auto awaited1 = co_await collect(from_start);
    CHECK(texts(awaited1) == texts(all));
    for (std::size_t i = 0; i < all.size(); ++i) {
      auto r = (co_await c.resume(first.resumption_token(), all[i].position)).value();
      auto rest = co_await collect(r);
      CHECK(texts(rest) == texts(std::vector(all.begin() + static_cast<std::ptrdiff_t>(i) + 1, all.end())));
      for (std::size_t k = 0; k < rest.size(); ++k) CHECK(rest[k].position == all[i + 1 + k].position);
    }
  });
}

TEST_CASE("resume refuses bad tokens, unknown streams, runs and positions") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router());
    auto reader = co_await start_chat(c, "a b");
    (void)co_await collect(reader);
    auto token = river::decode_token(reader.resumption_token()).value();

    auto expect = [&](river::result<river::event_reader> r, errc code) {
      REQUIRE(r.has_error());
      CHECK(r.error().code == code);
    };
    expect(co_await c.resume("!!!"), errc::invalid_token);
    auto other_stream = token;
    other_stream.router_stream_key = "missing";
    expect(co_await c.resume(river::encode_token(other_stream)), errc::stream_not_found);
    auto other_provider = token;
    other_provider.provider_id = "redis";
    expect(co_await c.resume(river::encode_token(other_provider)), errc::provider_mismatch);
    auto other_run = token;
    other_run.stream_run_id = "00000000-0000-4000-8000-000000000000";
    expect(co_await c.resume(river::encode_token(other_run)), errc::run_not_found);
    auto other_storage = token;
    other_storage.stream_storage_id = "elsewhere";
    expect(co_await c.resume(river::encode_token(other_storage)), errc::run_not_found);
    const std::vector<std::string> bad_positions = {"x", "-1", "4.5", "", "5", "99999999999999999999999"};
    for (const auto& pos : bad_positions)
      expect(co_await c.resume(reader.resumption_token(), pos), errc::invalid_position);
  });
}

TEST_CASE("cancel refuses unknown and finished runs") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router());
    auto reader = co_await start_chat(c, "a");
    (void)co_await collect(reader);
    auto finished = co_await c.cancel(reader.resumption_token());
    CHECK(finished.error().code == errc::run_already_finished);
    auto token = river::decode_token(reader.resumption_token()).value();
    token.stream_run_id = "unknown";
    auto awaited2 = co_await c.cancel(river::encode_token(token));
    CHECK(awaited2.error().code == errc::run_not_found);
    auto awaited3 = co_await c.cancel("bad token");
    CHECK(awaited3.error().code == errc::invalid_token);
  });
}

TEST_CASE("signing hooks sign tokens and refuse tampered ones") {
  river::caller_options opts;
  // A stand-in for a real MAC: the signature spells out what it covers.
  auto fake_mac = [](const river::resumption_token& t) {
    return "mac(" + t.provider_id + "," + t.router_stream_key + "," + t.stream_storage_id + "," + t.stream_run_id + ")";
  };
  opts.sign_token = [=](river::resumption_token& t) { t.signature = fake_mac(t); };
  opts.verify_token = [=](const river::resumption_token& t) { return t.signature == fake_mac(t); };
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router(), opts);
    auto reader = co_await start_chat(c, "a b");
    auto evs = co_await collect(reader);
    auto token = river::decode_token(reader.resumption_token()).value();
    CHECK(token.signature == "mac(memory,chat,default," + token.stream_run_id + ")");
    CHECK(evs[0].get_if<events::start>()->resumption_token == reader.resumption_token());
    auto awaited4 = co_await c.resume(reader.resumption_token());
    CHECK(awaited4.has_value());
    auto tampered = token;
    tampered.stream_storage_id = "other";
    auto awaited5 = co_await c.resume(river::encode_token(tampered));
    CHECK(awaited5.error().code == errc::token_signature_mismatch);
    tampered = token;
    tampered.signature.clear();
    auto awaited6 = co_await c.resume(river::encode_token(tampered));
    CHECK(awaited6.error().code == errc::token_signature_mismatch);
    auto awaited7 = co_await c.cancel(river::encode_token(tampered));
    CHECK(awaited7.error().code == errc::token_signature_mismatch);
  });
}

TEST_CASE("a run whose signed token would be too long to decode is not started") {
  river::caller_options opts;
  opts.sign_token = [](river::resumption_token& t) { t.signature = std::string(4096, 's'); };
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router(), opts);
    const int calls_before = runner_calls.load();
    json input = {{"message", "a"}};
    auto started = co_await c.start("chat", input);
    REQUIRE_FALSE(started.has_value());
    CHECK(started.error().type == river::error_type::internal);
    CHECK(started.error().message.find("too long to decode") != std::string::npos);
    CHECK(started.error().context.at("limit") == river::max_encoded_token_size);
    CHECK(c.stats().runs_started == 0u);
    CHECK(c.active_runs() == 0u);
    co_await sleep_for(10ms);
    CHECK(runner_calls.load() == calls_before);
  });
}

TEST_CASE("async_start, async_resume and async_cancel work with callbacks") {
  asio::io_context io;
  river::caller c(io.get_executor(), chat_router());
  river::error_code start_ec = river::errc::not_open, resume_ec = river::errc::not_open, cancel_ec;
  std::vector<std::string> seen;
  std::function<void(river::event_reader&)> pump;
  river::event_reader kept;
  c.async_start("chat", json{{"message", "x y"}}, [&](river::error_code ec, river::event_reader r) {
    start_ec = ec;
    kept = std::move(r);
    pump = [&](river::event_reader& rd) {
      rd.async_next([&](river::error_code ec2, std::optional<river::event> ev) {
        REQUIRE_FALSE(ec2);
        if (!ev) {
          c.async_cancel(kept.resumption_token(), [&](river::error_code ec3) { cancel_ec = ec3; });
          c.async_resume("garbage", [&](river::error_code ec4, river::event_reader) { resume_ec = ec4; });
          return;
        }
        seen.push_back(river::to_json_text(*ev));
        pump(rd);
      });
    };
    pump(kept);
  });
  io.run_for(10s);
  CHECK_FALSE(start_ec);
  CHECK(seen.size() == 4);
  CHECK(resume_ec == errc::invalid_token);
  CHECK(cancel_ec == errc::run_already_finished);
}

TEST_CASE("async operations work with use_awaitable and as_tuple") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router());
    json input = {{"message", "p q"}};
    auto reader = co_await c.async_start("chat", input, {}, asio::use_awaitable);
    int n = 0;
    while (auto ev = co_await reader.async_next(asio::use_awaitable)) ++n;
    CHECK(n == 4);
    auto [ec, r2] = co_await c.async_resume("garbage", std::nullopt, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == errc::invalid_token);
    CHECK_FALSE(r2.is_open());
    try {
      co_await c.async_cancel("garbage", asio::use_awaitable);
      FAIL("no exception");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == errc::invalid_token);
    }
  });
}

TEST_CASE("a provider's refusal to store a new run reaches the caller") {
  river::memory::config cfg;
  cfg.max_runs = 1;
  auto p = std::make_shared<river::memory::provider>(cfg);
  river::router routes;
  routes.add("slow", river::stream<json, json>().provider(p).runner(
                         [](river::run_context<json, json>&) -> asio::awaitable<void> { co_await sleep_for(1h); }));
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), routes);
    json input = nullptr;
    auto first = co_await c.start("slow", input);
    CHECK(first.has_value());
    auto second = co_await c.start("slow", input);
    REQUIRE(second.has_error());
    CHECK(second.error().code == errc::capacity_exceeded);
    CHECK(second.error().type == river::error_type::storage);
    c.cancel_all();
    auto evs = co_await collect(*first);
    CHECK(evs.back().kind() == event_kind::aborted);
  });
}

TEST_CASE("caller statistics count runs by outcome") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::caller c(io.get_executor(), chat_router());
    for (int i = 0; i < 3; ++i) {
      auto r = co_await start_chat(c, "a b");
      (void)co_await collect(r);
    }
    while (c.active_runs() != 0) co_await sleep_for(1ms);
    auto s = c.stats();
    CHECK(s.runs_started == 3);
    CHECK(s.runs_ended == 3);
    CHECK(s.runs_failed == 0);
    CHECK(s.runs_aborted == 0);
    CHECK(s.events_appended == 12);
    CHECK(s.runs_active == 0);
  });
}
