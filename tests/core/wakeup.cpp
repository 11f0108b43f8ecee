#include <river/detail/wakeup.hpp>

#include "support/bounded.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <thread>

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
