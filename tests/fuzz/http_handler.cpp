// The River endpoint on any request bytes: what Beast's parser accepts (with the server's limits)
// is served by `handler::serve` on an in-memory stream, against a router with one in-memory
// stream, and the bytes written back must be exactly one well-formed HTTP/1.1 response; an event
// stream must carry JSON events up to its run's terminal event. Everything runs on one
// io_context polled a bounded number of times, so each input is fast and deterministic.

#include <river/detail/json_validator.hpp>
#include <river/http/detail/sse_parser.hpp>
#include <river/http/handler.hpp>
#include <river/http/token_signing.hpp>
#include <river/river.hpp>

#include "support/check.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/describe/class.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fuzz_http {

struct say_input {
  std::string text;
  int times = 1;
};
BOOST_DESCRIBE_STRUCT(say_input, (), (text, times))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(say_input, text, times)

struct piece {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(piece, text)

}  // namespace fuzz_http

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using fuzz_http::piece;
using fuzz_http::say_input;

constexpr std::string_view token_placeholder = "@token@";
constexpr int max_polls = 10000;

// "say": appends its text up to three times, then ends; the text "fail" fails the run instead.
river::router make_router() {
  river::router r;
  r.add("say", river::stream<say_input, piece>().runner(
                   [](river::run_context<say_input, piece>& ctx) -> asio::awaitable<void> {
                     const int times = std::clamp(ctx.input().times, 0, 3);
                     for (int i = 0; i < times; ++i) {
                       piece p{ctx.input().text};
                       co_await ctx.append(p);
                     }
                     if (ctx.input().text == "fail") throw std::runtime_error("failed on purpose");
                   }));
  return r;
}

// Polls until `done`, a bounded number of times; false when it never came.
template <class Done>
bool poll_until(asio::io_context& io, Done done) {
  for (int i = 0; i < max_polls && !done(); ++i) {
    io.restart();
    if (io.poll() == 0 && !done()) return false;  // nothing left to run: it never will be
  }
  return done();
}

// A run of "say" that has ended, to resume and cancel by its token.
std::string finished_run(asio::io_context& io, river::caller& c) {
  std::optional<std::string> token;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto reader = co_await c.start("say", {{"text", "before"}, {"times", 2}});
        token = std::string(reader.value().resumption_token());
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  RIVER_FUZZ_CHECK(poll_until(io, [&] { return token.has_value() && c.active_runs() == 0; }));
  return *token;
}

std::optional<river::http::request> parse_request(std::string_view bytes) {
  beast_http::request_parser<beast_http::string_body> parser;
  parser.header_limit(16 * 1024);  // the server's defaults
  parser.body_limit(std::size_t{1} << 20);
  parser.eager(true);
  beast::error_code ec;
  while (!parser.is_done()) {
    const auto used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec || used == 0) return std::nullopt;
    bytes.remove_prefix(used);
  }
  return parser.release();
}

bool is_terminal(const nlohmann::json& ev) {
  if (ev.value("type", "") == "aborted") return true;
  if (ev.value("type", "") != "special" || !ev.contains("special") || !ev["special"].is_object()) return false;
  const auto kind = ev["special"].value("RIVER_SPECIAL_TYPE_KEY", "");
  return kind == "stream_end" || kind == "stream_fatal_error";
}

// An event stream: messages of JSON events, each followed by its position, up to a terminal event.
void check_event_stream(std::string_view body) {
  river::http::detail::sse_parser p;
  p.feed(body);
  std::optional<nlohmann::json> last;
  bool expect_id = false;
  for (;;) {
    river::error_code ec;
    const auto item = p.next(ec);
    RIVER_FUZZ_CHECK(!ec);
    if (item == river::http::detail::sse_item::need_more) break;
    if (item == river::http::detail::sse_item::comment) continue;
    if (item == river::http::detail::sse_item::id) {
      RIVER_FUZZ_CHECK(expect_id && !p.last_event_id().empty());
      expect_id = false;
      continue;
    }
    RIVER_FUZZ_CHECK(!expect_id && river::detail::is_valid_json(p.data()));
    last = nlohmann::json::parse(p.data());
    RIVER_FUZZ_CHECK(last->is_object() && last->contains("type"));
    expect_id = true;
  }
  RIVER_FUZZ_CHECK(p.buffered() == 0 && !expect_id);
  RIVER_FUZZ_CHECK(last && is_terminal(*last));
}

