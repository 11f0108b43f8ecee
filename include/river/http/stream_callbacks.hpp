#pragma once

#include <river/event.hpp>
#include <river/http/event_stream.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <river/detail/strand.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace river::http {

/// What a run read with the callback API (`client::start(name, input, callbacks)`) reports, as
/// the TypeScript River clients do. Every callback is optional.
///
/// Order: `on_start`, then `on_info` once the run's start event arrives, then `on_chunk` and
/// `on_error` in the order of the run's log, then exactly one of `on_success`,
/// `on_fatal_error` and `on_abort`, after which nothing more is called. Callbacks run one at a
/// time on a strand of the client's executor. A callback that throws ends the reading, and the
/// exception propagates out of the executor's `run()`.
template <class Chunk>
struct stream_callbacks {
  /// Called first, before the request is sent.
  std::function<void()> on_start;
  /// The run's id and resumption token (empty when the server cannot resume), from its start
  /// event. Not called when resuming from a position: the start event lies before it.
  std::function<void(const events::start&)> on_info;
  /// A chunk, with its index among the chunks this call delivered (0, 1, ...).
  std::function<void(const Chunk&, std::size_t)> on_chunk;
  /// A failure the run survived, or a chunk that does not convert to `Chunk`.
  std::function<void(const river::error&)> on_error;
  /// The run failed (its `stream_fatal_error` event), or reading it failed: an error status,
  /// an unreachable server, a lost connection that could not be resumed.
  std::function<void(const river::error&)> on_fatal_error;
  /// The run ended: its chunk count and duration.
  std::function<void(const events::end&)> on_success;
  /// `run_handle::abort` was called, or the run was cancelled at the server (`aborted`).
  std::function<void()> on_abort;
};

namespace detail {

// The state a callback run shares with its handle. The cancellation signal must outlive the
// spawned coroutine's frame, so the state is released only after that frame is gone.
struct callback_run {
  explicit callback_run(executor s) : strand(std::move(s)) {}
  executor strand;  // a strand (river/detail/strand.hpp)
  asio::cancellation_signal signal;
  std::atomic<bool> finished{false};
  bool abort_requested = false;  // on the strand
};

}  // namespace detail

/// A run being read with callbacks: lets the application stop reading it.
///
/// Thread safety: `abort` and `finished` may be called from any thread. Copies refer to the same
/// run. A handle may be dropped at any time: the run is read on regardless.
class run_handle {
 public:
  /// A handle that refers to no run.
  run_handle() = default;
  explicit run_handle(std::shared_ptr<detail::callback_run> run) noexcept : run_(std::move(run)) {}

  /// Stops reading: the connection is closed and `on_abort` is called, unless the run's last
  /// callback came first (then nothing happens). The run itself goes on at the server; cancel it
  /// with `client::cancel`.
  void abort() const {
    if (!run_) return;
    asio::post(run_->strand, [run = run_] {
      if (run->finished.load()) return;
      run->abort_requested = true;
      run->signal.emit(asio::cancellation_type::terminal);
    });
  }

  /// Whether the run's last callback has returned.
  bool finished() const noexcept { return !run_ || run_->finished.load(); }

 private:
  std::shared_ptr<detail::callback_run> run_;
};

namespace detail {

inline bool is_abort(const callback_run& run, const river::error& e) {
  return run.abort_requested || e.code == asio::error::operation_aborted;
}

// Reads a run and reports it to the callbacks. `position` set means resume.
template <class Chunk>
asio::awaitable<void> drive_callbacks(std::shared_ptr<callback_run> run, std::shared_ptr<const client_config> cfg,
                                      std::string name_or_token, nlohmann::json input,
                                      std::optional<std::optional<std::string>> resume_from,
                                      stream_callbacks<Chunk> cb) {
  // This coroutine owns its thread of execution: cancellation is read from results, not thrown.
  co_await asio::this_coro::throw_if_cancelled(false);
  auto fail = [&](const river::error& e) {
    if (is_abort(*run, e)) {
      if (cb.on_abort) cb.on_abort();
    } else if (cb.on_fatal_error) {
      cb.on_fatal_error(e);
    }
  };
  if (cb.on_start) cb.on_start();
  result<std::unique_ptr<event_source>> opened = error();
  if (resume_from) {
    auto r = co_await event_source::resume(std::move(cfg), std::move(name_or_token), std::move(*resume_from));
    opened = std::move(r);
  } else {
    auto r = co_await event_source::start(std::move(cfg), std::move(name_or_token), std::move(input));
    opened = std::move(r);
  }
  if (!opened) {
    fail(opened.error());
    co_return;
  }
  basic_event_stream<Chunk> stream(std::move(*opened));
  std::size_t index = 0;
  for (;;) {
    auto r = co_await stream.try_next();
    if (!r) {
      fail(r.error());
      co_return;
    }
    if (!*r) co_return;
    auto& ev = **r;
    if (auto* s = ev.template get_if<events::start>()) {
      if (cb.on_info) cb.on_info(*s);
    } else if (auto* c = ev.template get_if<events::chunk<Chunk>>()) {
      if (cb.on_chunk) cb.on_chunk(c->value, index);
      ++index;
    } else if (auto* e = ev.template get_if<events::error>()) {
      if (cb.on_error) cb.on_error(e->value);
    } else if (auto* f = ev.template get_if<events::fatal_error>()) {
      if (cb.on_fatal_error) cb.on_fatal_error(f->value);
      co_return;
    } else if (auto* end = ev.template get_if<events::end>()) {
      if (cb.on_success) cb.on_success(*end);
      co_return;
    } else {
      if (cb.on_abort) cb.on_abort();
      co_return;
    }
  }
}

template <class Chunk>
run_handle launch_callbacks(const asio::any_io_executor& ex, std::shared_ptr<const client_config> cfg,
                            std::string name_or_token, nlohmann::json input,
                            std::optional<std::optional<std::string>> resume_from, stream_callbacks<Chunk> cb) {
  auto run = std::make_shared<callback_run>(river::detail::make_strand(ex));
  auto& slot_owner = run->signal;
  asio::co_spawn(run->strand,
                 drive_callbacks<Chunk>(run, std::move(cfg), std::move(name_or_token), std::move(input),
                                        std::move(resume_from), std::move(cb)),
                 asio::bind_cancellation_slot(slot_owner.slot(), [run](std::exception_ptr e) mutable {
                   run->finished.store(true);
                   // The coroutine's frame still refers to the signal here: release it later.
                   auto strand = run->strand;
                   asio::post(strand, [keep = std::move(run)] {});
                   // A callback threw: let it propagate out of the executor's run(), as a
                   // detached coroutine's exception would not.
                   if (e) std::rethrow_exception(e);
                 }));
  return run_handle(std::move(run));
}

}  // namespace detail

}  // namespace river::http
