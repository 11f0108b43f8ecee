#pragma once

#include <river/config.hpp>
#include <river/redis/config.hpp>
#include <river/redis/detail/reply_handler.hpp>
#include <river/redis/error.hpp>
#include <river/redis/request.hpp>
#include <river/redis/value.hpp>

#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace river::redis {

/// One pipelined connection to Redis, over TCP or a unix socket, that reconnects by itself.
///
/// Any number of callers share it: each `async_exec` copies its request's bytes into the queue
/// at once (so one request object can be reused for every call); queued requests are coalesced
/// into one write while earlier ones are still on the wire, and replies are matched to requests
/// in order (`detail::multiplexer`). hiredis parses the replies; Asio owns the socket.
///
/// Connecting sends `AUTH` and `SELECT` from the URL, `CLIENT SETNAME`, then `PING`: a server
/// that refuses any of them (a wrong or missing password, a restarted Redis still loading its
/// data, which answers `-LOADING`) is not connected, and the attempt is made again after the
/// backoff; `last_error` says why.
///
/// Pub/sub: a connection with a push handler (`set_push_handler`) tells messages the server
/// pushes (`smessage`, `message`) from replies and hands them to the handler.
///
/// After a failure (the server went away, a protocol error, a reply past
/// `connection_config::max_read_buffer`) every request written fails (`error::connection_lost`:
/// it may have run), the socket is closed and the connection tries again after a backoff
/// (`reconnect_min` doubling up to `reconnect_max`). Requests waiting to be written, and new ones,
/// wait for the next connection for up to `connection_config::wait_for_connection`, then fail
/// with `error::not_connected` (at once, by default).
///
/// Thread safety: all members may be called from any thread. The connection's own work runs on
/// a strand of the executor it was given.
///
/// Lifetime: destroying the connection closes it: pending requests complete with
/// `error::closed`.
class connection {
 public:
  using executor_type = executor;

  /// What the connection has done so far.
  struct stats {
    std::uint64_t requests = 0;    ///< requests completed with replies
    std::uint64_t commands = 0;    ///< commands of those requests
    std::uint64_t writes = 0;      ///< socket writes (each carries one or more requests)
    std::uint64_t connects = 0;    ///< successful connects, the first included
    std::uint64_t failures = 0;    ///< failed connects and broken connections
  };

  /// A connection to the server at `url` (`redis://...` or `unix:///...`, see `parse_url`).
  /// Throws `std::invalid_argument` for a URL that `parse_url` refuses.
  /// (Two constructors rather than a defaulted argument: GCC 12 copies a defaulted argument
  /// bitwise when the call's expression also has a `co_await`, leaving its strings pointing
  /// into the coroutine's frame.)
  connection(executor_type ex, std::string_view url, const connection_config& cfg);
  connection(executor_type ex, std::string_view url);
  /// A connection to the server at `where` (as `parse_url` gives it).
  connection(executor_type ex, address where, const connection_config& cfg);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  executor_type get_executor() const noexcept;

  /// Messages the server pushes to a connection that subscribed to channels, on the connection's
  /// strand. Set before `start`.
  void set_push_handler(std::function<void(value)> handler);

  /// Called on the connection's strand each time it is established (the first time included),
  /// before queued requests are written: a subscriber subscribes again there. Set before `start`.
  void set_connect_handler(std::function<void()> handler);

  /// Starts connecting (and reconnecting after failures) until `close`.
  void start();

  /// Closes the socket, fails every pending request with `error::closed` and stops reconnecting.
  void close();

  /// Whether the connection is established now.
  bool connected() const noexcept;

  /// How many times the connection was established: a request's replies came over the
  /// connection of the generation it observed, when that stayed the same meanwhile.
  std::uint64_t generation() const noexcept;

  /// Counters since construction.
  stats get_stats() const;

  /// The text of the last connection failure ("Connection refused", a handshake error reply).
  std::string last_error() const;

  /// Sends the commands of `req` and completes with their replies (`request::expected_replies`).
  /// The request's bytes are copied when the operation starts (at once for callbacks; when
  /// awaited for `use_awaitable` and `deferred`): `req` must stay valid until then, as a buffer
  /// must for Asio's writes.
  ///
  /// Completion signature: `void(error_code, response)`. Error replies of single
  /// commands are `value::kind::error` elements, not an `error_code`: the error code reports a
  /// failed connection (`error::not_connected`, `error::connection_lost`, `error::closed`,
  /// `error::queue_full`, `error::protocol_error`, `error::read_buffer_exceeded`), and the
  /// replies are then empty. A request failing with `connection_lost` may have run.
  ///
  /// Cancellation: not supported; a request that was written cannot be taken back. Close the
  /// connection to end everything.
  ///
  /// The handler runs on its associated executor, by default the connection's executor.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, CompletionToken&& token = CompletionToken()) {
    return asio::async_initiate<CompletionToken, void(error_code, response)>(
        [this](auto handler, const request* r) {
          detail::reply_handler_source_of<decltype(handler)> source(std::move(handler));
          exec_impl(*r, source, false);
        },
        token, &req);
  }

  /// `async_exec` without the copy: the request's bytes are written from `req` itself, which
  /// must stay alive and unchanged until the handler is called (as Boost.Redis asks of every
  /// request). For a caller with one request in flight that it keeps, such as a writer that
  /// sends a batch and awaits its replies before the next: every byte is then copied once less.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_exec_in_place(const request& req, CompletionToken&& token = CompletionToken()) {
    return asio::async_initiate<CompletionToken, void(error_code, response)>(
        [this](auto handler, const request* r) {
          detail::reply_handler_source_of<decltype(handler)> source(std::move(handler));
          exec_impl(*r, source, true);
        },
        token, &req);
  }

 private:
  friend class cluster;
  void exec_impl(const request& req, detail::reply_handler_source& handler, bool in_place);
  // `close` for a cluster's node that left the layout (it failed over): requests under way fail
  // with `error::connection_lost` (they may have run), waiting ones with `error::not_connected`
  // (never written: the cluster sends them to the node that took over).
  void retire();

  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace river::redis
