#include <river/event_reader.hpp>

#include "support/bounded.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <deque>

using namespace river::test;
using river::event_kind;
using json = nlohmann::json;

namespace event_reader_test {

// A log reader over a fixed list of records that counts its reads; `hold` keeps the next read
// waiting until `release` (or cancellation).
class scripted_log final : public river::log_reader {
 public:
  struct state {
    std::deque<std::pair<std::string, std::string>> pending;
    std::vector<std::pair<std::string, std::string>> served;
    int reads = 0;
    bool hold = false;
    std::unique_ptr<asio::steady_timer> gate;
  };
  explicit scripted_log(std::shared_ptr<state> s) : s_(std::move(s)) {}

  asio::awaitable<river::result<river::read_status>> read(std::vector<river::record_view>& out, std::size_t max,
                                                          std::chrono::steady_clock::time_point) override {
    ++s_->reads;
    if (s_->hold) {
      s_->gate = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor, std::chrono::hours(1));
      (void)co_await s_->gate->async_wait(asio::as_tuple(asio::use_awaitable));
      if (s_->hold) co_return river::error::from_code(asio::error::operation_aborted, "cancelled");
    }
    if (s_->pending.empty()) co_return river::read_status::end;
    s_->served.clear();
    while (!s_->pending.empty() && s_->served.size() < max) {
      s_->served.push_back(std::move(s_->pending.front()));
      s_->pending.pop_front();
    }
    for (auto& [pos, data] : s_->served) out.push_back({pos, data, {}});
    co_return river::read_status::records;
  }

 private:
  std::shared_ptr<state> s_;
};

std::shared_ptr<scripted_log::state> script(std::initializer_list<const char*> records) {
  auto s = std::make_shared<scripted_log::state>();
  int pos = 0;
  for (auto r : records) s->pending.emplace_back(std::to_string(++pos), r);
  return s;
}

constexpr const char* start_json = R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_start","streamRunId":"r"}})";
constexpr const char* end_json =
    R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_end","totalChunks":1,"totalTimeMs":0}})";

template <class Chunk = json>
river::basic_event_reader<Chunk> reader_over(asio::io_context& io, std::shared_ptr<scripted_log::state> s) {
  return river::basic_event_reader<Chunk>(
      river::event_reader(io.get_executor(), std::make_unique<scripted_log>(std::move(s)), "r", "tok"));
}

struct text_chunk {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(text_chunk, text)

}  // namespace event_reader_test

using namespace event_reader_test;

TEST_CASE("an event reader is lazy: nothing is read before the first next") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto s = script({start_json, end_json});
    auto reader = reader_over(io, s);
    CHECK(s->reads == 0);
    CHECK(reader.run_id() == "r");
    CHECK(reader.resumption_token() == "tok");
    auto ev = co_await reader.next();
    CHECK(s->reads == 1);
    CHECK(ev->kind() == event_kind::start);
    CHECK(ev->position == "1");
    CHECK(reader.position() == "1");
  });
}

TEST_CASE("an event reader is empty after the terminal event, even if more was stored") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto s = script({start_json, end_json, R"({"type":"chunk","chunk":1})"});
    auto reader = reader_over(io, s);
    auto awaited1 = co_await reader.next();
    CHECK(awaited1->kind() == event_kind::start);
    auto awaited2 = co_await reader.next();
    CHECK(awaited2->kind() == event_kind::end);
    auto awaited3 = co_await reader.next();
    CHECK_FALSE(awaited3.has_value());
    auto awaited4 = co_await reader.next();
    CHECK_FALSE(awaited4.has_value());
  });
}

TEST_CASE("an event reader ends when its log ends") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto reader = reader_over(io, script({start_json}));
    auto awaited5 = co_await reader.next();
    CHECK(awaited5.has_value());
    auto awaited6 = co_await reader.next();
    CHECK_FALSE(awaited6.has_value());
  });
}

TEST_CASE("a malformed record is an error, and reading goes on after it") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto reader = reader_over(io, script({start_json, "garbage", end_json}));
    auto awaited7 = co_await reader.next();
    CHECK(awaited7->kind() == event_kind::start);
    auto bad = co_await reader.try_next();
    REQUIRE(bad.has_error());
    CHECK(bad.error().code == river::errc::malformed_event);
    auto awaited8 = co_await reader.next();
    CHECK(awaited8->kind() == event_kind::end);
  });
}

TEST_CASE("a chunk that does not fit the chunk type arrives as a stream_error at its position") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto reader = reader_over<text_chunk>(
        io, script({start_json, R"({"type":"chunk","chunk":{"text":"ok"}})", R"({"type":"chunk","chunk":[1]})", end_json}));
    (void)co_await reader.next();
    auto ok = co_await reader.next();
    CHECK(ok->chunk()->text == "ok");
    auto bad = co_await reader.next();
    REQUIRE(bad->kind() == event_kind::error);
    CHECK(bad->position == "3");
    CHECK(bad->get_if<river::events::error>()->value.message.find("chunk does not match") != std::string::npos);
    auto awaited9 = co_await reader.next();
    CHECK(awaited9->kind() == event_kind::end);
  });
}

TEST_CASE("a second pending next is refused with operation_in_progress") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto s = script({start_json, end_json});
    s->hold = true;
    auto reader = reader_over(io, s);
    river::error_code first_ec;
    bool first_done = false;
    reader.async_next([&](river::error_code ec, std::optional<river::event>) {
      first_ec = ec;
      first_done = true;
    });
    co_await sleep_for(5ms);
    auto second = co_await reader.try_next();
    REQUIRE(second.has_error());
    CHECK(second.error().code == river::errc::operation_in_progress);
    s->hold = false;
    s->gate->cancel();
    while (!first_done) co_await sleep_for(1ms);
    CHECK_FALSE(first_ec);
  });
}

TEST_CASE("a cancelled async_next loses no event") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto s = script({start_json, end_json});
    s->hold = true;
    auto reader = reader_over(io, s);
    asio::cancellation_signal cancel;
    river::error_code ec;
    bool done = false;
    reader.async_next(asio::bind_cancellation_slot(cancel.slot(), [&](river::error_code e, std::optional<river::event>) {
      ec = e;
      done = true;
    }));
    co_await sleep_for(5ms);
    cancel.emit(asio::cancellation_type::terminal);
    while (!done) co_await sleep_for(1ms);
    CHECK(ec == asio::error::operation_aborted);
    s->hold = false;
    auto ev = co_await reader.next();
    CHECK(ev->kind() == event_kind::start);
  });
}

TEST_CASE("a closed reader refuses to read") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto reader = reader_over(io, script({start_json}));
    auto log = reader.release();
    CHECK(log != nullptr);
    CHECK_FALSE(reader.is_open());
    auto r = co_await reader.try_next();
    CHECK(r.error().code == river::errc::not_open);
  });
}
