#pragma once

// The disconnect policy `cancel_when_unwatched` at work: a coroutine beside the runner, on the
// run's strand, that asks the provider now and then whether anyone reads the run, and cancels
// the run once nobody has for the grace period (disconnect_policy.hpp).

#include <river/detail/run_core.hpp>
#include <river/disconnect_policy.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <optional>

namespace river::detail {

/// How often the monitor asks: four times per grace, from every 10 ms to once a second.
inline std::chrono::milliseconds unwatched_check_interval(std::chrono::milliseconds grace) {
  return std::clamp(grace / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

/// Watches the run until it ends; holds it only while it looks.
inline asio::awaitable<void> cancel_when_unwatched(std::weak_ptr<run_core> run, std::shared_ptr<provider> p,
                                                   std::chrono::milliseconds grace) {
  using clock = std::chrono::steady_clock;
  const auto every = unwatched_check_interval(grace);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::optional<clock::time_point> unwatched_since;
  std::string storage_id, run_id;
  if (auto core = run.lock()) {
    storage_id = core->storage_id();
    run_id = core->run_id();
  }
  for (;;) {
    timer.expires_after(every);
    (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (auto core = run.lock(); !core || core->closed()) co_return;
    auto watched = co_await p->watched(storage_id, run_id);
    auto core = run.lock();
    if (!core || core->closed()) co_return;
    // A provider that cannot tell says so with an error: that is no reason to cancel.
    if (!watched || *watched) {
      unwatched_since.reset();
      continue;
    }
    const auto now = clock::now();
    if (!unwatched_since) {
      unwatched_since = now;
    } else if (now - *unwatched_since >= grace) {
      core->request_cancel();
      co_return;
    }
  }
}

}  // namespace river::detail
