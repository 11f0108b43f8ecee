// Two chat_server processes on one Redis, as two instances of a service behind a load balancer:
// a run started on one is followed, resumed and cancelled through the other, and when the one
// running it is killed, readers on the other get "producer lost". Everything over real HTTP,
// checked byte for byte where the two instances must agree.

#include "chat_instance.hpp"
#include "fake_model.hpp"
#include "support/bounded.hpp"
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include "support/sse_parsers.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace river::test;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::string_view endpoint = "/api/river";

std::string start_request(const std::string& message) {
  json body = {{"routerStreamKey", "chat"}, {"input", {{"message", message}}}};
  return post_request(endpoint, body.dump(), "application/json");
}

// Opens an event stream: sends `request`, reads the head, expects 200.
asio::awaitable<void> open_stream(http_connection& c, tcp::endpoint ep, std::string request) {
  auto opened = co_await c.open(ep, std::move(request));
  REQUIRE_FALSE(opened);
  REQUIRE(c.status() == 200u);
  REQUIRE(c.header("Content-Type") == "text/event-stream");
}

// The body up to the end of its last id-only message: the events whose positions arrived.
std::string through_last_position(const std::string& body) {
  const auto id = body.rfind("\nid: ");
  REQUIRE(id != std::string::npos);
  const auto end = body.find("\n\n", id + 1);
  REQUIRE(end != std::string::npos);
  return body.substr(0, end + 2);
}

// The resumption token of the start event that begins `body`.
std::string token_in(const std::string& body) {
  auto events = parse_like_river_client(body);
  REQUIRE_FALSE(events.empty());
  return events.front().at("special").at("encodedResumptionToken");
}

std::string answer_of(const std::vector<json>& events) {
  std::string text;
  for (const auto& e : events)
    if (e.at("type") == "chunk") text += e.at("chunk").at("text").get<std::string>();
  return text;
}

std::string whole_answer(const std::string& message) {
  std::string text;
  for (const auto& t : chat_demo::fake_answer(message)) text += t;
  return text;
}

std::string last_kind(const std::vector<json>& events) {
  REQUIRE_FALSE(events.empty());
  const auto& e = events.back();
  if (e.at("type") == "special") return e.at("special").at("RIVER_SPECIAL_TYPE_KEY");
  return e.at("type");
}

// Reads the rest of the stream, within `limit`; fails the test if it does not end.
asio::awaitable<void> read_to_end_within(http_connection& c, std::chrono::milliseconds limit) {
  const auto until = clock_type::now() + limit;
  for (;;) {
    const bool more = co_await c.read_some();
    if (!more) break;
    REQUIRE(clock_type::now() < until);
  }
  REQUIRE(c.done());
}

