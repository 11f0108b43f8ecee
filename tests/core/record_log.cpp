#include <river/detail/record_log.hpp>

#include "support/bounded.hpp"

#include <string>
#include <vector>

using river::detail::record_log;
using river::record_view;
using namespace river::test;

TEST_CASE("a record's frame is its data message and its id-only message, with views into it") {
  std::string out;
  river::detail::append_frame(out, "7", R"({"type":"chunk","chunk":"hi"})");
  CHECK(out == "data: {\"type\":\"chunk\",\"chunk\":\"hi\"}\n\nid: 7\n\n");
  std::vector<char> raw(river::detail::frame_size(3, 2));
  auto v = river::detail::write_frame(raw.data(), "12", "abc");
  CHECK(v.frame == "data: abc\n\nid: 12\n\n");
  CHECK(v.data == "abc");
  CHECK(v.position == "12");
  CHECK(v.data.data() == raw.data() + 6);
}

TEST_CASE("line breaks in a record's data become spaces in its frame, at any offset") {
  for (std::size_t at = 0; at < 40; ++at) {
    std::string data(40, 'x');
    data[at] = at % 2 ? '\n' : '\r';
    std::string out;
    river::detail::append_frame(out, "1", data);
    std::string expected = data;
    expected[at] = ' ';
    CHECK(out == "data: " + expected + "\n\nid: 1\n\n");
  }
}

TEST_CASE("a record log keeps records in pages that never move, adjacent in memory") {
  record_log log;
  std::lock_guard lk(log.mutex);
  std::vector<record_view> first;
  log.append_locked("1", "one");
  log.read_locked(0, 1, first);
  const auto* kept = first[0].frame.data();
  // Enough records to fill many pages, some larger than a page.
  for (int i = 2; i <= 3000; ++i) {
    const auto data = i % 500 == 0 ? std::string(300 * 1024, 'b') : "record " + std::to_string(i);
    log.append_locked(std::to_string(i), data);
  }
  REQUIRE(log.size_locked() == 3000);
  std::vector<record_view> all;
  log.read_locked(0, 3000, all);
  CHECK(all[0].frame.data() == kept);  // the first record did not move
  std::size_t adjacent = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].position == std::to_string(i + 1));
    if (i > 0 && all[i - 1].frame.data() + all[i - 1].frame.size() == all[i].frame.data()) ++adjacent;
    CHECK(all[i].frame == "data: " + std::string(all[i].data) + "\n\nid: " + std::string(all[i].position) + "\n\n");
  }
  // Records follow each other within a page; only page boundaries break the run.
  CHECK(adjacent > 2900);
  // The storage costs about the frames' bytes: pages grow geometrically, up to a cap.
  CHECK(log.bytes_locked() < log.frame_bytes_locked() * 2);
}

TEST_CASE("a record log wakes its sleepers once per sleep") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    record_log log;
    river::detail::log_sleeper a(io.get_executor()), b(io.get_executor());
    {
      std::lock_guard lk(log.mutex);
      log.sleep_locked(a);
      log.sleep_locked(a);  // once only
      log.sleep_locked(b);
      log.forget_locked(b);
      log.append_locked("1", "x");
    }
    CHECK_FALSE(a.queued);
    const auto before = std::chrono::steady_clock::now();
    auto [ec] = co_await a.wake.wait(before + std::chrono::seconds(5));
    CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(1));  // woken, not timed out
    CHECK_FALSE(river::detail::wakeup::cancelled(ec, co_await asio::this_coro::cancellation_state));
  });
}

TEST_CASE("a record log shows staged records once published, and drops them when they are never stored") {
  record_log log;
  std::lock_guard lk(log.mutex);
  log.append_locked("1", "one");
  const auto bytes_with_one = log.bytes_locked();
  const auto two = log.stage_locked("2", "two");
  log.stage_locked("3", "three");
  CHECK(two.data == "two");
  CHECK(two.frame == "data: two\n\nid: 2\n\n");
  CHECK(log.staged_locked() == 2);
  CHECK(log.end_locked() == 1);  // readers see only what is published

  log.publish_locked(1);
  REQUIRE(log.end_locked() == 2);
  CHECK(log.view_locked(1).frame == "data: two\n\nid: 2\n\n");
  CHECK(log.view_locked(1).data.data() == two.data.data());  // the staged frame, not a copy

  // "3" is never stored; one more staged record spills into a page of its own, and goes too.
  log.stage_locked("4", std::string(8 * 1024, 'x'));
  CHECK(log.bytes_locked() > bytes_with_one + 8 * 1024);
  log.unstage_locked();
  CHECK(log.staged_locked() == 0);
  CHECK(log.end_locked() == 2);
  CHECK(log.frame_bytes_locked() == log.view_locked(0).frame.size() + log.view_locked(1).frame.size());
  // The next record takes the place "3" had, right after "2".
  log.append_locked("5", "five");
  REQUIRE(log.end_locked() == 3);
  CHECK(log.view_locked(2).frame == "data: five\n\nid: 5\n\n");
  CHECK(log.view_locked(2).frame.data() == log.view_locked(1).frame.data() + log.view_locked(1).frame.size());
}

TEST_CASE("a record log's trim keeps the pages of staged records") {
  record_log log;
  std::lock_guard lk(log.mutex);
  int position = 0;
  for (; position < 2000; ++position) log.append_locked(std::to_string(position), "record " + std::to_string(position));
  // Staged records fill a few more pages; a trim that keeps one published record keeps them all.
  std::vector<std::string_view> staged;
  for (int i = 0; i < 2000; ++i, ++position)
    staged.push_back(log.stage_locked(std::to_string(position), "staged " + std::to_string(position)).data);
  log.trim_locked(1);
  CHECK(log.begin_locked() > 0);
  CHECK(log.end_locked() == 2000);
  CHECK(log.begin_locked() < log.end_locked());  // a published record stays
  log.publish_locked(2000);
  REQUIRE(log.end_locked() == 4000);
  for (std::size_t i = log.begin_locked(); i < log.end_locked(); ++i)
    CHECK(log.view_locked(i).position == std::to_string(i));
  for (std::size_t i = 0; i < staged.size(); ++i) CHECK(staged[i] == "staged " + std::to_string(2000 + i));
}

TEST_CASE("a record log's pages stop growing at its maximum") {
  // Counts where adjacent records are not next to each other in memory: page boundaries.
  auto pages_for = [](record_log& log) {
    std::lock_guard lk(log.mutex);
    for (int i = 0; i < 2000; ++i) log.append_locked(std::to_string(i), std::string(100, 'x'));
    std::vector<record_view> all;
    log.read_locked(0, 2000, all);
    std::size_t breaks = 0;
    for (std::size_t i = 1; i < all.size(); ++i)
      breaks += all[i - 1].frame.data() + all[i - 1].frame.size() != all[i].frame.data();
    return breaks + 1;
  };
  record_log capped(8 * 1024), grown;
  // About 240 KiB of frames: 4, 8, then 8 KiB pages; 4 to 128 KiB pages and a 256 KiB one uncapped.
  CHECK(pages_for(capped) >= 29);
  CHECK(pages_for(grown) <= 7);
}
