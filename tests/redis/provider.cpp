#include <river/redis/provider.hpp>

#include "redis/provider_support.hpp"

#include <river/redis/detail/stream_entry.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/strand.hpp>

using namespace river::test;
using river::errc;
using river::read_status;

TEST_CASE("redis provider: events are XADDed as `item`, closed by `end STREAM_END`, readable with XRANGE alone") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.storage_id = "store";
    redis::provider p(io.get_executor(), cfg);
    CHECK(p.id() == "redis");
    CHECK(p.storage_id() == "store");
    CHECK(p.resumable());
    auto log = co_await create(p, "run1");
    std::vector<std::string> positions;
    for (int i = 0; i < 3; ++i) positions.push_back(co_await append(*log.writer, chunk(i), i == 2));
    auto req = cmd({"XRANGE", "stream-store-run1", "-", "+"});
    auto r = co_await raw(server, std::move(req));
    auto entries = redis::detail::decode_range(r.at(0)).value();
    REQUIRE(entries.size() == 4);
    for (int i = 0; i < 3; ++i) {
      const auto& e = entries[static_cast<std::size_t>(i)];
      CHECK(e.id == positions[static_cast<std::size_t>(i)]);
      REQUIRE(!e.fields.empty());
      CHECK(e.fields[0] == std::pair<std::string, std::string>("item", chunk(i)));
    }
    CHECK(entries[3].fields == std::vector<std::pair<std::string, std::string>>{{"end", "STREAM_END"}});
    // The finished run expires after the retention; its lease is gone.
    auto req2 = cmd({"PTTL", "stream-store-run1"});
    auto ttl = co_await raw(server, std::move(req2));
    CHECK(ttl.at(0).integer > 23 * 3600 * 1000);
    auto req3 = cmd({"EXISTS", "river-lease:{stream-store-run1}"});
    auto lease = co_await raw(server, std::move(req3));
    CHECK(lease.at(0).integer == 0);
    auto after = co_await log.writer->append(chunk(9), false);
    CHECK(after.error().code == errc::run_closed);
  });
}

TEST_CASE("redis provider: an instance runs at most max_running_runs at once, then refuses with capacity_exceeded") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.max_running_runs = 2;
    redis::provider p(io.get_executor(), cfg);
    auto a = co_await create(p, "a");
    auto b = co_await create(p, "b");
    auto refused = co_await p.create_log("c", nullptr);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == errc::capacity_exceeded);
    // Nothing of the refused run was written.
    auto req = cmd({"EXISTS", "stream-default-c", "river-lease:{stream-default-c}"});
    auto exists = co_await raw(server, std::move(req));
    CHECK(exists.at(0).integer == 0);
    // A run that ends gives its place back.
    co_await append(*a.writer, chunk(0), true);
    auto c = co_await create(p, "c");
    co_await append(*c.writer, chunk(0), true);
    co_await append(*b.writer, chunk(0), true);
  });
}

TEST_CASE("redis provider: a run resumes after every one of its positions") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::provider p(io.get_executor(), test_config(server));
    auto log = co_await create(p, "run");
    for (int i = 0; i < 7; ++i) co_await append(*log.writer, chunk(i), i == 6);
    auto all = co_await drain(*log.reader);
    REQUIRE(all.size() == 7);
    CHECK(all[0].ends_with("=" + chunk(0)));
    for (std::size_t k = 0; k <= all.size(); ++k) {
      std::optional<std::string> after;
      if (k > 0) after = all[k - 1].substr(0, all[k - 1].find('='));
      auto r = co_await open(p, "run", after);
      auto got = co_await drain(*r, k % 3 + 1);
      CHECK(got == std::vector(all.begin() + static_cast<std::ptrdiff_t>(k), all.end()));
    }
  });
}

TEST_CASE("redis provider: unknown runs, bad positions and cancels of unknown runs are refused") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::provider p(io.get_executor(), test_config(server));
    auto log = co_await create(p, "run");
    auto pos = co_await append(*log.writer, chunk(0));
    auto nope = co_await p.open_log("default", "nope", std::nullopt);
    CHECK(nope.error().code == errc::run_not_found);
    auto other = co_await p.open_log("other", "run", std::nullopt);
    CHECK(other.error().code == errc::run_not_found);
    const std::vector<std::string> bad = {"x", "", "1", "0-0", "1-1", "99999999999999-0", pos + "x"};
    for (const auto& b : bad) {
      auto r = co_await p.open_log("default", "run", b);
      INFO(b);
      CHECK(r.error().code == errc::invalid_position);
    }
    auto dup = co_await p.create_log("run", nullptr);
    CHECK(dup.error().code == errc::storage_failure);
    auto c = co_await p.request_cancel("default", "nope");
    CHECK(c.error().code == errc::run_not_found);
    co_await append(*log.writer, chunk(1), true);
    auto done = co_await p.request_cancel("default", "run");
    CHECK(done.error().code == errc::run_already_finished);
  });
}

