#pragma once

// A waiter that other threads can wake: the building block of readers that follow a log.
// A wake-up only means "look again", so wake-ups coalesce and a spurious one costs one look.
//
// A wait keeps its handler, in memory the waiter keeps, until a wake-up takes it: waiting and
// waking allocate nothing. A wake-up queues the handler on its executor, as a completed timer
// would; but a wake-up made inside a `wakeup::inline_scope`, on a thread that runs the waiter's
// executor, resumes the waiter when the scope ends, before the waker goes on (see there why).
// Deadlines have a timer, re-armed only when the deadline changes (a reader's heartbeat moves
// rarely), whose expiry is a wake-up.

#include <river/config.hpp>
#include <river/detail/handler_memory.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

namespace river::detail {

class wakeup {
  struct pending_wait;

 public:
  using clock = std::chrono::steady_clock;

  explicit wakeup(const executor& ex) : state_(std::make_shared<state>(ex)) {}
  ~wakeup() {
    state_->deadline.cancel();
    if (auto* w = take_waiting(*state_)) w->complete(w, asio::error::operation_aborted, false);
  }

  wakeup(const wakeup&) = delete;
  wakeup& operator=(const wakeup&) = delete;

  /// While one lives on a thread, the waiters that thread wakes are resumed when it ends, on
  /// this thread, in the order they were woken, where their executor allows it (an `io_context`
  /// executor that runs on this thread; others are queued as usual). A writer opens one around an
  /// append, outside its locks: a paced runner's readers then write its event before the next
  /// runner due in the same turn appends, as a plain event loop would, instead of after every
  /// runner of the turn. Scopes nest; the outermost resumes. Not across a suspension.
  class inline_scope {
   public:
    inline_scope() noexcept { ++woken().depth; }
    ~inline_scope() {
      auto& w = woken();
      if (--w.depth > 0 || w.resuming) return;
      // A waiter resumed here may append and wake others: they join this loop, not a new one.
      w.resuming = true;
      for (std::size_t i = 0; i < w.waits.size(); ++i) {
        auto* p = w.waits[i];
        p->complete(p, {}, true);
      }
      w.waits.clear();
      w.resuming = false;
    }
    inline_scope(const inline_scope&) = delete;
    inline_scope& operator=(const inline_scope&) = delete;
  };

  /// Wakes the waiter, or makes the next wait return at once if none is pending. Thread-safe.
  void notify() noexcept { wake(*state_); }

  /// Waits for `notify` or `deadline`, whichever comes first; a stale wake-up may end it at once.
  /// One wait at a time, on the executor the waiter was made with. Completes without error when
  /// woken or at the deadline, with `operation_aborted` when cancelled (see `cancelled`).
  asio::awaitable<std::tuple<error_code>> wait(clock::time_point deadline) {
    auto& s = *state_;
    if (deadline != s.armed) {
      s.armed = deadline;
      s.deadline.cancel();
      if (deadline != clock::time_point::max()) {
        s.deadline.expires_at(deadline);
        s.deadline.async_wait([weak = std::weak_ptr<state>(state_)](error_code ec) {
          // Expiry runs on the waiter's executor and holds no lock: the waiter may resume here.
          if (auto st = weak.lock(); st && !ec) {
            inline_scope resume_here;
            wake(*st);
          }
        });
      }
    }
    auto token = asio::bind_allocator(handler_allocator<void>(s.memory), asio::as_tuple(asio::use_awaitable));
    return asio::async_initiate<decltype(token), void(error_code)>(
        [this, st = &s](auto handler) {
          using handler_type = decltype(handler);
          // The canceller goes in first: once the wait is published another thread may take it.
          if (auto slot = asio::get_associated_cancellation_slot(handler); slot.is_connected())
            slot.template emplace<canceller>(std::weak_ptr<state>(state_));
          handler_allocator<wait_of<handler_type>> alloc(st->memory);
          auto* w = new (alloc.allocate(1)) wait_of<handler_type>(std::move(handler));
          std::unique_lock lk(st->mutex);
          if (std::exchange(st->pending, false)) {
            // A wake-up that came before this wait ends it at once (queued: never inside the
            // call that starts it).
            lk.unlock();
            w->complete(w, {}, false);
            return;
          }
          st->waiting = w;
        },
        token);
  }

