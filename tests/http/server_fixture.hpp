#pragma once

// Streams and a server on loopback for the HTTP server tests.

#include <river/http/server.hpp>
#include <river/river.hpp>

#include "support/bounded.hpp"
#include "support/http_client.hpp"
#include "support/sse_parsers.hpp"

#include <boost/describe/class.hpp>

#include <sys/resource.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace river::test {

/// Suspends the calling coroutine for `ms` milliseconds.
asio::awaitable<void> pause_ms(int ms);

// The inputs and chunks of the test streams.
struct say_input {
  std::string message;
  int delay_ms = 0;
};
BOOST_DESCRIBE_STRUCT(say_input, (), (message, delay_ms))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(say_input, message, delay_ms)

struct text_chunk {
  std::string text;
  friend bool operator==(const text_chunk&, const text_chunk&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(text_chunk, text)

struct tick_input {
  int count = 0;
  int delay_ms = 0;
};
BOOST_DESCRIBE_STRUCT(tick_input, (), (count, delay_ms))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(tick_input, count, delay_ms)

struct tick_chunk {
  int n = 0;
  friend bool operator==(const tick_chunk&, const tick_chunk&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(tick_chunk, n)

struct blob_input {
  int count = 0;
  int size = 0;
};
BOOST_DESCRIBE_STRUCT(blob_input, (), (count, size))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(blob_input, count, size)

/// The router of the tests (server_fixture.cpp), every stream on `provider` (the router's own
/// when null):
/// - "chat" {message, delay_ms}: one chunk {"text": word} per word;
/// - "fail": one chunk, then the runner throws "boom" (a fatal error);
/// - "warn": a chunk, a non-fatal error, another chunk;
/// - "tick" {count, delay_ms}: chunks {"n": i}, for cancel and disconnect tests;
/// - "tick_unwatched": "tick", cancelled once nobody has read it for 200 ms;
/// - "blob" {count, size}: `count` chunks {"text": size times 'x'}, as fast as they are stored.
river::router test_router(std::shared_ptr<river::provider> provider = nullptr);

/// Options for a test server. Every test is one client that starts many runs quickly: the
/// per-client limits are off, except in the tests of those limits.
inline river::http::server_options test_options() {
  river::http::server_options o;
  o.address = "127.0.0.1";
  o.port = 0;
  o.max_runs_per_client = 0;
  o.endpoint.start_rate_per_client.per_second = 0;
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

/// `token` with its JSON changed by `change`, encoded again (its signature left as it was).
std::string tamper(const std::string& token, const std::function<void(nlohmann::json&)>& change);

/// Raises the open-file limit to its hard limit (tests with hundreds of sockets).
inline void raise_fd_limit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
}

}  // namespace river::test
