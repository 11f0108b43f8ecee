#include <river/http/client.hpp>

#include "support/bounded.hpp"
#include "support/collect.hpp"
#include "support/fake_river.hpp"
#include "support/read_stream.hpp"
#include "support/test_tls.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace river::test;

namespace client_tls_test {

std::shared_ptr<asio::ssl::context> server_context(const test_identity& server) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->use_certificate_chain(asio::buffer(server.cert_pem));
  ctx->use_private_key(asio::buffer(server.key_pem), asio::ssl::context::pem);
  return ctx;
}

river::http::client_options options_with(std::shared_ptr<asio::ssl::context> ctx) {
  river::http::client_options o;
  o.tls_context = std::move(ctx);
  o.initial_backoff = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(20);
  o.connect_timeout = std::chrono::seconds(5);
  return o;
}

}  // namespace client_tls_test

using namespace client_tls_test;

TEST_CASE("client reads a run over https from a server whose certificate it verifies", "[http][tls]") {
  auto ca = make_test_ca();
  auto server_id = make_test_server(ca);
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.cut_after = {2};  // and resumes over TLS
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler(), server_context(server_id));
    river::http::client c(io.get_executor(), server.url("https"), options_with(trusting(ca)));
    auto input = chat_input();
    auto opened = co_await c.start("chat", input);
    INFO((opened.has_value() ? std::string() : opened.error().message));
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);
    CHECK(texts(events) == river.events());
    CHECK(opened->reconnections() == 1u);
    REQUIRE(server.requests().size() == 2u);
    CHECK(server.requests()[0].server_name.empty());  // no SNI for an IP address
    CHECK(server.requests()[1].header("Last-Event-ID") == fake_river::position(2));
    CHECK(server.failed_handshakes() == 0);
  });
}

TEST_CASE("client names the host in SNI and checks the certificate names it", "[http][tls]") {
  auto ca = make_test_ca();
  auto server_id = make_test_server(ca, "DNS:localhost");
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(1);
    scripted_server server(io.get_executor(), river.handler(), server_context(server_id));
    river::http::client c(io.get_executor(), server.url("https", "localhost"), options_with(trusting(ca)));
    auto opened = co_await c.resume(river.token());
    INFO((opened.has_value() ? std::string() : opened.error().message));
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);
    CHECK(texts(events) == river.events());
    REQUIRE(server.requests().size() == 1u);
    CHECK(server.requests()[0].server_name == "localhost");
    CHECK(server.requests()[0].header("Host") == "localhost:" + std::to_string(server.port()));
  });
}

TEST_CASE("client refuses a server certificate that does not verify, with a clear error", "[http][tls]") {
  auto ca = make_test_ca();
  for (auto& v : unverifiable_servers(ca)) {
    INFO(v.name);
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
      fake_river river(1);
      scripted_server server(io.get_executor(), river.handler(), server_context(v.server));
      river::http::client c(io.get_executor(), server.url("https", v.host), options_with(v.client));
      auto input = chat_input();
      auto r = co_await c.start("chat", input);
      REQUIRE_FALSE(r.has_value());
      INFO(r.error().message);
      CHECK(r.error().code.category() == asio::error::get_ssl_category());
      CHECK(r.error().type == river::error_type::network);
      CHECK(r.error().message.find("TLS handshake with " + v.host + ":" + std::to_string(server.port()) + " failed (" +
                                   v.reason + ")") == 0);
      CHECK(r.error().message.find("certificate verify failed") != std::string::npos);
      CHECK(server.requests().empty());  // nothing was sent
    });
  }
}

TEST_CASE("client accepts a certificate for another host when host checks are off", "[http][tls]") {
  auto ca = make_test_ca();
  auto server_id = make_test_server(ca, "DNS:other.example");
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(1);
    scripted_server server(io.get_executor(), river.handler(), server_context(server_id));
    auto options = options_with(trusting(ca));
    options.verify_host = false;
    river::http::client c(io.get_executor(), server.url("https"), options);
    auto opened = co_await c.resume(river.token());
    INFO((opened.has_value() ? std::string() : opened.error().message));
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);
    CHECK(texts(events) == river.events());
  });
}

TEST_CASE("client over https fails cleanly against a plain HTTP server", "[http][tls]") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(1);
    scripted_server server(io.get_executor(), river.handler());
    auto options = options_with(nullptr);
    options.connect_timeout = std::chrono::milliseconds(300);  // the server waits for a request line
    river::http::client c(io.get_executor(), server.url("https"), options);
    auto input = chat_input();
    auto r = co_await c.start("chat", input);
    REQUIRE_FALSE(r.has_value());
    INFO(r.error().message);
    CHECK(r.error().message.find("TLS handshake with 127.0.0.1:" + std::to_string(server.port()) + " failed") == 0);
    server.stop();
  });
}
