#pragma once

#include <river/detail/spawn.hpp>
#include <river/event.hpp>
#include <river/provider.hpp>

#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace river {

/// The events of one run, as an asynchronous generator: the events stored after the reader's
/// starting position, then live ones as they are appended, ending after the terminal event.
///
/// ```
/// while (auto ev = co_await reader.next()) { ... }
/// ```
///
/// Semantics are those of an async generator: lazy (nothing is read before the first `next`),
/// one consumer, empty (`std::nullopt`) after the terminal event, one pending `next` at a time
/// (a second one fails with `errc::operation_in_progress`). A reader that lags behind slows
/// nobody: it reads the log at its own pace.
///
/// `Chunk` is the chunk type chunks are decoded into; a chunk that does not decode is delivered
/// as a `stream_error` event at its position, so nothing is skipped silently.
template <class Chunk = nlohmann::json>
class basic_event_reader {
 public:
  using executor_type = executor;
  using event_type = basic_event<Chunk>;

  /// Records fetched from the provider at once.
  static constexpr std::size_t batch_size = 64;

  basic_event_reader() = default;
  basic_event_reader(executor_type ex, std::unique_ptr<log_reader> log, std::string run_id, std::string token)
      : ex_(std::move(ex)), log_(std::move(log)), run_id_(std::move(run_id)), token_(std::move(token)) {}

  /// Takes over another reader, decoding chunks as `Chunk` from now on.
  template <class Other>
    requires(!std::is_same_v<Other, Chunk>)
  explicit basic_event_reader(basic_event_reader<Other>&& other)
      : ex_(std::move(other.ex_)),
        log_(std::move(other.log_)),
        run_id_(std::move(other.run_id_)),
        token_(std::move(other.token_)),
        position_(std::move(other.position_)),
        batch_(std::move(other.batch_)),
        index_(other.index_),
        done_(other.done_) {}

  basic_event_reader(basic_event_reader&&) noexcept = default;
  basic_event_reader& operator=(basic_event_reader&&) noexcept = default;

  bool is_open() const noexcept { return log_ != nullptr; }
  executor_type get_executor() const noexcept { return ex_; }
  /// The run being read.
  const std::string& run_id() const noexcept { return run_id_; }
  /// The token that resumes the run; empty when its provider cannot resume.
  const std::string& resumption_token() const noexcept { return token_; }
  /// The position of the last event returned; empty before the first.
  const std::string& position() const noexcept { return position_; }

  /// The next event, or `std::nullopt` after the terminal event.
  /// \throws boost::system::system_error when the provider fails or a stored event is not
  /// valid (`errc::malformed_event`; reading can go on after it).
  asio::awaitable<std::optional<event_type>> next() {
    auto r = co_await try_next();
    co_return std::move(r).value();
  }

  /// Like `next`, with failures returned rather than thrown.
  asio::awaitable<result<std::optional<event_type>>> try_next() {
    if (!log_) co_return error::from_code(errc::not_open, "The reader is not open");
    if (busy_) co_return error::from_code(errc::operation_in_progress, "A read is already pending");
    busy_ = true;
    struct release {
      bool& flag;
      ~release() { flag = false; }
    } guard{busy_};
    for (;;) {
      if (done_) co_return std::nullopt;
      if (index_ < batch_.size()) co_return decode(batch_[index_++]);
      batch_.clear();
      index_ = 0;
      auto status = co_await log_->read(batch_, batch_size, std::chrono::steady_clock::time_point::max());
      if (!status) co_return status.error();
      if (*status == read_status::end) done_ = true;
    }
  }

  /// `next` for any completion token. Signature: `void(error_code, std::optional<event_type>)`.
  /// Cancellation: terminal; a cancelled read loses no event.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_next(Token&& token = {}) {
    return detail::spawn_result<std::optional<event_type>>(ex_, try_next(), std::forward<Token>(token));
  }

  /// Hands over the underlying log reader (for adapters that forward the stored JSON text
  /// unchanged); the event reader is closed afterwards.
  std::unique_ptr<log_reader> release() noexcept { return std::move(log_); }

 private:
  template <class>
  friend class basic_event_reader;

  result<std::optional<event_type>> decode(const record_view& rec) {
    auto ev = parse_event(rec.data);
    if (!ev) return ev.error();
    ev->position = std::string(rec.position);
    position_ = ev->position;
    if (ev->is_terminal()) done_ = true;
    auto typed = convert_event<Chunk>(std::move(*ev));
    if (!typed) {
      event_type as_error;
      as_error.payload = events::error{std::move(typed.error())};
      as_error.position = position_;
      return as_error;
    }
    return std::move(*typed);
  }

  executor_type ex_;
  std::unique_ptr<log_reader> log_;
  std::string run_id_, token_, position_;
  std::vector<record_view> batch_;
  std::size_t index_ = 0;
  bool done_ = false;
  bool busy_ = false;
};

/// A reader of untyped events (chunks as JSON values).
using event_reader = basic_event_reader<nlohmann::json>;

}  // namespace river
