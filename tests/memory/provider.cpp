#include <river/memory/provider.hpp>

#include "support/bounded.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

using namespace river::test;
using river::errc;
using river::read_status;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto forever = clock_type::time_point::max();

struct fake_clock {
  std::shared_ptr<clock_type::time_point> now = std::make_shared<clock_type::time_point>(clock_type::now());
  std::function<clock_type::time_point()> fn() const {
    return [n = now] { return *n; };
  }
  void advance(std::chrono::milliseconds d) const { *now += d; }
};

asio::awaitable<river::new_log> create(river::memory::provider& p, std::string id) {
  co_return (co_await p.create_log(std::move(id), nullptr)).value();
}

asio::awaitable<void> append(river::log_writer& w, std::string data, bool last = false) {
  (void)(co_await w.append(std::move(data), last)).value();
}

// Every record a reader yields until the log ends, as "position=data".
asio::awaitable<std::vector<std::string>> drain(river::log_reader& r) {
  std::vector<std::string> out;
  std::vector<river::record_view> batch;
  for (;;) {
    batch.clear();
    auto st = (co_await r.read(batch, 3, forever)).value();
    for (auto& rec : batch) out.push_back(std::string(rec.position) + "=" + std::string(rec.data));
    if (st == read_status::end) co_return out;
  }
}

asio::awaitable<std::unique_ptr<river::log_reader>> open(river::memory::provider& p, std::string id,
                                                         std::optional<std::string> after = std::nullopt) {
  co_return (co_await p.open_log("default", std::move(id), std::move(after))).value();
}

}  // namespace

TEST_CASE("memory provider: positions increase and readers resume after any of them") {
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p;
    CHECK(p.id() == "memory");
    CHECK(p.storage_id() == "default");
    CHECK(p.resumable());
    auto log = co_await create(p, "run");
    for (int i = 0; i < 5; ++i) co_await append(*log.writer, "e" + std::to_string(i), i == 4);
    auto all = co_await drain(*log.reader);
    CHECK(all == std::vector<std::string>{"1=e0", "2=e1", "3=e2", "4=e3", "5=e4"});
    for (int after = 0; after <= 5; ++after) {
      auto r = co_await open(p, "run", std::to_string(after));
      auto records = co_await drain(*r);
      CHECK(records == std::vector(all.begin() + after, all.end()));
    }
  });
}

TEST_CASE("memory provider: unknown runs, other storage ids and bad positions are refused") {
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p;
    auto log = co_await create(p, "run");
    co_await append(*log.writer, "a");
    auto awaited2 = co_await p.open_log("default", "nope", std::nullopt);
    CHECK(awaited2.error().code == errc::run_not_found);
    auto awaited3 = co_await p.open_log("other", "run", std::nullopt);
    CHECK(awaited3.error().code == errc::run_not_found);
    const std::vector<std::string> bad_positions = {"2", "x", "", "-1", "1x", "18446744073709551616"};
    for (const auto& bad : bad_positions) {
      auto awaited4 = co_await p.open_log("default", "run", bad);
      CHECK(awaited4.error().code == errc::invalid_position);
    }
    auto awaited5 = co_await p.request_cancel("default", "nope");
    CHECK(awaited5.error().code == errc::run_not_found);
  });
}

TEST_CASE("memory provider: appends after the last record are refused") {
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p;
    auto log = co_await create(p, "run");
    co_await append(*log.writer, "end", true);
    auto r = co_await log.writer->append("late", false);
    CHECK(r.error().code == errc::run_closed);
    auto records = co_await drain(*log.reader);
    CHECK(records == std::vector<std::string>{"1=end"});
  });
}

TEST_CASE("memory provider: a writer that goes away without closing closes the log with a fatal error") {
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p;
    auto log = co_await create(p, "run");
    co_await append(*log.writer, "a");
    log.writer.reset();
    auto all = co_await drain(*log.reader);
    REQUIRE(all.size() == 2);
    CHECK(all[1].find("stream_fatal_error") != std::string::npos);
    CHECK(all[1].find("Run ended without a terminal event") != std::string::npos);
  });
}

TEST_CASE("memory provider: a reader waits for records, or until its deadline") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::memory::provider p;
    auto log = co_await create(p, "run");
    std::vector<river::record_view> batch;
    auto started = clock_type::now();
    auto st = (co_await log.reader->read(batch, 10, clock_type::now() + 30ms)).value();
    CHECK(st == read_status::idle);
    CHECK(clock_type::now() - started >= 30ms);
    CHECK(batch.empty());
    asio::steady_timer later(io, 20ms);
    later.async_wait([w = log.writer, w_ex = io.get_executor()](river::error_code) {
      asio::co_spawn(w_ex, w->append("x", false), asio::detached);
    });
    st = (co_await log.reader->read(batch, 10, forever)).value();
    CHECK(st == read_status::records);
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].data == "x");
  });
}

TEST_CASE("memory provider: a cancelled read moves past nothing") {
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p;
    auto log = co_await create(p, "run");
    std::vector<river::record_view> batch;
    asio::cancellation_signal cancel;
    auto ex = co_await asio::this_coro::executor;
    bool done = false;
    river::error_code ec;
    asio::co_spawn(ex, log.reader->read(batch, 10, forever),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr, river::result<read_status> r) {
                     done = true;
                     if (!r) ec = r.error().code;
                   }));
    co_await sleep_for(5ms);
    cancel.emit(asio::cancellation_type::terminal);
    while (!done) co_await sleep_for(1ms);
    CHECK(ec == asio::error::operation_aborted);
    co_await append(*log.writer, "a", true);
    auto records = co_await drain(*log.reader);
    CHECK(records == std::vector<std::string>{"1=a"});
  });
}

