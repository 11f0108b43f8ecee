// CORS, signed tokens, TLS, graceful shutdown, and the handler inside an existing Beast server.

#include <river/http/server.hpp>
#include <river/http/status.hpp>
#include <river/http/token_signing.hpp>

#include "http/server_fixture.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>

using namespace river::test;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace ssl = boost::asio::ssl;
namespace beast_http = boost::beast::http;

namespace {

asio::awaitable<http_connection*> open_request(http_connection& c, tcp::endpoint ep, std::string bytes) {
  auto ec = co_await c.open(ep, std::move(bytes));
  REQUIRE_FALSE(ec);
  co_return &c;
}

}  // namespace

TEST_CASE("the error table maps River's codes to the documented statuses", "[http]") {
  using river::errc;
  using river::http::status_of;
  CHECK(status_of(errc::invalid_token) == 400);
  CHECK(status_of(errc::token_signature_mismatch) == 403);
  CHECK(status_of(errc::invalid_request) == 400);
  CHECK(status_of(errc::stream_not_found) == 404);
  CHECK(status_of(errc::invalid_input) == 400);
  CHECK(status_of(errc::run_not_found) == 404);
  CHECK(status_of(errc::provider_mismatch) == 400);
  CHECK(status_of(errc::not_resumable) == 409);
  CHECK(status_of(errc::invalid_position) == 400);
  CHECK(status_of(errc::run_closed) == 500);
  CHECK(status_of(errc::client_limit_exceeded) == 429);
  CHECK(status_of(errc::run_already_finished) == 409);
  CHECK(status_of(errc::capacity_exceeded) == 503);
  CHECK(status_of(errc::run_too_large) == 500);
  CHECK(status_of(errc::storage_failure) == 500);
  CHECK(status_of(errc::malformed_event) == 500);
  CHECK(status_of(river::error_code(asio::error::timed_out)) == 500);
  CHECK(status_of(river::error_code{}) == 500);
}

TEST_CASE("CORS: allowed origins get the headers, on preflight, streams and errors, others do not", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.endpoint.cors_origins = {"https://app.example"};
    test_server s(io, o);
    {
      http_connection c(io.get_executor());
      co_await open_request(c, s.ep,
                            "OPTIONS /api/river HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                            "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n");
      CHECK(c.status() == 204);
      CHECK(c.header("Access-Control-Allow-Origin") == "https://app.example");
      CHECK(c.header("Access-Control-Allow-Methods") == "GET, POST, DELETE, OPTIONS");
      CHECK(c.header("Access-Control-Allow-Headers") == "content-type");
      CHECK(c.header("Access-Control-Max-Age") == "600");
      CHECK(c.header("Vary") == "Origin");
    }
    json input = {{"message", "a"}};
    {
      http_connection c(io.get_executor());
      co_await open_request(c, s.ep,
                            post_request("/api/river", start_body("chat", input), "text/plain;charset=UTF-8",
                                         "Origin: https://app.example\r\n"));
      CHECK(c.status() == 200);
      CHECK(c.header("Access-Control-Allow-Origin") == "https://app.example");
      co_await c.read_to_end();
      CHECK(parse_like_river_client(c.body()).size() == 3);
    }
    {
      http_connection c(io.get_executor());
      co_await open_request(c, s.ep,
                            "GET /api/river?resumeKey=bad HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n");
      CHECK(c.status() == 400);
      CHECK(c.header("Access-Control-Allow-Origin") == "https://app.example");
    }
    {
      http_connection c(io.get_executor());
      co_await open_request(c, s.ep,
                            post_request("/api/river", start_body("chat", input), "application/json",
                                         "Origin: https://evil.example\r\n"));
      CHECK(c.status() == 200);
      CHECK_FALSE(c.has_header("Access-Control-Allow-Origin"));
      co_await c.read_to_end();
    }
    co_await s.stop();
  });
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.endpoint.cors_origins = {"*"};
    test_server s(io, o);
    http_connection c(io.get_executor());
    co_await open_request(c, s.ep, "OPTIONS /api/river HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:5173\r\n\r\n");
    CHECK(c.status() == 204);
    CHECK(c.header("Access-Control-Allow-Origin") == "http://localhost:5173");
    CHECK(c.header("Access-Control-Allow-Headers") == "Content-Type, Last-Event-ID");
    co_await s.stop();
  });
}

