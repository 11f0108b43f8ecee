// The event-stream bytes River writes, and how the two kinds of clients read them.

#include <river/http/detail/sse_writer.hpp>
#include <river/detail/record_frame.hpp>

#include "http/server_fixture.hpp"

using namespace river::test;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace sse = river::http::detail;

namespace {

// The TypeScript client's loop, fed the body in two pieces split at `cut`: its buffer keeps the
// unfinished message between reads.
std::vector<json> parse_incrementally(const std::string& body, std::size_t cut) {
  std::string buffer;
  std::vector<json> out;
  for (auto piece : {body.substr(0, cut), body.substr(cut)}) {
    buffer += piece;
    const auto last = buffer.rfind("\n\n");
    if (last == std::string::npos) continue;
    auto complete = buffer.substr(0, last + 2);
    buffer.erase(0, last + 2);
    for (auto& e : parse_like_river_client(complete)) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

TEST_CASE("an event is a data message, then an id-only message", "[http][sse]") {
  std::string out;
  river::detail::append_frame(out, "7", R"({"type":"chunk","chunk":"hi"})");
  CHECK(out == "data: {\"type\":\"chunk\",\"chunk\":\"hi\"}\n\nid: 7\n\n");
  const auto first = out.size();
  river::detail::append_frame(out, "1732450000000-3", R"({"type":"aborted"})");
  CHECK(out.substr(first) == "data: {\"type\":\"aborted\"}\n\nid: 1732450000000-3\n\n");
  CHECK(sse::sse_keep_alive == ": keep-alive\n\n");
}

TEST_CASE("line breaks in stored JSON become spaces, which keeps the JSON and the message whole", "[http][sse]") {
  std::string out;
  river::detail::append_frame(out, "2", "{\n  \"type\": \"chunk\",\r\n  \"chunk\": 1\n}");
  CHECK(out == "data: {   \"type\": \"chunk\",    \"chunk\": 1 }\n\nid: 2\n\n");
  auto ts = parse_like_river_client(out);
  REQUIRE(ts.size() == 1);
  CHECK(ts[0] == json{{"type", "chunk"}, {"chunk", 1}});
}

TEST_CASE("chunk size lines are lowercase hex", "[http][sse]") {
  for (auto [n, text] : std::vector<std::pair<std::size_t, std::string>>{
           {0, "0\r\n"}, {9, "9\r\n"}, {10, "a\r\n"}, {255, "ff\r\n"}, {4096, "1000\r\n"}, {0xabcdef, "abcdef\r\n"}}) {
    std::string out;
    sse::append_chunk_size(out, n);
    CHECK(out == text);
  }
}

TEST_CASE("the River client and EventSource read the same events from the server's streams", "[http][sse][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.endpoint.heartbeat_interval = 30ms;  // heartbeats among the events, too
    test_server s(io, o);
    std::vector<std::string> bodies;
    json none = json::object();
    json chat = {{"message", "h\u00e9llo \"quoted\" line\\nbreak \u2603"}};
    json ticks = {{"count", 4}, {"delay_ms", 70}};
    const std::vector<std::pair<std::string, json>> runs = {{"warn", none}, {"fail", none}, {"chat", chat}, {"tick", ticks}};
    for (const auto& [stream, input] : runs) {
      auto r = co_await exchange(s.ep, post_request("/api/river", start_body(stream, input)));
      REQUIRE(r.status == 200);
      bodies.push_back(r.body);
    }
    for (const auto& body : bodies) {
      INFO(body);
      auto ts = parse_like_river_client(body);
      auto es = parse_like_event_source(body);
      REQUIRE(ts.size() == es.events.size());
      REQUIRE(ts.size() >= 3);
      for (std::size_t i = 0; i < ts.size(); ++i) {
        CHECK(json::parse(es.events[i].data) == ts[i]);
        // After each event, EventSource holds its position: 1, 2, 3, ... (memory provider).
        CHECK(es.ids_after_each[i] == std::to_string(i + 1));
        // The event itself carries the position before it: the id follows the data.
        CHECK(es.events[i].last_event_id == (i == 0 ? "" : std::to_string(i)));
      }
      CHECK(es.last_event_id == std::to_string(ts.size()));
      // Resuming after EventSource's last event id gives nothing more; after each position,
      // exactly the rest.
      for (std::size_t cut = 0; cut < body.size(); cut += 7) CHECK(parse_incrementally(body, cut) == ts);
    }
    CHECK(parse_like_event_source(bodies[3]).comments >= 1);
    // Non-ASCII text arrives as UTF-8, escaped as JSON.stringify escapes.
    auto chat_events = parse_like_river_client(bodies[2]);
    CHECK(chat_events[1]["chunk"]["text"] == "h\u00e9llo");
    CHECK(chat_events[4]["chunk"]["text"] == "\u2603");
    co_await s.stop();
  });
}