// A run started on `first` resumed on `second` mid-answer, byte for byte; another cancelled
// through `second`.
void resume_and_cancel_across(chat_instance& first, chat_instance& second) {
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        // Start on the first; after three chunks, resume on the second from the last position.
        const std::string message = "tell me about rivers";
        http_connection on_first(io.get_executor());
        co_await open_stream(on_first, first.ep, start_request(message));
        co_await on_first.read_events(4);
        const auto seen = through_last_position(on_first.body());
        const auto position = parse_like_event_source(seen).last_event_id;
        const auto token = token_in(seen);
        REQUIRE_FALSE(position.empty());

        http_connection on_second(io.get_executor());
        std::string resume = get_request(endpoint, token, std::nullopt, "Last-Event-ID: " + position + "\r\n");
        co_await open_stream(on_second, second.ep, resume);
        // Mid-answer: the run has not ended when the second instance starts serving it.
        co_await on_second.read_events(1);
        auto live = parse_like_river_client(on_second.body());
        REQUIRE_FALSE(live.empty());
        CHECK(live.front().at("type") == "chunk");

        co_await read_to_end_within(on_second, 30s);
        co_await read_to_end_within(on_first, 30s);
        // Both instances sent the same bytes after that position, and together the whole answer.
        const auto& from_first = on_first.body();
        REQUIRE(from_first.rfind(seen, 0) == 0);
        CHECK(from_first.substr(seen.size()) == on_second.body());
        auto before = parse_like_river_client(seen);
        auto after = parse_like_river_client(on_second.body());
        CHECK(answer_of(before) + answer_of(after) == whole_answer(message));
        CHECK(last_kind(after) == "stream_end");
        CHECK(after.back().at("special").at("totalChunks") == chat_demo::fake_answer(message).size());
        // An EventSource reading both sees the same events, its positions growing.
        auto es = parse_like_event_source(from_first);
        CHECK(es.events.size() == before.size() + after.size());

        // Cancel through the second instance a run that the first one runs; readers on both
        // end with `aborted`.
        http_connection runner(io.get_executor());
        co_await open_stream(runner, first.ep, start_request("a question to cancel"));
        co_await runner.read_events(3);
        const auto token2 = token_in(runner.body());
        const std::string run_id = parse_like_river_client(runner.body()).front().at("special").at("streamRunId");
        http_connection watcher(io.get_executor());
        co_await open_stream(watcher, second.ep, get_request(endpoint, token2));
        co_await watcher.read_events(2);

        const auto t0 = clock_type::now();
        auto cancelled = co_await exchange(second.ep, delete_request(endpoint, token2));
        CHECK(cancelled.status == 202u);
        CHECK(cancelled.body == "{\"streamRunId\":\"" + run_id + "\",\"cancelRequested\":true}");
        co_await read_to_end_within(runner, 10s);
        const auto took = clock_type::now() - t0;
        co_await read_to_end_within(watcher, 10s);
        auto ran = parse_like_river_client(runner.body());
        auto watched = parse_like_river_client(watcher.body());
        CHECK(last_kind(ran) == "aborted");
        CHECK(last_kind(watched) == "aborted");
        CHECK(ran == watched);
        // The bound of the provider is 200 ms; allow for a loaded machine and a sanitized build.
        CHECK(took < 1s);

        // The run is over: a second cancel, on either instance, is refused.
        auto again = co_await exchange(first.ep, delete_request(endpoint, token2));
        CHECK(again.status == 409u);
      },
      60s);

  CHECK(second.process.stop(SIGTERM, 15s) == 0);
  CHECK(first.process.stop(SIGTERM, 15s) == 0);
}

}  // namespace

TEST_CASE("chat_server instances on one Redis: resume on the second mid-answer, cancel through the second",
          "[redis][demo]") {
  if (!redis_or_skip()) return;
  redis_server redis;
  chat_instance first(redis, 30);
  chat_instance second(redis, 30);
  resume_and_cancel_across(first, second);
}

TEST_CASE("chat_server instances on a Redis Cluster: resume on the second mid-answer, cancel through the second",
          "[redis][demo]") {
  if (!redis_cluster_or_skip()) return;
  redis_cluster cluster;
  // Each instance knows the cluster by a different seed node.
  const auto seed = [&](std::size_t i) { return "127.0.0.1:" + std::to_string(cluster.node(i).port()); };
  chat_instance first("redis+cluster://" + seed(0), "Redis Cluster at " + seed(0), 30);
  chat_instance second("redis+cluster://" + seed(2), "Redis Cluster at " + seed(2), 30);
  resume_and_cancel_across(first, second);
}

TEST_CASE("chat_server instances on one Redis: killing the one running a run gives readers on the other "
          "'producer lost'",
          "[redis][demo]") {
  if (!redis_or_skip()) return;
  redis_server redis;
  chat_instance first(redis, 50);
  chat_instance second(redis, 50);

  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        const std::string message = "an answer that never ends";
        http_connection on_first(io.get_executor());
        co_await open_stream(on_first, first.ep, start_request(message));
        co_await on_first.read_events(3);
        const auto token = token_in(on_first.body());

        http_connection on_second(io.get_executor());
        co_await open_stream(on_second, second.ep, get_request(endpoint, token));
        co_await on_second.read_events(3);

        // The process running the run dies without a word.
        first.process.kill(SIGKILL);
        const auto t0 = clock_type::now();
        co_await read_to_end_within(on_second, 15s);
        const auto took = clock_type::now() - t0;
        auto events = parse_like_river_client(on_second.body());
        REQUIRE(last_kind(events) == "stream_fatal_error");
        const auto error = events.back().at("special").at("error");
        CHECK(error.at("message").get<std::string>().find("producer lost") != std::string::npos);
        CHECK(answer_of(events).size() < whole_answer(message).size());
        // Within the configured bound (1 s), with room for a loaded machine.
        CHECK(took < 3s);

        // The log was terminated: a late reader replays it to the same fatal error.
        auto late = co_await exchange(second.ep, get_request(endpoint, token));
        CHECK(late.status == 200u);
        CHECK(late.body == on_second.body());
      },
      60s);

  CHECK(second.process.stop(SIGTERM, 15s) == 0);
}