TEST_CASE("token signatures are HMAC-SHA256 of the canonical token text, base64url", "[http]") {
  river::resumption_token t{"memory", "chat", "default", "run-1", {}};
  // printf '%s' '{"providerId":"memory","routerStreamKey":"chat","streamStorageId":"default","streamRunId":"run-1"}'
  //   | openssl dgst -sha256 -hmac s3cret -binary | base64 | tr '+/' '-_' | tr -d '='
  CHECK(river::http::token_signature(t, "s3cret") == "u1vGNCD4fhuARIsNZ0WRuDIT9R3Aw30-FT5JP0thHLA");
  t.signature = "anything";
  CHECK(river::http::token_signature(t, "s3cret") == "u1vGNCD4fhuARIsNZ0WRuDIT9R3Aw30-FT5JP0thHLA");
  CHECK_FALSE(river::http::verify_token_signature(t, "s3cret"));
  t.signature = "u1vGNCD4fhuARIsNZ0WRuDIT9R3Aw30-FT5JP0thHLA";
  CHECK(river::http::verify_token_signature(t, "s3cret"));
  CHECK_FALSE(river::http::verify_token_signature(t, "other"));
  t.stream_storage_id = "other";
  CHECK_FALSE(river::http::verify_token_signature(t, "s3cret"));
  CHECK_FALSE(river::http::signed_tokens("").sign_token);
}

TEST_CASE("with a secret, tokens are signed and a tampered token gets 403", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.token_secret = "s3cret";
    test_server s(io, o);
    json input = {{"message", "a b"}};
    auto started = co_await exchange(s.ep, post_request("/api/river", start_body("chat", input)));
    const auto token = token_of(started.body);
    auto decoded = river::decode_token(token);
    REQUIRE(decoded.has_value());
    CHECK(decoded->signature == river::http::token_signature(*decoded, "s3cret"));

    auto ok = co_await exchange(s.ep, get_request("/api/river", token));
    CHECK(ok.status == 200);
    CHECK(ok.body == started.body);

    const std::vector<std::string> bad = {
        tamper(token, [](json& j) { j["streamStorageId"] = "other"; }),
        tamper(token, [](json& j) { j["streamRunId"] = "another-run"; }),
        tamper(token, [](json& j) { j.erase("sig"); }),
        tamper(token, [](json& j) { j["sig"] = "AAAA"; }),
        tamper(token, [&](json& j) {
          auto t = *decoded;
          j["sig"] = river::http::token_signature(t, "wrong secret");
        }),
    };
    for (const auto& t : bad) {
      auto r = co_await exchange(s.ep, get_request("/api/river", t));
      CHECK(r.status == 403);
      auto e = json::parse(r.body);
      CHECK(e["__name__"] == "RiverError");
      CHECK(e["message"] == "The resumption token's signature does not match");
      auto d = co_await exchange(s.ep, delete_request("/api/river", t));
      CHECK(d.status == 403);
    }
    co_await s.stop();
  });
}

TEST_CASE("with a certificate and key the server speaks HTTPS", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.tls_certificate_file = RIVER_TEST_DATA_DIR "/cert.pem";
    o.tls_private_key_file = RIVER_TEST_DATA_DIR "/key.pem";
    test_server s(io, o);
    CHECK(s.srv.tls());
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(RIVER_TEST_DATA_DIR "/cert.pem");
    ctx.set_verify_mode(ssl::verify_peer);
    ssl::stream<tcp::socket> tls(io, ctx);
    co_await tls.next_layer().async_connect(s.ep, asio::use_awaitable);
    co_await tls.async_handshake(ssl::stream_base::client, asio::use_awaitable);
    json input = {{"message", "secure words"}};
    auto req = post_request("/api/river", start_body("chat", input));
    co_await asio::async_write(tls, asio::buffer(req), asio::use_awaitable);
    boost::beast::flat_buffer buf;
    beast_http::response<beast_http::string_body> res;
    co_await beast_http::async_read(tls, buf, res, asio::use_awaitable);
    CHECK(res.result_int() == 200);
    auto events = parse_like_river_client(res.body());
    REQUIRE(events.size() == 4);
    CHECK(events[2]["chunk"]["text"] == "words");
    // Plain HTTP to the TLS port gets no answer.
    auto plain = co_await exchange(s.ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(plain.status == 0);
    co_await s.stop();
  });
  CHECK_THROWS_AS(
      [] {
        asio::io_context io;
        auto o = test_options();
        o.tls_certificate_file = "/nonexistent/cert.pem";
        o.tls_private_key_file = "/nonexistent/key.pem";
        river::http::server s(io.get_executor(), test_router(), o);
      }(),
      std::runtime_error);
}

