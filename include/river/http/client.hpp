#pragma once

#include <river/detail/spawn.hpp>
#include <river/http/client_error.hpp>
#include <river/http/client_options.hpp>
#include <river/http/detail/event_source.hpp>
#include <river/http/event_stream.hpp>
#include <river/http/stream_callbacks.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace river::http {

/// Calls a River server over HTTP (PROTOCOL.md): starts runs of its streams, resumes and cancels
/// them, and reads their events as they arrive. Works against C++ and TypeScript River servers,
/// over `http://` and `https://` (TLS with the server's certificate verified, see
/// `client_options::tls_context`).
///
/// ```
/// river::http::client c(io.get_executor(), "https://example.com/api/river");
/// nlohmann::json input = {{"message", "hi"}};  // (GCC 12: no braced lists inside co_await)
/// auto stream = (co_await c.start<chat_chunk>("chat", input)).value();
/// while (auto ev = co_await stream.next())
///   if (auto chunk = ev->chunk()) std::cout << chunk->text;
/// ```
///
/// Three styles, one behaviour: coroutines returning `river::result` (`start`, `resume`,
/// `cancel`), `async_*` for any completion token, and callbacks (`start` and `resume` with
/// `stream_callbacks`, returning a `run_handle`). Each stream uses its own connection and
/// resumes by itself after losing it (`basic_event_stream`).
///
/// Errors: a server's error status becomes a `river::error` with the server's message, type and
/// context (plus `"httpStatus"` in the context) and a code of `status_category()`; transport
/// failures keep their Asio, Beast or OpenSSL code, with a message saying what failed.
///
/// The client starts no thread; its operations run on the executor given, or on the awaiting
/// coroutine's. Thread safety: a client may be used from any thread at once; it may be destroyed
/// while its streams and callback runs go on (they share its configuration).
class client {
 public:
  using executor_type = asio::any_io_executor;

  /// A client of the River endpoint at `url` (for example `http://127.0.0.1:8080/api/river`).
  /// \throws std::invalid_argument when `url` is not an absolute `http://` or `https://` URL.
  client(executor_type ex, std::string_view url, client_options options = {})
      : ex_(std::move(ex)), cfg_(detail::make_client_config(url, std::move(options))) {}

  executor_type get_executor() const noexcept { return ex_; }
  /// The endpoint's URL.
  const std::string& url() const noexcept { return detail::config_url(*cfg_); }

  /// Starts a run of the stream `stream_name` with `input`, and returns its events from the
  /// start once the server has answered. Errors: the server's (unknown stream, invalid input:
  /// type "validation" with the offending field in its context), and the transport's. The
  /// request is never repeated: only a run that started is resumed.
  template <class Chunk = nlohmann::json>
  asio::awaitable<result<basic_event_stream<Chunk>>> start(std::string stream_name, nlohmann::json input) const {
    auto source = co_await detail::event_source::start(cfg_, std::move(stream_name), std::move(input));
    if (!source) co_return std::move(source).error();
    co_return basic_event_stream<Chunk>(std::move(*source));
  }

  /// Resumes the run that `token` names: its events after `position` (from the start without
  /// it), then live ones until its end. Errors: the server's (malformed token, unknown or expired
  /// run, a provider that cannot resume), and the transport's. A TypeScript River server ignores
  /// `position` and replays from the start.
  template <class Chunk = nlohmann::json>
  asio::awaitable<result<basic_event_stream<Chunk>>> resume(std::string token,
                                                            std::optional<std::string> position = std::nullopt) const {
    auto source = co_await detail::event_source::resume(cfg_, std::move(token), std::move(position));
    if (!source) co_return std::move(source).error();
    co_return basic_event_stream<Chunk>(std::move(*source));
  }

  /// Asks the server to cancel the run that `token` names (`DELETE`, a protocol extension that
  /// TypeScript River servers do not offer); the run ends with `aborted`. Errors: the server's
  /// (unknown run, run already finished), and the transport's.
  asio::awaitable<result<void>> cancel(std::string token) const { return detail::send_cancel(cfg_, std::move(token)); }

  /// `start` for any completion token. Signature: `void(error_code, basic_event_stream<Chunk>)`.
  /// Cancellation: terminal; the request is abandoned (the run may have started at the server).
  template <class Chunk = nlohmann::json, class Token = asio::default_completion_token_t<executor_type>>
  auto async_start(std::string stream_name, nlohmann::json input, Token&& token = {}) const {
    return river::detail::spawn_result<basic_event_stream<Chunk>>(
        ex_, start<Chunk>(std::move(stream_name), std::move(input)), std::forward<Token>(token));
  }

  /// `resume` for any completion token. Signature: `void(error_code, basic_event_stream<Chunk>)`.
  /// Cancellation: terminal.
  template <class Chunk = nlohmann::json, class Token = asio::default_completion_token_t<executor_type>>
  auto async_resume(std::string resume_token, std::optional<std::string> position, Token&& token = {}) const {
    return river::detail::spawn_result<basic_event_stream<Chunk>>(
        ex_, resume<Chunk>(std::move(resume_token), std::move(position)), std::forward<Token>(token));
  }

  /// `cancel` for any completion token. Signature: `void(error_code)`. Cancellation: terminal;
  /// the request may still reach the server.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_cancel(std::string resume_token, Token&& token = {}) const {
    return river::detail::spawn_result<void>(ex_, cancel(std::move(resume_token)), std::forward<Token>(token));
  }

  /// Starts a run and reports it to `callbacks` (see `stream_callbacks` for their order), on a
  /// strand of the client's executor. Returns at once.
  template <class Chunk>
  run_handle start(std::string stream_name, nlohmann::json input, stream_callbacks<Chunk> callbacks) const {
    return detail::launch_callbacks<Chunk>(ex_, cfg_, std::move(stream_name), std::move(input),
                                           std::optional<std::optional<std::string>>(), std::move(callbacks));
  }

  /// Resumes a run after `position` (from its start without it) and reports it to `callbacks`.
  template <class Chunk>
  run_handle resume(std::string token, std::optional<std::string> position, stream_callbacks<Chunk> callbacks) const {
    return detail::launch_callbacks<Chunk>(ex_, cfg_, std::move(token), nlohmann::json(),
                                           std::optional<std::optional<std::string>>(std::move(position)),
                                           std::move(callbacks));
  }

  /// Resumes a run from its start and reports it to `callbacks`.
  template <class Chunk>
  run_handle resume(std::string token, stream_callbacks<Chunk> callbacks) const {
    return resume(std::move(token), std::nullopt, std::move(callbacks));
  }

 private:
  executor_type ex_;
  std::shared_ptr<const detail::client_config> cfg_;
};

}  // namespace river::http
