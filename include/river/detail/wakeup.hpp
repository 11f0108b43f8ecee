#pragma once

// A waiter that other threads can wake: the building block of readers that follow a log.
// A wake-up only means "look again", so wake-ups coalesce and a spurious one costs one look.

#include <river/config.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>

namespace river::detail {

class wakeup {
 public:
  using clock = std::chrono::steady_clock;

  explicit wakeup(const executor& ex)
      : signal_(std::make_shared<channel>(ex, 1)), timer_(ex), armed_(clock::time_point::max()) {}

  wakeup(const wakeup&) = delete;
  wakeup& operator=(const wakeup&) = delete;

  /// Wakes the waiter, or the next wait if none is pending. Thread-safe.
  void notify() noexcept { signal_->try_send(error_code{}); }

  /// Waits for `notify` or `deadline`, whichever comes first; a stale wake-up may end it at once.
  /// Returns an error only when the wait was cancelled.
  asio::awaitable<error_code> wait(clock::time_point deadline) {
    if (deadline != armed_) {
      armed_ = deadline;
      timer_.cancel();
      if (deadline != clock::time_point::max()) {
        timer_.expires_at(deadline);
        timer_.async_wait([signal = signal_](error_code ec) {
          if (!ec) signal->try_send(error_code{});
        });
      }
    }
    auto [ec] = co_await signal_->async_receive(asio::as_tuple(asio::use_awaitable));
    co_return ec ? error_code(asio::error::operation_aborted) : error_code{};
  }

 private:
  using channel = asio::experimental::concurrent_channel<void(error_code)>;
  // Shared with the timer's handler, which can run after this object is gone.
  std::shared_ptr<channel> signal_;
  asio::steady_timer timer_;
  clock::time_point armed_;
};

}  // namespace river::detail
