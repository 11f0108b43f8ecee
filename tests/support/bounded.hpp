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

/// Runs `make(io)`'s coroutine to completion on `threads` threads, within `limit`.
template <class MakeAwaitable>
void run_bounded(MakeAwaitable make, std::chrono::milliseconds limit = 20s, int threads = 1) {
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
  INFO("the test's coroutine did not finish within " << limit.count() << " ms");
  REQUIRE(done);
  if (failure) std::rethrow_exception(failure);
}

/// Suspends the calling coroutine for `d`.
inline asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

}  // namespace river::test
