#include "http/server_fixture.hpp"

#include <river/detail/base64.hpp>

#include <boost/asio/steady_timer.hpp>

#include <sstream>
#include <stdexcept>

namespace river::test {

asio::awaitable<void> pause_ms(int ms) {
  if (ms <= 0) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await t.async_wait(asio::use_awaitable);
}

river::router test_router(std::shared_ptr<river::provider> provider) {
  river::router r;
  r.add("chat", river::stream<say_input, text_chunk>().provider(provider).runner(
                    [](river::run_context<say_input, text_chunk>& ctx) -> asio::awaitable<void> {
                      std::istringstream words(ctx.input().message);
                      for (std::string w; words >> w;) {
                        co_await pause_ms(ctx.input().delay_ms);
                        text_chunk c{w};
                        co_await ctx.append(c);
                      }
                    }));
  r.add("fail", river::stream<nlohmann::json, text_chunk>().provider(provider).runner(
                    [](river::run_context<nlohmann::json, text_chunk>& ctx) -> asio::awaitable<void> {
                      text_chunk c{"before"};
                      co_await ctx.append(c);
                      throw std::runtime_error("boom");
                    }));
  r.add("warn", river::stream<nlohmann::json, text_chunk>().provider(provider).runner(
                    [](river::run_context<nlohmann::json, text_chunk>& ctx) -> asio::awaitable<void> {
                      text_chunk a{"a"};
                      co_await ctx.append(a);
                      river::error e("careful", river::error_type::custom, {{"step", 1}});
                      co_await ctx.append_error(e);
                      text_chunk b{"b"};
                      co_await ctx.append(b);
                    }));
  auto ticks = [](river::run_context<tick_input, tick_chunk>& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < ctx.input().count; ++i) {
      co_await pause_ms(ctx.input().delay_ms);
      tick_chunk c{i};
      co_await ctx.append(c);
    }
  };
  r.add("tick", river::stream<tick_input, tick_chunk>().provider(provider).runner(ticks));
  const auto unwatched = river::disconnect_policy::cancel_when_unwatched(std::chrono::milliseconds(200));
  r.add("tick_unwatched",
        river::stream<tick_input, tick_chunk>().provider(provider).disconnect(unwatched).runner(ticks));
  r.add("blob", river::stream<blob_input, text_chunk>().provider(provider).runner(
                    [](river::run_context<blob_input, text_chunk>& ctx) -> asio::awaitable<void> {
                      const text_chunk c{std::string(static_cast<std::size_t>(ctx.input().size), 'x')};
                      for (int i = 0; i < ctx.input().count; ++i) co_await ctx.append(c);
                    }));
  return r;
}

/// The JSON body of a start request.
std::string start_body(std::string_view stream, const nlohmann::json& input) {
  nlohmann::json j = {{"routerStreamKey", stream}, {"input", input}};
  return j.dump();
}

/// What an event stream must be, byte for byte: each stored record of the run after `after`, as
/// a data message followed by an id-only message. Read from the provider, not from HTTP.
asio::awaitable<std::string> expected_stream(river::caller& c, std::string token, std::optional<std::string> after) {
  auto resumed = co_await c.resume(std::move(token), std::move(after));
  auto reader = std::move(resumed).value();
  auto log = reader.release();
  std::string out;
  std::vector<river::record_view> batch;
  for (;;) {
    batch.clear();
    auto st = co_await log->read(batch, 64, std::chrono::steady_clock::time_point::max());
    for (auto& r : batch) out.append("data: ").append(r.data).append("\n\nid: ").append(r.position).append("\n\n");
    if (!st || *st == river::read_status::end) break;
  }
  co_return out;
}

/// The resumption token in the start event of an event stream's body.
std::string token_of(const std::string& body) {
  auto events = parse_like_river_client(body);
  if (events.empty()) return {};
  return events[0]["special"].value("encodedResumptionToken", "");
}

std::string tamper(const std::string& token, const std::function<void(nlohmann::json&)>& change) {
  std::string text;
  river::detail::base64_failure why;
  REQUIRE(river::detail::base64_decode(token, text, why));
  auto j = nlohmann::json::parse(text);
  change(j);
  return river::detail::base64_encode(j.dump());
}

}  // namespace river::test