  /// Whether a wait that completed with `ec` was cancelled by the awaiting coroutine's own
  /// cancellation (`state` is its `this_coro::cancellation_state`), rather than woken.
  static bool cancelled(const error_code& ec, const asio::cancellation_state& state) noexcept {
    return ec && state.cancelled() != asio::cancellation_type::none;
  }

 private:
  // A wait in progress: its handler, and how to complete it, type-erased by hand so that it
  // lives in the waiter's `handler_memory`.
  struct pending_wait {
    // Frees the wait, then runs its handler with `ec`: here when `here` and its executor runs
    // on this thread, otherwise queued on that executor.
    void (*complete)(pending_wait*, error_code ec, bool here);
  };

  template <class Handler>
  struct wait_of : pending_wait {
    // No work is counted for the wait: its coroutine counts as work on its executor until it ends.
    explicit wait_of(Handler&& h) : pending_wait{&run}, handler(std::move(h)) {}

    Handler handler;

    static void run(pending_wait* base, error_code ec, bool here) {
      auto* self = static_cast<wait_of*>(base);
      Handler h = std::move(self->handler);
      const auto ex = asio::get_associated_executor(h);
      const auto* io = ex.template target<asio::io_context::executor_type>();
      here = here && io && io->running_in_this_thread();
      // Freed before the handler runs, which may wait again in the same memory.
      auto alloc = asio::get_associated_allocator(h);
      self->~wait_of();
      handler_allocator<wait_of>(alloc).deallocate(self, 1);
      if (!here) {
        asio::post(asio::append(std::move(h), ec));
        return;
      }
      try {
        std::move(h)(ec);
      } catch (...) {
        // An exception from a handler leaves the event loop that ran it, as it would have
        // from a queued handler, rather than the waker's call.
        asio::post(ex, [e = std::current_exception()] { std::rethrow_exception(e); });
      }
    }
  };

  struct state {
    explicit state(const executor& ex) : deadline(ex) {}
    std::mutex mutex;                 // guards `waiting` and `pending`
    pending_wait* waiting = nullptr;  // the wait in progress, if any
    bool pending = false;             // a wake-up that no wait took yet
    asio::steady_timer deadline;      // the current deadline's wake-up (waiter's executor only)
    clock::time_point armed = clock::time_point::max();
    handler_memory<> memory;  // the wait's memory
  };

  // Cancels the wait in progress when the awaiting coroutine is cancelled.
  struct canceller {
    explicit canceller(std::weak_ptr<state> s) noexcept : weak(std::move(s)) {}
    std::weak_ptr<state> weak;
    void operator()(asio::cancellation_type type) const {
      if (type == asio::cancellation_type::none) return;
      if (auto st = weak.lock())
        if (auto* w = take_waiting(*st)) w->complete(w, asio::error::operation_aborted, false);
    }
  };

  // Takes the wait in progress, if any: whoever takes it completes it.
  static pending_wait* take_waiting(state& s) noexcept {
    std::lock_guard lk(s.mutex);
    return std::exchange(s.waiting, nullptr);
  }

  // The wake-ups an `inline_scope` of this thread holds, kept for the thread's life so that
  // holding them allocates nothing after the first few.
  struct woken_waits {
    std::vector<pending_wait*> waits;
    int depth = 0;
    bool resuming = false;
  };
  static woken_waits& woken() noexcept {
    thread_local woken_waits w;
    return w;
  }

  static void wake(state& s) noexcept {
    pending_wait* w;
    {
      std::lock_guard lk(s.mutex);
      w = std::exchange(s.waiting, nullptr);
      // Without a wait in progress the wake-up stays for the next wait.
      if (!w) {
        s.pending = true;
        return;
      }
    }
    if (auto& scope = woken(); scope.depth > 0) {
      try {
        scope.waits.push_back(w);
        return;
      } catch (const std::bad_alloc&) {
        // No room to hold it: queue it instead.
      }
    }
    w->complete(w, {}, false);
  }

  // Shared with the deadline timer's handler and the canceller, which can outlive the waiter.
  std::shared_ptr<state> state_;
};

}  // namespace river::detail