// Exactly one well-formed HTTP/1.1 response, consistent with what `serve` said of the connection.
void check_response(std::string_view bytes, const river::http::request& req, river::http::connection_action action) {
  beast_http::response_parser<beast_http::string_body> parser;
  parser.eager(true);
  parser.skip(req.method() == beast_http::verb::head);
  beast::error_code ec;
  while (!bytes.empty() && !parser.is_done()) {
    const auto used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    RIVER_FUZZ_CHECK(!ec || ec == beast_http::error::need_more);
    if (ec == beast_http::error::need_more) break;
    bytes.remove_prefix(used);
  }
  if (!parser.is_done()) {
    // Only a body that ends with the connection may end without its length.
    RIVER_FUZZ_CHECK(parser.is_header_done() && bytes.empty() && action == river::http::connection_action::close);
    parser.put_eof(ec);
    RIVER_FUZZ_CHECK(!ec && parser.is_done());
  }
  RIVER_FUZZ_CHECK(bytes.empty());  // nothing after the response
  const auto& res = parser.get();
  RIVER_FUZZ_CHECK(res.version() == 11);
  RIVER_FUZZ_CHECK(res.result_int() >= 200 && res.result_int() < 600);
  if (action == river::http::connection_action::keep_alive) RIVER_FUZZ_CHECK(res.keep_alive() && req.keep_alive());
  if (req.method() == beast_http::verb::head) return;
  const auto type = res[beast_http::field::content_type];
  if (res.result_int() >= 400) {
    RIVER_FUZZ_CHECK(type == "application/json" && river::detail::is_valid_json(res.body()));
    const auto e = nlohmann::json::parse(res.body());
    RIVER_FUZZ_CHECK(e.value("__name__", "") == "RiverError");
  } else if (res.result_int() == 200) {
    RIVER_FUZZ_CHECK(type == "text/event-stream");
    check_event_stream(res.body());
  } else if (type == "application/json") {
    RIVER_FUZZ_CHECK(river::detail::is_valid_json(res.body()));
  }
}

}  // namespace

// The first byte's bits choose the endpoint's options: bit 0 signs tokens, bit 1 allows every
// origin (else one). The rest is the request; "@token@" in it becomes the token of a run that
// ended, so that resumes and cancels reach a real run.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return 0;
  const unsigned options = bytes[0];
  std::string raw(reinterpret_cast<const char*>(bytes + 1), size - 1);

  asio::io_context io(1);
  river::caller c(io.get_executor(), make_router(),
                  (options & 1) != 0 ? river::http::signed_tokens("fuzz secret") : river::caller_options{});
  const auto token = finished_run(io, c);
  for (auto at = raw.find(token_placeholder); at != std::string::npos; at = raw.find(token_placeholder, at + token.size()))
    raw.replace(at, token_placeholder.size(), token);

  auto req = parse_request(raw);
  if (!req) return 0;
  const auto served = *req;  // the request as it was, to check the response against

  river::http::handler_options o;
  o.cors_origins = {(options & 2) != 0 ? "*" : "https://app.example"};
  river::http::handler endpoint(c, o);
  beast::test::stream server_end(io), client_end(io);
  server_end.connect(client_end);

  std::optional<river::http::connection_action> action;
  asio::co_spawn(io, endpoint.serve(server_end, std::move(*req)),
                 [&](std::exception_ptr e, river::http::connection_action a) {
                   if (e) std::rethrow_exception(e);  // nothing may escape `serve`
                   action = a;
                 });
  RIVER_FUZZ_CHECK(poll_until(io, [&] { return action.has_value(); }));
  RIVER_FUZZ_CHECK(endpoint.open_streams() == 0);
  // A run the request started ends by itself.
  RIVER_FUZZ_CHECK(poll_until(io, [&] { return c.active_runs() == 0; }));
  check_response(client_end.str(), served, *action);
  return 0;
}
