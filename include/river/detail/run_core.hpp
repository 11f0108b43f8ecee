#pragma once

// The non-template state of one run: its log writer, its strand, the terminal flag that refuses
// appends after the last event, and cancellation. Typed run contexts are thin views of it.

#include <river/detail/event_writer.hpp>
#include <river/detail/run_registry.hpp>
#include <river/detail/strand.hpp>
#include <river/event.hpp>
#include <river/provider.hpp>
#include <river/request_metadata.hpp>
#include <river/runner_budget.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <unordered_map>

namespace river::detail {

class run_core : public std::enable_shared_from_this<run_core> {
 public:
  using strand_type = executor;  // a strand (detail/strand.hpp)
  using clock = std::chrono::steady_clock;

  run_core(strand_type strand, std::string run_id, std::string storage_id, std::string stream_name,
           request_metadata metadata, std::shared_ptr<run_registry> registry, runner_budget budget = {})
      : strand_(std::move(strand)),
        run_id_(std::move(run_id)),
        storage_id_(std::move(storage_id)),
        stream_name_(std::move(stream_name)),
        metadata_(std::move(metadata)),
        registry_(std::move(registry)),
        budget_(budget),
        started_at_(clock::now()),
        streak_started_(started_at_) {}

  const strand_type& strand() const noexcept { return strand_; }
  const std::string& run_id() const noexcept { return run_id_; }
  const std::string& storage_id() const noexcept { return storage_id_; }
  const std::string& stream_name() const noexcept { return stream_name_; }
  const request_metadata& metadata() const noexcept { return metadata_; }
  bool cancel_requested() const noexcept { return cancel_requested_.load(std::memory_order_relaxed); }
  /// True once the terminal event is appended or on its way (strand only).
  bool closed() const noexcept { return terminal_; }

  void attach(std::shared_ptr<log_writer> writer) { writer_ = std::move(writer); }

  /// Appends one event's JSON and returns the provider's refusal, or `errc::run_closed` after
  /// the terminal event (nothing is stored then). Call on the strand.
  asio::awaitable<result<void>> try_append(std::string json, event_kind kind) {
    if (terminal_) co_return closed_error();
    if (is_terminal(kind)) terminal_ = true;
    auto stored = co_await writer_->append(json, is_terminal(kind));
    if (auto e = settle(stored, kind)) co_return std::move(*e);
    co_return result<void>{};
  }

  /// The runner's append: `write(std::string&)` appends the event's JSON to the run's own buffer
  /// (reused, so an event costs no allocation), which goes to the provider. Failures are thrown
  /// as `boost::system::system_error`. A runner whose appends do not suspend is suspended once
  /// its `runner_budget` is spent, so that the readers and runs sharing its thread are served.
  ///
  /// After the terminal event it throws `errc::run_closed` at once, when called (not when
  /// awaited): after a cancel the runner's coroutine is cancelled too, and Asio would throw
  /// `operation_aborted` at the `co_await` instead of telling the runner why.
  template <class Write>
  asio::awaitable<void> append(event_kind kind, Write write) {
    if (terminal_) throw boost::system::system_error(closed_error().code, closed_error().message);
    return store_buffered(kind, std::move(write));
  }

 private:
  template <class Write>
  asio::awaitable<void> store_buffered(event_kind kind, Write write) {
    if (terminal_) throw boost::system::system_error(closed_error().code, closed_error().message);
    buffer_.clear();
    write(buffer_);
    if (is_terminal(kind)) terminal_ = true;
    auto stored = co_await writer_->append(buffer_, is_terminal(kind));
    if (auto e = settle(stored, kind)) throw boost::system::system_error(e->code, e->message);
    // Fair runners. Asio marks the coroutine's thread of execution each time it suspends; a
    // runner that has not suspended for `budget_.appends` appends, `budget_.bytes` of them or
    // `budget_.time` yields to the strand's queue once, behind whatever became ready meanwhile
    // (its readers among them).
    bool& suspended = co_await asio::detail::awaitable_thread_has_context_switched{};
    if (suspended) {
      suspended = false;
      start_streak();
    }
    ++streak_appends_;
    streak_bytes_ += buffer_.size();
    bool spent = streak_appends_ >= budget_.appends || streak_bytes_ >= budget_.bytes;
    // The clock is read at a streak's first append and then at every eighth, not at each.
    if (!spent && streak_appends_ % 8 == 1) {
      const auto now = clock::now();
      if (streak_appends_ == 1)
        streak_started_ = now;
      else
        spent = now - streak_started_ >= budget_.time;
    }
    if (spent) {
      co_await asio::post(strand_, asio::use_awaitable);
      // A new streak, but the same burst: the provider sees no wait before the next append
      // (the in-memory one resumes readers at once after a wait; a burst's they take in one piece).
      bool& yielded = co_await asio::detail::awaitable_thread_has_context_switched{};
      yielded = false;
      start_streak();
    }
  }

  void start_streak() noexcept {
    streak_appends_ = 0;
    streak_bytes_ = 0;
  }

