#pragma once

#include <river/detail/spawn.hpp>
#include <river/http/handler.hpp>
#include <river/http/options.hpp>
#include <river/router.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace river::http {

/// A complete response for a path the River endpoint does not serve (a web page, say).
struct simple_response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra header fields
};

/// Answers requests for other paths; `std::nullopt` lets the server answer 404.
using route_function = std::function<std::optional<simple_response>(const request&)>;

/// A ready HTTP server for a router: listens, reads requests within limits, serves the River
/// endpoint through a `handler`, plus `/healthz`, `/metrics` and any extra routes; optionally
/// over TLS.
///
/// Limits (`server_options`): header size (431), body size (413), the time to read a request
/// (408), the idle time of a kept-alive connection, the time of one write (a client that stops
/// reading is dropped), the number of connections (503 past it). A slow client holds only its
/// own connection.
///
/// The server runs on the executor it is given; it starts no thread (`run_server` does, if asked).
/// Each connection runs on its own strand, so the executor may be an `io_context` run by several
/// threads.
///
/// Thread safety: `start`, `async_shutdown` and the accessors may be called from any thread.
/// Lifetimes: keep the server until `async_shutdown` completed (its destructor stops accepting and
/// closes connections without waiting).
class server {
 public:
  using executor_type = executor;

  /// Builds the server and its caller (with signed tokens when `options.token_secret`
  /// is set). \throws std::runtime_error when TLS files are set but cannot be loaded.
  server(executor_type ex, router routes, server_options options = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  executor_type get_executor() const noexcept;
  const server_options& options() const noexcept;
  river::caller& get_caller() noexcept;
  http::handler& get_handler() noexcept;

  /// Answers requests for paths other than the endpoint, `/healthz` and `/metrics`. Set it
  /// before `start`.
  void set_routes(route_function routes);

  /// Binds, listens and begins accepting. Fails with the socket's error (address in use, ...).
  error_code start();

  /// The address the server listens on (its port when `options.port` was 0). Valid after `start`.
  asio::ip::tcp::endpoint local_endpoint() const;

  /// True when the server speaks HTTPS.
  bool tls() const noexcept;

  /// Connections open now.
  std::size_t open_connections() const;

  /// Most connections open at once: `max_connections`, lowered at `start` to what the process's
  /// descriptor limit leaves room for. Past it new connections get 503.
  std::size_t connection_limit() const noexcept;

  /// Stops gracefully: stops accepting, closes idle connections, lets runs in progress finish
  /// for up to `grace` (their streams go on meanwhile), then cancels those still running, ends
  /// every open response cleanly, closes the connections and closes every provider of the
  /// router (`provider::close`). Completes with `void(error_code)` once all of that is done.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_shutdown(std::chrono::milliseconds grace, Token&& token = {}) {
    return river::detail::spawn_result<void>(get_executor(), shutdown(grace), std::forward<Token>(token));
  }

  /// `async_shutdown` as a coroutine.
  asio::awaitable<result<void>> shutdown(std::chrono::milliseconds grace);

  /// The Prometheus text served at `/metrics`.
  std::string metrics_text() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// How `run_server` runs a server.
struct run_options {
  /// Threads that run the server's `io_context`.
  unsigned threads = 1;
  /// At SIGINT or SIGTERM, how long runs in progress may go on before they are cancelled.
  std::chrono::milliseconds grace = std::chrono::seconds(10);
  /// Called once the server listens, with the server (its address: `local_endpoint()`).
  std::function<void(const server&)> on_listening;
  /// Answers paths other than the River endpoint, `/healthz` and `/metrics` (`server::set_routes`).
  route_function routes;
  /// Before listening, how long to wait for every provider to reach its storage (the Redis
  /// provider's first connection); past it `run_server` says why and returns 1. 0 listens at
  /// once (starts are then refused with 503 until the storage answers).
  std::chrono::milliseconds wait_for_storage{0};
};

/// Builds the router once the server's executor exists: what a provider that does I/O of its own
/// (the Redis provider) is constructed with.
using router_factory = std::function<router(const executor&)>;

/// Runs a server on an `io_context` of its own with `run.threads` threads until SIGINT or SIGTERM,
/// then shuts it down gracefully: runs get `run.grace` to finish, open streams end, and every
/// provider of the router is closed (`provider::close`) while the `io_context` still runs.
/// Returns 0, or 1 when the server could not start (the reason is printed to stderr).
int run_server(router routes, server_options options, run_options run = {});

/// `run_server` for a router whose providers need the server's executor: `make_routes` is called
/// once, with it, before the server starts. A Redis-backed server:
///
/// ```
/// return river::http::run_server([](const river::executor& ex) {
///   river::redis::config cfg;
///   cfg.url = "redis://127.0.0.1:6379";
///   auto redis = std::make_shared<river::redis::provider>(ex, cfg);
///   river::router routes;
///   routes.add("ask", river::stream<ask, std::string>().provider(redis).runner(answer));
///   return routes;
/// }, river::http::server_options{});
/// ```
int run_server(router_factory make_routes, server_options options, run_options run = {});

}  // namespace river::http
