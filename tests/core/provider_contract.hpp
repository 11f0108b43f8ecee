#pragma once

// The behaviour every provider must show (river/provider.hpp), as tests any provider can run.
//
// A provider's tests define a fixture and instantiate the contract with it:
//
//   struct my_fixture {
//     // A provider on `ex`; called once per instance a test needs (two for "another instance").
//     std::shared_ptr<river::provider> make(const river::executor& ex);
//   };
//   RIVER_PROVIDER_CONTRACT(my_fixture, "my provider")
//
// The fixture lives for one test case; a test asks it for one or two providers, which behave as
// instances of one service (they share storage). Records are event JSON, as River stores them.

#include <river/provider.hpp>

#include "support/bounded.hpp"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace river::test::contract {

using clock_type = std::chrono::steady_clock;
inline constexpr auto forever = clock_type::time_point::max();

inline std::string record(int i) { return R"({"type":"chunk","chunk":)" + std::to_string(i) + "}"; }

inline asio::awaitable<river::new_log> create(river::provider& p, std::string id, std::function<void()> hook = nullptr) {
  auto r = co_await p.create_log(std::move(id), std::move(hook));
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
  co_return std::move(*r);
}

inline asio::awaitable<std::string> append(river::log_writer& w, std::string data, bool last = false) {
  auto r = co_await w.append(data, last);
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
  co_return *r;
}

inline asio::awaitable<std::unique_ptr<river::log_reader>> open(river::provider& p, std::string id, read_from from = {}) {
  auto r = co_await p.open_log(std::string(p.storage_id()), std::move(id), std::move(from));
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
  co_return std::move(*r);
}

/// Every record until the log ends, as "position=data"; a frame, when kept, must be the record's.
inline asio::awaitable<std::vector<std::string>> drain(river::log_reader& r, std::size_t max = 3) {
  std::vector<std::string> out;
  std::vector<river::record_view> batch;
  for (;;) {
    batch.clear();
    auto st = co_await r.read(batch, max, forever);
    INFO((st ? std::string() : st.error().message));
    REQUIRE(st.has_value());
    for (auto& rec : batch) {
      if (!rec.frame.empty())
        CHECK(rec.frame == "data: " + std::string(rec.data) + "\n\nid: " + std::string(rec.position) + "\n\n");
      out.push_back(std::string(rec.position) + "=" + std::string(rec.data));
    }
    if (*st == river::read_status::end) co_return out;
  }
}

/// Positions increase; a reader from the start, after any position, from `0`, or at the tail
/// (the last N) gets the records that follow; malformed positions are refused.
template <class Fixture>
void positions_and_resume() {
  Fixture f;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto p = f.make(io.get_executor());
    CHECK(p->resumable());
    auto log = co_await create(*p, "run");
    std::vector<std::string> expected;
    for (int i = 0; i < 6; ++i) {
      auto pos = co_await append(*log.writer, record(i), i == 5);
      expected.push_back(pos + "=" + record(i));
    }
    auto all = co_await drain(*log.reader);
    CHECK(all == expected);
    for (std::size_t k = 0; k <= expected.size(); ++k) {
      read_from from;
      if (k > 0) from = read_from(expected[k - 1].substr(0, expected[k - 1].find('=')));
      auto r = co_await open(*p, "run", from);
      auto got = co_await drain(*r);
      CHECK(got == std::vector(expected.begin() + static_cast<std::ptrdiff_t>(k), expected.end()));
    }
    auto from_zero = co_await open(*p, "run", "0");
    auto all_from_zero = co_await drain(*from_zero);
    CHECK(all_from_zero == expected);
    for (std::size_t n : {std::size_t{0}, std::size_t{2}, std::size_t{100}}) {
      auto tail = co_await open(*p, "run", read_from::last(n));
      auto got = co_await drain(*tail);
      const auto keep = std::min(n, expected.size());
      CHECK(got == std::vector(expected.end() - static_cast<std::ptrdiff_t>(keep), expected.end()));
    }
    const auto first = expected[0].substr(0, expected[0].find('='));
    for (const std::string& bad : {std::string("x"), std::string(""), "0" + first, first + "x", std::string("-1")}) {
      auto r = co_await p->open_log(std::string(p->storage_id()), "run", bad);
      INFO("position '" << bad << "'");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code == errc::invalid_position);
    }
  });
}

/// Unknown runs and storage ids are not found; a cancel reaches a running run's hook, and a
/// finished run refuses it.
template <class Fixture>
void not_found_and_cancel() {
  Fixture f;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto p = f.make(io.get_executor());
    auto nope = co_await p->open_log(std::string(p->storage_id()), "nope", read_from{});
    CHECK(nope.error().code == errc::run_not_found);
    auto other = co_await p->open_log("another-storage", "nope", read_from{});
    CHECK(other.error().code == errc::run_not_found);
    auto c = co_await p->request_cancel(std::string(p->storage_id()), "nope");
    CHECK(c.error().code == errc::run_not_found);
    std::atomic<int> cancels{0};
    auto log = co_await create(*p, "running", [&] { ++cancels; });
    (void)co_await append(*log.writer, record(0));
    auto asked = co_await p->request_cancel(std::string(p->storage_id()), "running");
    CHECK(asked.has_value());
    for (int i = 0; i < 200 && cancels == 0; ++i) co_await sleep_for(std::chrono::milliseconds(5));
    CHECK(cancels >= 1);
    (void)co_await append(*log.writer, record(1), true);
    auto late = co_await p->request_cancel(std::string(p->storage_id()), "running");
    CHECK(late.error().code == errc::run_already_finished);
  });
}

