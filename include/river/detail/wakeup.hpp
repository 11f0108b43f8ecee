#pragma once

// A waiter that other threads can wake: the building block of readers that follow a log.
// A wake-up only means "look again", so wake-ups coalesce and a spurious one costs one look.
//
// A wait is a timer's wait that never expires (Asio keeps such timers out of its timer heap), and
// a wake-up cancels it, from any thread, under the waiter's own mutex. The wait's operation lives
// in memory the waiter keeps, so waiting and waking allocate nothing and post nothing but the
// completion itself. Deadlines have a second timer, re-armed only when the deadline changes (a
// reader's heartbeat moves rarely), whose expiry is a wake-up.

#include <river/config.hpp>
#include <river/detail/handler_memory.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <tuple>

namespace river::detail {

class wakeup {
 public:
  using clock = std::chrono::steady_clock;

  explicit wakeup(const executor& ex) : state_(std::make_shared<state>(ex)) {}
  ~wakeup() {
    state_->deadline.cancel();
    std::lock_guard lk(state_->mutex);
    state_->waiting.cancel();
  }

  wakeup(const wakeup&) = delete;
  wakeup& operator=(const wakeup&) = delete;

  /// Wakes the waiter, or makes the next wait return at once if none is pending. Thread-safe.
  void notify() noexcept { wake(*state_); }

  /// Waits for `notify` or `deadline`, whichever comes first; a stale wake-up may end it at once.
  /// One wait at a time, on the executor the waiter was made with. Completes with an error when
  /// woken (the usual way) or cancelled: tell them apart with `cancelled`.
  asio::awaitable<std::tuple<error_code>> wait(clock::time_point deadline) {
    auto& s = *state_;
    if (deadline != s.armed) {
      s.armed = deadline;
      s.deadline.cancel();
      if (deadline != clock::time_point::max()) {
        s.deadline.expires_at(deadline);
        s.deadline.async_wait([weak = std::weak_ptr<state>(state_)](error_code ec) {
          if (auto st = weak.lock(); st && !ec) wake(*st);
        });
      }
    }
    auto token = asio::bind_allocator(handler_allocator<void>(s.memory), asio::as_tuple(asio::use_awaitable));
    return asio::async_initiate<decltype(token), void(error_code)>(
        [st = &s](auto handler) {
          std::lock_guard lk(st->mutex);
          // A wake-up that came before this wait ends it at once.
          st->waiting.expires_at(std::exchange(st->pending, false) ? clock::time_point::min()
                                                                   : clock::time_point::max());
          st->waiting.async_wait(std::move(handler));
        },
        token);
  }

  /// Whether a wait that completed with `ec` was cancelled by the awaiting coroutine's own
  /// cancellation (`state` is its `this_coro::cancellation_state`), rather than woken.
  static bool cancelled(const error_code& ec, const asio::cancellation_state& state) noexcept {
    return ec && state.cancelled() != asio::cancellation_type::none;
  }

 private:
  struct state {
    explicit state(const executor& ex) : waiting(ex), deadline(ex) {}
    std::mutex mutex;             // guards `waiting` and `pending`
    asio::steady_timer waiting;   // never expires: cancelled to wake the waiter
    bool pending = false;         // a wake-up that no wait took yet
    asio::steady_timer deadline;  // the current deadline's wake-up (waiter's executor only)
    clock::time_point armed = clock::time_point::max();
    handler_memory memory;        // the waiting timer's operation
  };

  static void wake(state& s) noexcept {
    std::lock_guard lk(s.mutex);
    // A wait in progress takes the wake-up; without one it stays for the next wait.
    s.pending = s.waiting.cancel() == 0;
  }

  // Shared with the deadline timer's handler, which can run after the waiter is gone.
  std::shared_ptr<state> state_;
};

}  // namespace river::detail
