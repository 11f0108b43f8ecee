#pragma once

// Streams and a server on loopback for the HTTP server tests.

#include <river/http/server.hpp>
#include <river/river.hpp>

#include "support/bounded.hpp"
#include "support/http_client.hpp"
#include "support/sse_parsers.hpp"

#include <sys/resource.h>

#include <chrono>

namespace river::test {

/// Suspends the calling coroutine for `ms` milliseconds.
asio::awaitable<void> pause_ms(int ms);

/// The router of the tests (server_fixture.cpp):
/// - "chat" {message, delay_ms}: one chunk {"text": word} per word;
/// - "fail": one chunk, then the runner throws "boom" (a fatal error);
/// - "warn": a chunk, a non-fatal error, another chunk;
/// - "tick" {count, delay_ms}: chunks {"n": i}, for cancel and disconnect tests.
river::router test_router();

inline river::http::server_options test_options() {
  river::http::server_options o;
  o.address = "127.0.0.1";
  o.port = 0;
  return o;
}

/// A server on a free loopback port, on the test's io_context.
struct test_server {
  explicit test_server(asio::io_context& io, river::http::server_options o = test_options())
      : srv(io.get_executor(), test_router(), std::move(o)) {
    auto ec = srv.start();
    REQUIRE_FALSE(ec);
    ep = srv.local_endpoint();
  }
  river::http::server srv;
  tcp::endpoint ep;

  asio::awaitable<void> stop(std::chrono::milliseconds grace = std::chrono::milliseconds(500)) {
    auto r = co_await srv.shutdown(grace);
    (void)r;
  }
};

/// The JSON body of a start request.
std::string start_body(std::string_view stream, const nlohmann::json& input);

/// What an event stream must be, byte for byte: each stored record of the run after `after`, as
/// a data message followed by an id-only message. Read from the provider, not from HTTP.
asio::awaitable<std::string> expected_stream(river::caller& c, std::string token,
                                             std::optional<std::string> after = std::nullopt);

/// The resumption token in the start event of an event stream's body.
std::string token_of(const std::string& body);

/// Raises the open-file limit to its hard limit (tests with hundreds of sockets).
inline void raise_fd_limit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
}

}  // namespace river::test
