#pragma once

#include <river/caller.hpp>
#include <river/http/metrics.hpp>
#include <river/http/options.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace river::http {

/// What a served request left its connection fit for.
enum class connection_action {
  keep_alive,  ///< the response is complete; the connection may carry the next request
  close,       ///< close the connection (the client asked for it, or it failed)
};

namespace detail {

/// Where a response goes: a connection's write side. One write at a time.
class response_writer {
 public:
  virtual ~response_writer() = default;
  /// Writes every buffer, in order. An error means the connection is unusable.
  virtual asio::awaitable<error_code> write(std::span<const asio::const_buffer> buffers) = 0;

  /// Writes what the connection takes now, without waiting, and returns the bytes written; an
  /// error in `ec` means the connection is unusable. The default takes nothing, so callers `write`.
  virtual std::size_t try_write(std::span<const asio::const_buffer> buffers, error_code& ec) {
    (void)buffers;
    ec = {};
    return 0;
  }
};

/// A `response_writer` over any Beast or Asio stream. A Beast `basic_stream` underneath gets the
/// handler's write timeout before each write.
template <class AsyncWriteStream>
class stream_writer final : public response_writer {
 public:
  stream_writer(AsyncWriteStream& stream, std::chrono::milliseconds timeout) : stream_(stream), timeout_(timeout) {}

  asio::awaitable<error_code> write(std::span<const asio::const_buffer> buffers) override {
    if constexpr (requires { boost::beast::get_lowest_layer(stream_).expires_after(timeout_); })
      boost::beast::get_lowest_layer(stream_).expires_after(timeout_);
    auto [ec, n] = co_await asio::async_write(stream_, buffers, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }

 private:
  AsyncWriteStream& stream_;
  std::chrono::milliseconds timeout_;
};

}  // namespace detail

/// Serves River's wire protocol (docs/protocol.md) at one path, one request at a time, on
/// connections that someone else reads: `server` uses it, and so can an existing Beast
/// application that reads a request and hands it over.
///
/// - `POST path`: starts a run and streams its events (`text/event-stream`).
/// - `GET path?resumeKey=TOKEN`: resumes a run after `Last-Event-ID` (header) or `lastEventId`
///   (query), the header winning when both are present.
/// - `DELETE path?resumeKey=TOKEN`: cancels a run: `202` with `{"streamRunId":…,"cancelRequested":true}`.
/// - `OPTIONS path`: CORS preflight.
///
/// Failures are answered with the status of `status_of` and a RiverError body. An event stream
/// sends each event as a `data:` message followed by an id-only message with its position, sends
/// `: keep-alive` comments while idle, and ends after the terminal event. A client that goes away
/// does not stop the run.
///
/// Thread safety: `serve` may be called concurrently for different connections; each call must
/// run on a strand or a single-threaded context (as a Beast session does). `close_streams` and
/// the accessors may be called from any thread.
///
/// Lifetimes: the caller must outlive the handler, and the handler every `serve` in progress.
class handler {
 public:
  handler(caller& c, handler_options options = {});
  ~handler();
  handler(const handler&) = delete;
  handler& operator=(const handler&) = delete;

  const handler_options& options() const noexcept;
  caller& get_caller() const noexcept;
  /// Counters for `/metrics`, shared with a server that uses this handler.
  metrics& get_metrics() const noexcept;

  /// True when `target` (path and query) names this handler's path.
  bool matches(std::string_view target) const noexcept;

  /// Serves one request read from a connection and writes the whole response to `stream`
  /// (an event stream is written until its run's terminal event). Completes with what the
  /// connection is fit for afterwards; an error writing the response is `close`.
  ///
  /// A Beast `basic_stream` (or a stream layered on one) gets `write_timeout` before each write;
  /// for other streams bound writes yourself. Cancelling the awaiting coroutine does not end an
  /// event stream in progress: use `close_streams`.
  template <class AsyncWriteStream>
    requires(!std::is_base_of_v<detail::response_writer, AsyncWriteStream>)
  asio::awaitable<connection_action> serve(AsyncWriteStream& stream, request req, std::string remote_address = {}) {
    detail::stream_writer<AsyncWriteStream> out(stream, options().write_timeout);
    detail::response_writer& writer = out;
    auto action = co_await serve(writer, std::move(req), std::move(remote_address));
    co_return action;
  }

  /// `serve` onto a type-erased writer: what the template above and `server` call.
  asio::awaitable<connection_action> serve(detail::response_writer& out, request req, std::string remote_address);

  /// Ends every open event stream cleanly (the HTTP response is completed, the runs go on), for
  /// shutdown. Streams opened afterwards are ended at once.
  void close_streams();

  /// Event streams open now.
  std::size_t open_streams() const;

  /// The Prometheus text of this handler's metrics and its caller's runs.
  std::string metrics_text() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace river::http