TEST_CASE("shutdown lets runs finish within the grace period, streams included", "[http][integration][shutdown]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    http_connection streaming(io.get_executor());
    json input = {{"count", 20}, {"delay_ms", 10}};
    co_await open_request(streaming, s.ep, post_request("/api/river", start_body("tick", input)));
    co_await streaming.read_events(2);
    http_connection idle(io.get_executor());
    co_await open_request(idle, s.ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await idle.read_to_end();
    bool stopped = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await s.stop(5s);
          stopped = true;
        },
        asio::detached);
    co_await streaming.read_to_end();
    CHECK(streaming.done());
    auto events = parse_like_river_client(streaming.body());
    REQUIRE(events.size() == 22);
    CHECK(events.back()["special"]["RIVER_SPECIAL_TYPE_KEY"] == "stream_end");
    for (int i = 0; i < 300 && !stopped; ++i) co_await pause_ms(10);
    CHECK(stopped);
    CHECK(s.srv.open_connections() == 0);
    // The idle connection was closed, and nothing is accepted any more.
    auto ec = co_await idle.read_head();
    CHECK(ec);
    http_connection late(io.get_executor());
    ec = co_await late.connect(s.ep);
    CHECK(ec);
  });
}

TEST_CASE("shutdown cancels runs past the grace period, their streams end with aborted", "[http][integration][shutdown]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    http_connection streaming(io.get_executor());
    json input = {{"count", 100000}, {"delay_ms", 5}};
    co_await open_request(streaming, s.ep, post_request("/api/river", start_body("tick", input)));
    co_await streaming.read_events(2);
    const auto before = std::chrono::steady_clock::now();
    co_await s.stop(100ms);
    CHECK(std::chrono::steady_clock::now() - before < 3s);
    CHECK(s.srv.get_caller().active_runs() == 0);
    CHECK(s.srv.get_caller().stats().runs_aborted == 1);
    co_await streaming.read_to_end();
    CHECK(streaming.done());
    auto events = parse_like_river_client(streaming.body());
    CHECK(events.back() == json{{"type", "aborted"}});
  });
}

namespace {

// Splits a raw chunked body into its chunks' payloads; `complete` when the last chunk came.
struct dechunked {
  std::string payload;
  bool complete = false;
  bool malformed = false;
};

dechunked dechunk(std::string_view raw) {
  dechunked d;
  for (;;) {
    const auto line_end = raw.find("\r\n");
    if (line_end == std::string_view::npos) return d;
    std::size_t size = 0;
    const auto size_text = raw.substr(0, line_end);
    auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || p != size_text.data() + size_text.size()) {
      d.malformed = true;
      return d;
    }
    raw.remove_prefix(line_end + 2);
    if (size == 0) {
      d.complete = raw == "\r\n";
      d.malformed = !d.complete;
      return d;
    }
    if (raw.size() < size + 2) return d;  // a chunk cut short
    if (raw.substr(size, 2) != "\r\n") {
      d.malformed = true;
      return d;
    }
    d.payload.append(raw.substr(0, size));
    raw.remove_prefix(size + 2);
  }
}

}  // namespace

