#pragma once

// The compiled core of River's HTTP client (src/http/client.cpp): one River event stream over
// HTTP, untyped, resumed by itself after a lost connection. The typed public API wraps it.

#include <river/event.hpp>
#include <river/http/client_options.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace river::http::detail {

/// A client's parsed base URL and options, shared by its streams (immutable).
struct client_config;

/// Parses `url` and settles the options (a TLS context for `https://`).
/// \throws std::invalid_argument for a URL that is not absolute `http://` or `https://`.
std::shared_ptr<const client_config> make_client_config(std::string_view url, client_options options);

/// The URL a configuration was made from.
const std::string& config_url(const client_config& cfg) noexcept;

/// One response of events (`POST` start or `GET` resume) and its resumptions.
///
/// Delivery rule: every event of the run reaches `next` once, in order, whatever connections
/// are lost. The source counts the events of the response from where the request resumed, and
/// after a reconnection drops those it delivered before: from the last position the server sent
/// (`Last-Event-ID`), or, for a server that sends none, from the start of the run.
///
/// Not thread-safe: one `next` at a time, and `close` on the executor that runs it.
class event_source {
 public:
  struct impl;

  explicit event_source(std::unique_ptr<impl> p) noexcept;
  event_source(const event_source&) = delete;
  event_source& operator=(const event_source&) = delete;
  ~event_source();

  /// Sends `POST` with `{"routerStreamKey": name, "input": input}` and reads the response's header.
  static asio::awaitable<result<std::unique_ptr<event_source>>> start(std::shared_ptr<const client_config> cfg,
                                                                      std::string name, nlohmann::json input);
  /// Sends `GET ?resumeKey=token`, with `Last-Event-ID: position` when given, and reads the
  /// response's header.
  static asio::awaitable<result<std::unique_ptr<event_source>>> resume(std::shared_ptr<const client_config> cfg,
                                                                       std::string token,
                                                                       std::optional<std::string> position);

  /// The next event, `std::nullopt` after the terminal one, or an error that ends the stream.
  asio::awaitable<result<std::optional<event>>> next();

  /// Ends the stream: a pending `next` completes with `operation_aborted`, later ones fail with
  /// `errc::not_open`. The run goes on at the server.
  void close() noexcept;

  bool is_open() const noexcept;
  asio::any_io_executor get_executor() const noexcept;
  const std::string& run_id() const noexcept;
  const std::string& resumption_token() const noexcept;
  const std::string& position() const noexcept;
  std::size_t reconnections() const noexcept;

 private:
  std::unique_ptr<impl> impl_;
};

/// Sends `DELETE ?resumeKey=token`.
asio::awaitable<result<void>> send_cancel(std::shared_ptr<const client_config> cfg, std::string token);

}  // namespace river::http::detail