/// After the last record appends are refused and nothing is stored; a writer that goes away
/// without a last record closes the log with a fatal error, so readers end.
template <class Fixture>
void closing() {
  Fixture f;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto p = f.make(io.get_executor());
    auto log = co_await create(*p, "closed");
    (void)co_await append(*log.writer, record(0), true);
    auto late = co_await log.writer->append(record(1), false);
    CHECK(late.error().code == errc::run_closed);
    auto stored = co_await drain(*log.reader);
    CHECK(stored.size() == 1);

    auto dropped = co_await create(*p, "dropped");
    (void)co_await append(*dropped.writer, record(0));
    dropped.writer.reset();
    auto rest = co_await drain(*dropped.reader);
    REQUIRE(rest.size() == 2);
    CHECK(rest[1].find("stream_fatal_error") != std::string::npos);
  });
}

/// A read waits for records and returns them; it ends idle at its deadline; a cancelled read
/// moves past nothing; `poll` takes what is ready without waiting; `finished` tells that the
/// last record of a closed log was read.
template <class Fixture>
void waiting_reads() {
  Fixture f;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto p = f.make(io.get_executor());
    auto log = co_await create(*p, "waits");
    (void)co_await append(*log.writer, record(0));
    std::vector<river::record_view> batch;
    auto first = co_await log.reader->read(batch, 10, forever);
    CHECK(first.value() == river::read_status::records);
    batch.clear();
    CHECK(log.reader->poll(batch, 10) == river::read_status::idle);
    const auto t0 = clock_type::now();
    auto idle = co_await log.reader->read(batch, 10, t0 + std::chrono::milliseconds(100));
    CHECK(idle.value() == river::read_status::idle);
    CHECK(clock_type::now() - t0 >= std::chrono::milliseconds(90));
    // A record appended while a read waits ends the wait.
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await sleep_for(std::chrono::milliseconds(30));
      (void)co_await append(*log.writer, record(1));
    }, asio::detached);
    batch.clear();
    auto woken = co_await log.reader->read(batch, 10, forever);
    CHECK(woken.value() == river::read_status::records);
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].data == record(1));
    CHECK_FALSE(log.reader->finished());  // the log is open
    // Ready records come without waiting.
    (void)co_await append(*log.writer, record(2), true);
    std::vector<river::record_view> polled;
    for (int i = 0; i < 200 && polled.empty(); ++i) {
      if (log.reader->poll(polled, 10) == river::read_status::records) break;
      co_await sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE_FALSE(polled.empty());
    CHECK(polled[0].data == record(2));
    // The last record read, of a closed log: the reader knows the next read is the end.
    CHECK(log.reader->finished());
    polled.clear();
    CHECK(log.reader->poll(polled, 10) == river::read_status::end);
  });
}

/// Two instances of the service: a run written through one is read through the other, live and
/// after its end, the same records at the same positions.
template <class Fixture>
void another_instance() {
  Fixture f;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto a = f.make(io.get_executor());
    auto b = f.make(io.get_executor());
    auto log = co_await create(*a, "shared");
    (void)co_await append(*log.writer, record(0));
    auto live = co_await open(*b, "shared");
    std::vector<std::string> got;
    bool done = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { got = co_await drain(*live); done = true; }, asio::detached);
    for (int i = 1; i < 20; ++i) (void)co_await append(*log.writer, record(i), i == 19);
    auto own = co_await drain(*log.reader);
    while (!done) co_await sleep_for(std::chrono::milliseconds(2));
    CHECK(got == own);
    CHECK(live->finished());
    auto later = co_await open(*b, "shared");
    auto replayed = co_await drain(*later);
    CHECK(replayed == own);
  });
}

}  // namespace river::test::contract

/// Instantiates every behaviour of the contract for `Fixture`, as test cases named after `label`.
#define RIVER_PROVIDER_CONTRACT(Fixture, label)                                                             \
  TEST_CASE(label " contract: positions increase; readers resume after any of them, from 0, at the tail",  \
            "[contract]") {                                                                                 \
    river::test::contract::positions_and_resume<Fixture>();                                                 \
  }                                                                                                         \
  TEST_CASE(label " contract: unknown runs are not found; cancels reach running runs only", "[contract]") { \
    river::test::contract::not_found_and_cancel<Fixture>();                                                 \
  }                                                                                                         \
  TEST_CASE(label " contract: a closed log refuses appends; a writer gone closes it", "[contract]") {       \
    river::test::contract::closing<Fixture>();                                                              \
  }                                                                                                         \
  TEST_CASE(label " contract: reads wait, end idle at their deadline, poll without waiting", "[contract]") { \
    river::test::contract::waiting_reads<Fixture>();                                                        \
  }                                                                                                         \
  TEST_CASE(label " contract: another instance reads the same records, live and after the end", "[contract]") { \
    river::test::contract::another_instance<Fixture>();                                                     \
  }
