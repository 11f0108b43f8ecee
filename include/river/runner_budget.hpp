#pragma once

#include <chrono>
#include <cstddef>

namespace river {

/// How long a runner may go on without suspending before River suspends it once, at an append.
///
/// A provider that stores at once (the in-memory one) completes `co_await ctx.append(...)` without
/// suspending the runner, so a runner in a tight loop of appends would keep its thread to itself:
/// its readers, and every other run and connection on that thread, would wait for it to finish.
/// River therefore counts the appends a runner makes, their bytes, and the time that passes, since
/// it last suspended; once any bound is reached, the append that reaches it also yields to the
/// executor's queue (`asio::post`) before it completes. Runners that suspend anyway (on a timer,
/// a model's reply, Redis) never reach the bounds and are not slowed.
struct runner_budget {
  /// Appends in a row without the runner suspending.
  std::size_t appends = 64;
  /// Time since the runner last suspended, checked at every eighth append of a streak.
  std::chrono::microseconds time{500};
  /// Bytes of events appended since the runner last suspended: big events cost their readers
  /// more to send than the runner to make, so a burst of them is bounded by what it sends.
  std::size_t bytes = 256 * 1024;
};

}  // namespace river