TEST_CASE("memory provider: a lagging reader slows neither the writer nor other readers") {
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p;
    auto log = co_await create(p, "run");
    auto laggard = co_await open(p, "run");
    std::vector<river::record_view> batch;
    // The writer appends 10000 records while one reader never reads; nothing blocks.
    for (int i = 0; i < 10000; ++i) co_await append(*log.writer, std::to_string(i));
    co_await append(*log.writer, "end", true);
    auto fast = co_await drain(*log.reader);
    CHECK(fast.size() == 10001);
    auto slow = co_await drain(*laggard);
    CHECK(slow == fast);
  });
}

TEST_CASE("memory provider: finished runs expire after the retention time") {
  fake_clock clock;
  river::memory::config cfg;
  cfg.retention = std::chrono::seconds(60);
  cfg.clock = clock.fn();
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p(cfg);
    auto done = co_await create(p, "done");
    co_await append(*done.writer, "end", true);
    auto running = co_await create(p, "running");
    co_await append(*running.writer, "a");
    clock.advance(std::chrono::seconds(59));
    auto awaited6 = co_await p.open_log("default", "done", std::nullopt);
    CHECK(awaited6.has_value());
    clock.advance(std::chrono::seconds(2));
    auto awaited7 = co_await p.open_log("default", "done", std::nullopt);
    CHECK(awaited7.error().code == errc::run_not_found);
    // A run in progress never expires, however old.
    clock.advance(std::chrono::hours(24));
    auto awaited8 = co_await p.open_log("default", "running", std::nullopt);
    CHECK(awaited8.has_value());
    CHECK(p.get_stats().runs == 1);
    CHECK(p.get_stats().evicted == 1);
    // A reader that had the expired run open still reads it to the end.
    auto records = co_await drain(*done.reader);
    CHECK(records == std::vector<std::string>{"1=end"});
  });
}

TEST_CASE("memory provider: the run bound evicts the oldest finished runs, never running ones") {
  river::memory::config cfg;
  cfg.max_runs = 3;
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p(cfg);
    auto running = co_await create(p, "running");
    const std::vector<std::string> finished_ids = {"f1", "f2"};
    for (const auto& id : finished_ids) {
      auto l = co_await create(p, id);
      co_await append(*l.writer, "end", true);
    }
    CHECK(p.get_stats().runs == 3);
    auto f3 = co_await create(p, "f3");  // evicts f1, the oldest finished
    auto awaited9 = co_await p.open_log("default", "f1", std::nullopt);
    CHECK(awaited9.error().code == errc::run_not_found);
    auto awaited10 = co_await p.open_log("default", "f2", std::nullopt);
    CHECK(awaited10.has_value());
    auto awaited11 = co_await p.open_log("default", "running", std::nullopt);
    CHECK(awaited11.has_value());
    auto f4 = co_await create(p, "f4");  // evicts f2
    auto awaited12 = co_await p.open_log("default", "f2", std::nullopt);
    CHECK(awaited12.error().code == errc::run_not_found);
    // Only running runs are left: a new one is refused.
    auto refused = co_await p.create_log("f5", nullptr);
    CHECK(refused.error().code == errc::capacity_exceeded);
    auto awaited13 = co_await p.open_log("default", "running", std::nullopt);
    CHECK(awaited13.has_value());
    CHECK(p.get_stats().running == 3);
  });
}

TEST_CASE("memory provider: the byte bound evicts finished runs, then refuses appends") {
  river::memory::config cfg;
  cfg.max_bytes = 1000;
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p(cfg);
    auto old = co_await create(p, "old");
    co_await append(*old.writer, std::string(400, 'o'), true);
    auto live = co_await create(p, "live");
    co_await append(*live.writer, std::string(500, 'l'));
    CHECK(p.get_stats().bytes == 900);
    co_await append(*live.writer, std::string(300, 'l'));  // needs the room of "old"
    auto awaited14 = co_await p.open_log("default", "old", std::nullopt);
    CHECK(awaited14.error().code == errc::run_not_found);
    CHECK(p.get_stats().bytes == 800);
    auto refused = co_await live.writer->append(std::string(300, 'x'), false);
    CHECK(refused.error().code == errc::capacity_exceeded);
    // The closing record is always accepted.
    co_await append(*live.writer, "end", true);
    auto awaited15 = co_await drain(*live.reader);
    CHECK(awaited15.size() == 3);
  });
}

TEST_CASE("memory provider: a run past its own size limit is refused further appends") {
  river::memory::config cfg;
  cfg.max_run_bytes = 100;
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p(cfg);
    auto log = co_await create(p, "run");
    co_await append(*log.writer, std::string(90, 'a'));
    auto awaited16 = co_await log.writer->append(std::string(20, 'b'), false);
    CHECK(awaited16.error().code == errc::run_too_large);
    co_await append(*log.writer, std::string(10, 'c'));
    co_await append(*log.writer, "closing record", true);
    auto awaited17 = co_await drain(*log.reader);
    CHECK(awaited17.size() == 3);
  });
}

TEST_CASE("memory provider: cancel requests reach the run's hook until it finishes") {
  run_bounded([&](asio::io_context&) -> asio::awaitable<void> {
    river::memory::provider p;
    int requests = 0;
    auto log = (co_await p.create_log("run", [&] { ++requests; })).value();
    auto awaited18 = co_await p.request_cancel("default", "run");
    CHECK(awaited18.has_value());
    auto awaited19 = co_await p.request_cancel("default", "run");
    CHECK(awaited19.has_value());
    CHECK(requests == 2);
    co_await append(*log.writer, "end", true);
    auto awaited20 = co_await p.request_cancel("default", "run");
    CHECK(awaited20.error().code == errc::run_already_finished);
    CHECK(requests == 2);
  });
}