TEST_CASE("close_streams cuts a stream whose run goes on: whole chunks, no last chunk, clients resume",
          "[http][integration][shutdown]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    // A stream of a run that outlives the shutdown (here: a runner asleep for four seconds, as a
    // run owned by another server would be) must not look finished: a clean end of response
    // would leave the TypeScript River client waiting for ever.
    test_server s(io);
    auto& h = s.srv.get_handler();
    tcp::socket sock(io);
    co_await sock.async_connect(s.ep, asio::use_awaitable);
    json input = {{"count", 1}, {"delay_ms", 4000}};
    co_await asio::async_write(sock, asio::buffer(post_request("/api/river", start_body("tick", input))),
                               asio::use_awaitable);
    std::string raw;
    char buf[4096];
    auto read_more = [&]() -> asio::awaitable<bool> {
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      raw.append(buf, n);
      co_return !ec;
    };
    // Up to the start event's id-only message.
    auto start_event_read = [&] {
      const auto head_end = raw.find("\r\n\r\n");
      if (head_end == std::string::npos) return false;
      const auto so_far = dechunk(std::string_view(raw).substr(head_end + 4));
      return so_far.payload.find("\nid: ") != std::string::npos && so_far.payload.ends_with("\n\n");
    };
    while (!start_event_read()) {
      const bool more = co_await read_more();
      REQUIRE(more);
    }
    CHECK(h.open_streams() == 1);
    h.close_streams();
    for (;;) {
      const bool more = co_await read_more();
      if (!more) break;
    }
    const auto head_end = raw.find("\r\n\r\n");
    REQUIRE(head_end != std::string::npos);
    const auto head = raw.substr(0, head_end + 4);
    CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(head.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    const auto body = dechunk(std::string_view(raw).substr(head_end + 4));
    // Byte for byte: the run's stored records so far, in whole chunks, and no last chunk.
    CHECK_FALSE(body.malformed);
    CHECK_FALSE(body.complete);
    const auto token = token_of(body.payload);
    // (The whole run as stored, once it ended: the cut stream is its beginning.)
    const auto stored = co_await expected_stream(s.srv.get_caller(), token);
    CHECK(stored.rfind(body.payload, 0) == 0);
    CHECK(stored.size() > body.payload.size());
    CHECK(raw.find("0\r\n\r\n") == std::string::npos);
    // The TypeScript client has its start event, then its fetch fails on the cut ("terminated"):
    // the app hears an error. An EventSource reconnects with the start event's position.
    CHECK(parse_like_river_client(body.payload).size() == 1u);
    CHECK_FALSE(parse_like_event_source(body.payload).last_event_id.empty());
    // New streams are refused while closing.
    json more = {{"message", "x"}};
    auto refused = co_await exchange(s.ep, post_request("/api/river", start_body("chat", more)));
    CHECK(refused.status == 503);
    co_await s.stop(50ms);
  });
}

TEST_CASE("the handler serves River inside an existing Beast server", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    river::caller caller(io.get_executor(), test_router());
    river::http::handler_options ho;
    ho.path = "/river";
    river::http::handler handler(caller, ho);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto ep = acceptor.local_endpoint();
    // The application's own session: reads requests, hands River's to the handler.
    auto session = [&](boost::beast::tcp_stream stream) -> asio::awaitable<void> {
      boost::beast::flat_buffer buffer;
      for (;;) {
        river::http::request req;
        auto [ec, n] = co_await beast_http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
        if (ec) break;
        if (handler.matches(req.target())) {
          auto action = co_await handler.serve(stream, std::move(req));
          if (action == river::http::connection_action::close) break;
          continue;
        }
        beast_http::response<beast_http::string_body> res(beast_http::status::ok, req.version());
        res.body() = "app";
        res.prepare_payload();
        co_await beast_http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      }
    };
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < 3; ++i) {
            auto socket = co_await acceptor.async_accept(asio::use_awaitable);
            asio::co_spawn(io, session(boost::beast::tcp_stream(std::move(socket))), asio::detached);
          }
        },
        asio::detached);
    json input = {{"message", "inside an app"}};
    auto started = co_await exchange(ep, post_request("/river", start_body("chat", input)));
    CHECK(started.status == 200);
    auto events = parse_like_river_client(started.body);
    REQUIRE(events.size() == 5);
    auto resumed = co_await exchange(ep, get_request("/river", token_of(started.body), "2"));
    CHECK(parse_like_river_client(resumed.body).size() == 3);
    auto app = co_await exchange(ep, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(app.body == "app");
    CHECK(handler.metrics_text().find("river_runs_started_total 1\n") != std::string::npos);
  });
}