TEST_CASE("redis provider: live readers see every event in order, with no gap between replay and live") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.feed_window = 4;  // readers that fall behind replay with XRANGE
    redis::provider writer_side(io.get_executor(), cfg);
    redis::provider reader_side(io.get_executor(), cfg);
    auto log = co_await create(writer_side, "live");
    constexpr int n = 60;
    std::vector<std::string> expected;
    auto first = co_await append(*log.writer, chunk(0));
    expected.push_back(first + "=" + chunk(0));
    // Readers join from the start, after the first event, and late; one reads slowly.
    auto from_start = co_await open(reader_side, "live");
    auto from_first = co_await open(reader_side, "live", first);
    std::vector<std::string> got_start, got_first, got_slow;
    int finished = 0;
    auto ex = co_await asio::this_coro::executor;
    auto reader_task = [&](river::log_reader& r, std::vector<std::string>& out, bool slow) -> asio::awaitable<void> {
      std::vector<river::record_view> batch;
      for (;;) {
        batch.clear();
        auto st = (co_await r.read(batch, 5, forever)).value();
        for (auto& rec : batch) out.push_back(std::string(rec.position) + "=" + std::string(rec.data));
        if (st == read_status::end) break;
        if (slow) co_await sleep_for(3ms);
      }
      ++finished;
    };
    asio::co_spawn(ex, reader_task(*from_start, got_start, false), asio::detached);
    asio::co_spawn(ex, reader_task(*from_first, got_first, false), asio::detached);
    asio::co_spawn(ex, reader_task(*log.reader, got_slow, true), asio::detached);
    for (int i = 1; i < n; ++i) {
      auto pos = co_await append(*log.writer, chunk(i), i == n - 1);
      expected.push_back(pos + "=" + chunk(i));
      if (i % 7 == 0) co_await sleep_for(2ms);
    }
    while (finished < 3) co_await sleep_for(1ms);
    CHECK(got_start == expected);
    CHECK(got_first == std::vector(expected.begin() + 1, expected.end()));
    CHECK(got_slow == expected);
    auto late = co_await open(reader_side, "live");
    auto got_late = co_await drain(*late);
    CHECK(got_late == expected);
    CHECK(reader_side.get_stats().connections == 2);
  });
}

TEST_CASE("redis provider: appends of many runs on two threads are batched into few writes, each acknowledged") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::provider p(io.get_executor(), test_config(server));
    constexpr int runs = 100, events = 20;
    const auto before = p.get_stats();
    const auto failed = co_await append_on_strands(p, "b", runs, events);
    CHECK(failed == 0);
    const auto after = p.get_stats();
    CHECK(after.appends - before.appends == runs * events);
    // One round trip carries the appends of many runs.
    CHECK(after.writes - before.writes < runs * events / 4);
    CHECK(after.running == 0);
    auto req = cmd({"XLEN", "stream-default-b42"});
    auto len = co_await raw(server, std::move(req));
    CHECK(len.at(0).integer == events + 1);
  }, 20s, 2);  // two threads run the runs' coroutines: the provider is used from both at once
}

TEST_CASE("redis provider: a finished run expires after the retention and then answers not found") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.retention = std::chrono::milliseconds(300);
    redis::provider p(io.get_executor(), cfg);
    auto log = co_await create(p, "short");
    co_await append(*log.writer, chunk(0), true);
    auto still = co_await p.open_log("default", "short", std::nullopt);
    CHECK(still.has_value());
    co_await sleep_for(600ms);
    auto gone = co_await p.open_log("default", "short", std::nullopt);
    CHECK(gone.error().code == errc::run_not_found);
  });
}

TEST_CASE("redis provider: a writer dropped before its last record closes the log with a fatal error") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::provider p(io.get_executor(), test_config(server));
    auto log = co_await create(p, "dropped");
    co_await append(*log.writer, chunk(0));
    log.writer.reset();
    auto all = co_await drain(*log.reader);
    REQUIRE(all.size() == 2);
    CHECK(all[1].find("stream_fatal_error") != std::string::npos);
    CHECK(all[1].find("Run ended without a terminal event") != std::string::npos);
  });
}

TEST_CASE("redis provider: a cancelled read moves past nothing, a read ends idle at its deadline") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::provider p(io.get_executor(), test_config(server));
    auto log = co_await create(p, "waits");
    std::vector<river::record_view> batch;
    auto st = (co_await log.reader->read(batch, 10, clock_type::now() + 50ms)).value();
    CHECK(st == read_status::idle);
    asio::cancellation_signal cancel;
    bool done = false;
    river::error_code ec;
    asio::co_spawn(io, log.reader->read(batch, 10, forever),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr, river::result<read_status> r) {
                     done = true;
                     if (!r) ec = r.error().code;
                   }));
    co_await sleep_for(20ms);
    cancel.emit(asio::cancellation_type::terminal);
    while (!done) co_await sleep_for(1ms);
    CHECK(ec == asio::error::operation_aborted);
    auto pos = co_await append(*log.writer, chunk(1), true);
    auto rest = co_await drain(*log.reader);
    CHECK(rest == std::vector<std::string>{pos + "=" + chunk(1)});
  });
}
