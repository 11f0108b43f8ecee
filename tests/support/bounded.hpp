#pragma once

// Every asynchronous test is bounded: it runs on its own io_context for at most a time limit
// and fails unless its coroutine finished.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>
#include <vector>

namespace river::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// How a bounded run ended: whether its coroutine finished, and what it threw.
struct bounded_outcome {
  bool done = false;
  std::exception_ptr failure;
};

/// Runs `make(io)`'s coroutine on `threads` threads for at most `limit`, and says how it ended.
/// It asserts nothing, so a thread other than the test's may use it (Catch2 is not thread safe).
template <class MakeAwaitable>
bounded_outcome run_for_at_most(MakeAwaitable make, std::chrono::milliseconds limit = 20s, int threads = 1) {
  asio::io_context io(threads);
  std::atomic<bool> done{false};
  std::exception_ptr failure;
  asio::co_spawn(io, make(io), [&](std::exception_ptr e) {
    failure = e;
    done = true;
    io.stop();
  });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run_for(limit); });
  io.run_for(limit);
  for (auto& t : pool) t.join();
  return {done.load(), failure};
}

/// Fails the test unless a bounded run's coroutine finished; rethrows what it threw.
inline void require_finished(const bounded_outcome& outcome, std::chrono::milliseconds limit) {
  INFO("the test's coroutine did not finish within " << limit.count() << " ms");
  REQUIRE(outcome.done);
  if (outcome.failure) std::rethrow_exception(outcome.failure);
}

/// Runs `make(io)`'s coroutine to completion on `threads` threads, within `limit`.
template <class MakeAwaitable>
void run_bounded(MakeAwaitable make, std::chrono::milliseconds limit = 20s, int threads = 1) {
  require_finished(run_for_at_most(std::move(make), limit, threads), limit);
}

/// Suspends the calling coroutine for `d`.
inline asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

}  // namespace river::test