 public:
  /// The `stream_end` event for this run as it is now.
  void write_end(std::string& out) const {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started_at_).count();
    append_end_event(out, chunks_, static_cast<std::uint64_t>(ms));
  }

  /// Logs the run's failure (once per run; a failure noticed after the end is not one).
  void report_failure(const std::string& cause) {
    if (terminal_ || failure_reported_) return;
    failure_reported_ = true;
    report("run_failed", "fatal_error", cause);
  }

  /// Called on the strand when the runner's coroutine is over, with what escaped it.
  asio::awaitable<void> runner_done(std::exception_ptr escaped) {
    if (!terminal_) {
      std::string json;
      if (escaped) {
        const auto failure = runner_failure(escaped);
        append_error_event(json, true, failure);
        report_failure("the runner threw: " + failure.cause.get<std::string>());
      } else {
        write_end(json);
      }
      const auto kind = escaped ? event_kind::fatal_error : event_kind::end;
      // A refusal leaves the log open; the provider closes it when the writer goes away.
      (void)co_await try_append(std::move(json), kind);
    }
    registry_->remove(this, metadata_.remote_address);
  }

  /// The slot the runner's coroutine is bound to: `request_cancel` emits on it.
  asio::cancellation_slot runner_slot() noexcept { return runner_signal_.slot(); }

  /// Cancels the run from any thread: appends `aborted` (unless the run already ended), refuses
  /// later appends, and cancels what the runner is waiting for.
  void request_cancel() {
    asio::post(strand_, [self = shared_from_this()] { self->abort_on_strand(); });
  }

 private:
  static error runner_failure(std::exception_ptr escaped) {
    error e("Failed to run runner function", error_type::stream);
    try {
      std::rethrow_exception(escaped);
    } catch (const std::exception& ex) {
      e.cause = ex.what();
    } catch (...) {
      e.cause = "unknown exception";
    }
    return e;
  }

  void count_outcome(event_kind kind) {
    auto& counter = kind == event_kind::end ? registry_->ended
                    : kind == event_kind::fatal_error ? registry_->failed
                                                      : registry_->aborted;
    counter.fetch_add(1, std::memory_order_relaxed);
  }

  // One log record about this run.
  void report(std::string_view what, std::string_view outcome, const std::string& cause) const {
    if (!registry_->log) return;
    log_record r;
    r.event = what;
    r.stream = stream_name_;
    r.run_id = run_id_;
    r.storage_id = storage_id_;
    r.outcome = outcome;
    r.cause = cause;
    registry_->log(r);
  }

  static bool is_terminal(event_kind kind) noexcept {
    return kind == event_kind::fatal_error || kind == event_kind::end || kind == event_kind::aborted;
  }

  static error closed_error() {
    return error::from_code(errc::run_closed, "The run has already ended; nothing was stored");
  }

  // Counts what the provider stored, or says why it did not.
  std::optional<error> settle(const result<std::string>& stored, event_kind kind) {
    if (!stored) {
      auto e = stored.error();
      if (!e.code) e.code = make_error_code(errc::storage_failure);
      // A refused terminal event: the provider closes the log with a fatal error instead.
      if (is_terminal(kind)) {
        count_outcome(event_kind::fatal_error);
        if (!failure_reported_)
          report("run_failed", "fatal_error", "the provider refused the run's terminal event: " + e.message);
        failure_reported_ = true;
      }
      return e;
    }
    // Only what was stored counts towards stream_end's totalChunks.
    if (kind == event_kind::chunk) ++chunks_;
    registry_->events.fetch_add(1, std::memory_order_relaxed);
    if (is_terminal(kind)) count_outcome(kind);
    return std::nullopt;
  }

  void abort_on_strand() {
    cancel_requested_.store(true, std::memory_order_relaxed);
    if (terminal_) return;
    // From here the runner's appends are refused. Appends it made before were handed to the
    // provider already, which stores in call order, so `aborted` lands after them.
    terminal_ = true;
    asio::co_spawn(
        strand_,
        [self = shared_from_this()]() -> asio::awaitable<void> {
          // A refusal leaves the log open; the provider closes it when the writer goes away.
          auto stored = co_await self->writer_->append(aborted_json, true);
          (void)self->settle(stored, event_kind::aborted);
        },
        asio::detached);
    runner_signal_.emit(asio::cancellation_type::terminal);
  }

  strand_type strand_;
  std::string run_id_, storage_id_, stream_name_;
  request_metadata metadata_;
  std::shared_ptr<run_registry> registry_;
  std::shared_ptr<log_writer> writer_;
  runner_budget budget_;
  clock::time_point started_at_;
  std::string buffer_;  // the runner's event, reused
  std::uint64_t chunks_ = 0;
  std::size_t streak_appends_ = 0;  // appends since the runner last suspended
  std::size_t streak_bytes_ = 0;    // their bytes
  clock::time_point streak_started_;
  bool terminal_ = false;
  bool failure_reported_ = false;
  std::atomic<bool> cancel_requested_{false};
  asio::cancellation_signal runner_signal_;
};

}  // namespace river::detail
