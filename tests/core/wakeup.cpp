#include <river/detail/wakeup.hpp>

#include "support/bounded.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using river::detail::wakeup;
using namespace river::test;
using clock_type = std::chrono::steady_clock;

namespace {

// Waits once; returns how long it took and whether the wait counts as cancelled.
asio::awaitable<std::pair<clock_type::duration, bool>> timed_wait(wakeup& w, clock_type::time_point deadline) {
  const auto before = clock_type::now();
  auto [ec] = co_await w.wait(deadline);
  co_return std::pair{clock_type::now() - before, wakeup::cancelled(ec, co_await asio::this_coro::cancellation_state)};
}

}  // namespace

TEST_CASE("wakeup: a wake-up before the wait ends the next wait at once, and only that one") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    wakeup w(io.get_executor());
    w.notify();
    w.notify();  // wake-ups coalesce
    auto [first, c1] = co_await timed_wait(w, clock_type::time_point::max() - std::chrono::hours(1));
    CHECK(first < 500ms);
    CHECK_FALSE(c1);
    auto [second, c2] = co_await timed_wait(w, clock_type::now() + 100ms);
    CHECK(second >= 90ms);  // nothing pending: it waited for its deadline
    CHECK_FALSE(c2);
  });
}

TEST_CASE("wakeup: the deadline ends a wait, a later deadline is honoured too") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    wakeup w(io.get_executor());
    auto [a, ca] = co_await timed_wait(w, clock_type::now() + 50ms);
    CHECK(a >= 45ms);
    CHECK(a < 2s);
    auto [b, cb] = co_await timed_wait(w, clock_type::now() + 80ms);
    CHECK(b >= 75ms);
    CHECK_FALSE(ca);
    CHECK_FALSE(cb);
  });
}

TEST_CASE("wakeup: another thread wakes a waiter") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    wakeup w(io.get_executor());
    std::thread other([&] {
      std::this_thread::sleep_for(50ms);
      w.notify();
    });
    auto [took, cancelled] = co_await timed_wait(w, clock_type::time_point::max());
    other.join();
    CHECK(took >= 40ms);
    CHECK_FALSE(cancelled);
  });
}

TEST_CASE("wakeup: a cancelled wait says so") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    wakeup w(io.get_executor());
    asio::cancellation_signal signal;
    bool done = false, was_cancelled = false;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> {
          co_await asio::this_coro::throw_if_cancelled(false);
          auto [took, cancelled] = co_await timed_wait(w, clock_type::time_point::max());
          (void)took;
          was_cancelled = cancelled;
        },
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr) { done = true; }));
    co_await sleep_for(20ms);
    signal.emit(asio::cancellation_type::terminal);
    while (!done) co_await sleep_for(1ms);
    CHECK(was_cancelled);
  });
}

namespace {

// What happened, in order, on the test's one thread.
using steps = std::vector<std::string>;

// Waits once, then notes that it resumed.
asio::awaitable<void> wait_then_note(wakeup& w, steps& out) {
  (void)co_await w.wait(clock_type::time_point::max());
  out.emplace_back("resumed");
}

// Lets the waiter start its wait, wakes it (inside an inline scope when `in_scope`), and notes
// when the wake-up was made and when the waker went on.
asio::awaitable<void> wake_and_note(wakeup& w, steps& out, bool in_scope) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  {
    std::optional<wakeup::inline_scope> scope;
    if (in_scope) scope.emplace();
    w.notify();
    out.emplace_back("woken");
  }
  out.emplace_back("waker goes on");
}

}  // namespace

TEST_CASE("wakeup: a wake-up inside an inline scope resumes the waiter when the scope ends, before the waker goes on") {
  for (const bool in_scope : {true, false}) {
    asio::io_context io(1);
    wakeup w(io.get_executor());
    steps seen;
    asio::co_spawn(io, wait_then_note(w, seen), asio::detached);
    asio::co_spawn(io, wake_and_note(w, seen, in_scope), asio::detached);
    io.run_for(5s);
    INFO("in scope: " << in_scope);
    if (in_scope)
      CHECK(seen == steps{"woken", "resumed", "waker goes on"});
    else
      CHECK(seen == steps{"woken", "waker goes on", "resumed"});  // queued behind the waker
  }
}

TEST_CASE("wakeup: an inline scope queues the waiters of an executor that does not run on its thread") {
  asio::io_context waiter_io(1), waker_io(1);
  wakeup w(waiter_io.get_executor());
  steps seen;
  asio::co_spawn(waiter_io, wait_then_note(w, seen), asio::detached);
  waiter_io.poll();  // the wait starts
  asio::co_spawn(waker_io, wake_and_note(w, seen, true), asio::detached);
  waker_io.run_for(5s);
  CHECK(seen == steps{"woken", "waker goes on"});
  waiter_io.run_for(5s);
  CHECK(seen == steps{"woken", "waker goes on", "resumed"});
}

TEST_CASE("wakeup: an exception from a waiter resumed inline leaves the event loop, not the waker") {
  asio::io_context io(1);
  wakeup w(io.get_executor());
  steps seen;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await wait_then_note(w, seen);
        throw std::runtime_error("the waiter failed");
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  asio::co_spawn(io, wake_and_note(w, seen, true), asio::detached);
  CHECK_THROWS_WITH(io.run_for(5s), "the waiter failed");
  CHECK(seen == steps{"woken", "resumed", "waker goes on"});
}
