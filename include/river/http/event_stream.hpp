#pragma once

#include <river/detail/spawn.hpp>
#include <river/event.hpp>
#include <river/http/detail/event_source.hpp>

#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <string>

namespace river::http {

/// The events of one run, read from a River server over HTTP, as an asynchronous generator:
/// what `client::start` and `client::resume` return.
///
/// ```
/// while (auto ev = co_await stream.next()) { ... }
/// ```
///
/// Semantics are those of `river::basic_event_reader`: one consumer, empty (`std::nullopt`)
/// after the terminal event, one pending `next` at a time (a second one fails with
/// `errc::operation_in_progress`). Resuming from the position of the terminal event gives a
/// stream that is empty at once (the server answers `204`). A chunk that does not convert to
/// `Chunk` arrives as an `events::error` at its position, so nothing is skipped silently.
///
/// **Lost connections.** When the connection ends before the terminal event (an error, the
/// server closing it, or `client_options::idle_timeout` of silence), the stream resumes the run
/// by itself with its resumption token, from the last position the server sent, with bounded
/// attempts and backoff (`client_options`). No event is delivered twice: against a server that
/// sends no positions (the TypeScript River servers) it resumes from the start of the run and
/// drops the events it delivered before. When resuming fails, `next` fails with
/// `client_errc::retries_exhausted`, `client_errc::connection_lost` (no token), or the error
/// status the server answered (`status_category`).
///
/// **Positions.** An event's `position` is the one the server sent for it (River servers send one
/// right after each event; the stream waits for it before returning the event). It is empty when
/// the server sends none, and for a first event whose position had not arrived yet.
///
/// Thread safety: distinct objects are independent; one object is not thread-safe.
template <class Chunk = nlohmann::json>
class basic_event_stream {
 public:
  using executor_type = asio::any_io_executor;
  using event_type = basic_event<Chunk>;

  /// A closed stream.
  basic_event_stream() = default;
  explicit basic_event_stream(std::unique_ptr<detail::event_source> source) noexcept : src_(std::move(source)) {}

  /// Takes over another stream, converting chunks to `Chunk` from now on.
  template <class Other>
  requires(!std::is_same_v<Other, Chunk>) explicit basic_event_stream(basic_event_stream<Other>&& other) noexcept
      : src_(std::move(other.src_)) {}

  basic_event_stream(basic_event_stream&&) noexcept = default;
  basic_event_stream& operator=(basic_event_stream&&) noexcept = default;

  /// Whether the stream can still be read (not closed, not failed).
  bool is_open() const noexcept { return src_ && src_->is_open(); }
  /// The executor the stream's I/O runs on. Precondition: the stream was opened.
  executor_type get_executor() const noexcept { return src_->get_executor(); }
  /// The run being read; empty until its start event when resuming with a token River cannot decode.
  const std::string& run_id() const noexcept { return src_ ? src_->run_id() : empty(); }
  /// The token that resumes the run (from its start event, or the one resumed with); empty when
  /// the server's provider cannot resume.
  const std::string& resumption_token() const noexcept { return src_ ? src_->resumption_token() : empty(); }
  /// The position of the last event returned, when the server sent it; empty otherwise.
  /// `client::resume(resumption_token(), position())` continues right after that event.
  const std::string& position() const noexcept { return src_ ? src_->position() : empty(); }
  /// How many times the stream reconnected after a lost connection.
  std::size_t reconnections() const noexcept { return src_ ? src_->reconnections() : 0; }

  /// The next event, or `std::nullopt` after the terminal event.
  /// \throws boost::system::system_error when the stream fails (see the class comment), and
  /// `operation_aborted` when it is closed or the awaiting coroutine is cancelled.
  asio::awaitable<std::optional<event_type>> next() {
    auto r = co_await try_next();
    co_return std::move(r).value();
  }

  /// Like `next`, with failures returned as a `river::error` (message, type, context, and the
  /// error code in `code`) rather than thrown.
  asio::awaitable<result<std::optional<event_type>>> try_next() {
    if (!src_) co_return error::from_code(errc::not_open, "The event stream is not open");
    auto r = co_await src_->next();
    if (!r) co_return std::move(r).error();
    if (!*r) co_return std::optional<event_type>();
    auto position = (**r).position;
    auto typed = convert_event<Chunk>(std::move(**r));
    if (!typed) {
      event_type as_error;
      as_error.payload = events::error{std::move(typed.error())};
      as_error.position = std::move(position);
      co_return std::optional<event_type>(std::move(as_error));
    }
    co_return std::optional<event_type>(std::move(*typed));
  }

  /// `next` for any completion token. Signature: `void(error_code, std::optional<event_type>)`.
  ///
  /// Cancellation: terminal. A cancelled read closes the stream (the connection may be
  /// mid-message); the run goes on at the server and can be resumed with the token.
  /// The stream must outlive the operation.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_next(Token&& token = {}) {
    return river::detail::spawn_result<std::optional<event_type>>(get_executor(), try_next(),
                                                                  std::forward<Token>(token));
  }

  /// Closes the connection; a pending `next` completes with `operation_aborted`. The run goes on
  /// at the server. Call it on the executor that runs the stream's operations.
  void close() noexcept {
    if (src_) src_->close();
  }

 private:
  template <class>
  friend class basic_event_stream;

  static const std::string& empty() noexcept {
    static const std::string s;
    return s;
  }

  std::unique_ptr<detail::event_source> src_;
};

/// A stream of untyped events (chunks as JSON values).
using event_stream = basic_event_stream<nlohmann::json>;

}  // namespace river::http
