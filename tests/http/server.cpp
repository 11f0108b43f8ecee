#include <river/http/server.hpp>

#include "http/server_fixture.hpp"

using namespace river::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

asio::awaitable<http_reply> start_run(tcp::endpoint ep, std::string_view stream, const json& input) {
  auto body = start_body(stream, input);
  auto reply = co_await exchange(ep, post_request("/api/river", body));
  co_return reply;
}

std::vector<std::string> kinds_of(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e.value("type", "") == "special")
      out.push_back(e["special"].value("RIVER_SPECIAL_TYPE_KEY", "?"));
    else
      out.push_back(e.value("type", "?"));
  }
  return out;
}

}  // namespace

TEST_CASE("POST starts a run and streams its events, byte for byte as stored", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    http_connection c(io.get_executor());
    json input = {{"message", "a b c"}};
    auto body = start_body("chat", input);
    {
      auto ec_ = co_await c.open(s.ep, post_request("/api/river", body));
      REQUIRE_FALSE(ec_);
    }
    CHECK(c.status() == 200);
    CHECK(c.header("Content-Type") == "text/event-stream");
    CHECK(c.header("Cache-Control") == "no-cache");
    CHECK(c.header("Transfer-Encoding") == "chunked");
    co_await c.read_to_end();
    REQUIRE(c.done());
    const auto events = parse_like_river_client(c.body());
    REQUIRE(kinds_of(events) == std::vector<std::string>{"stream_start", "chunk", "chunk", "chunk", "stream_end"});
    CHECK(events[1]["chunk"] == json{{"text", "a"}});
    CHECK(events[3]["chunk"] == json{{"text", "c"}});
    CHECK(events[4]["special"]["totalChunks"] == 3);
    const auto token = token_of(c.body());
    REQUIRE_FALSE(token.empty());
    auto expected = co_await expected_stream(s.srv.get_caller(), token);
    CHECK(c.body() == expected);
    // The first bytes are exactly the start event and its position.
    const auto run_id = events[0]["special"]["streamRunId"].get<std::string>();
    const auto first = R"(data: {"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_start","streamRunId":")" +
                       run_id + R"(","encodedResumptionToken":")" + token + "\"}}\n\nid: 1\n\n";
    CHECK(c.body().substr(0, first.size()) == first);
    co_await s.stop();
  });
}

TEST_CASE("GET resumes a run from its start, and from a position", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    json input = {{"message", "one two three four"}};
    auto started = co_await start_run(s.ep, "chat", input);
    REQUIRE(started.status == 200);
    const auto token = token_of(started.body);

    auto all = co_await exchange(s.ep, get_request("/api/river", token));
    CHECK(all.status == 200);
    CHECK(all.content_type == "text/event-stream");
    CHECK(all.body == started.body);

    // After position 2 (the first chunk): chunks two, three, four and the end.
    auto from_query = co_await exchange(s.ep, get_request("/api/river", token, "2"));
    auto expected = co_await expected_stream(s.srv.get_caller(), token, "2");
    CHECK(from_query.body == expected);
    auto events = parse_like_river_client(from_query.body);
    REQUIRE(events.size() == 4);
    CHECK(events[0]["chunk"] == json{{"text", "two"}});
    CHECK(from_query.body.substr(0, 5) == "data:");

    // The Last-Event-ID header does the same, and wins over a stale query parameter.
    auto from_header = co_await exchange(s.ep, get_request("/api/river", token, "1", "Last-Event-ID: 2\r\n"));
    CHECK(from_header.body == expected);

    // After the terminal event: 204, the run is over, nothing to stream.
    auto at_end = co_await exchange(s.ep, get_request("/api/river", token, "6"));
    CHECK(at_end.status == 204);
    CHECK(at_end.content_type.empty());
    CHECK(at_end.complete);
    CHECK(at_end.body.empty());
    co_await s.stop();
  });
}

TEST_CASE("resuming a live run follows it to its end, nothing lost or repeated", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    http_connection c(io.get_executor());
    json input = {{"count", 20}, {"delay_ms", 5}};
    {
      auto ec_ = co_await c.open(s.ep, post_request("/api/river", start_body("tick", input)));
      REQUIRE_FALSE(ec_);
    }
    // Read a few events, then drop the connection mid-run.
    co_await c.read_events(4);
    auto seen = parse_like_river_client(c.body());
    auto es = parse_like_event_source(c.body());
    const auto token = token_of(c.body());
    c.close();
    REQUIRE(es.last_event_id != "");
    auto rest = co_await exchange(s.ep, get_request("/api/river", token, es.last_event_id));
    CHECK(rest.complete);
    auto more = parse_like_river_client(rest.body);
    // Exactly the events after the last position seen, then the end.
    std::vector<int> ns;
    for (auto& e : seen)
      if (e["type"] == "chunk") ns.push_back(e["chunk"]["n"]);
    for (auto& e : more)
      if (e["type"] == "chunk") ns.push_back(e["chunk"]["n"]);
    std::vector<int> want(20);
    for (int i = 0; i < 20; ++i) want[static_cast<std::size_t>(i)] = i;
    CHECK(ns == want);
    CHECK(kinds_of(more).back() == "stream_end");
    co_await s.stop();
  });
}

TEST_CASE("DELETE cancels a run: 202, the stream ends with aborted, a second cancel is 409", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    http_connection c(io.get_executor());
    json input = {{"count", 100000}, {"delay_ms", 2}};
    {
      auto ec_ = co_await c.open(s.ep, post_request("/api/river", start_body("tick", input)));
      REQUIRE_FALSE(ec_);
    }
    co_await c.read_events(3);
    const auto token = token_of(c.body());
    const auto run_id = parse_like_river_client(c.body())[0]["special"]["streamRunId"].get<std::string>();
    auto cancelled = co_await exchange(s.ep, delete_request("/api/river", token));
    CHECK(cancelled.status == 202);
    CHECK(cancelled.content_type == "application/json");
    CHECK(cancelled.body == R"({"streamRunId":")" + run_id + R"(","cancelRequested":true})");
    co_await c.read_to_end();
    CHECK(c.done());
    auto events = parse_like_river_client(c.body());
    CHECK(events.back() == json{{"type", "aborted"}});
    auto again = co_await exchange(s.ep, delete_request("/api/river", token));
    CHECK(again.status == 409);
    auto err = json::parse(again.body);
    CHECK(err["__name__"] == "RiverError");
    CHECK(err["message"] == "Run already finished");
    co_await s.stop();
  });
}

TEST_CASE("a runner's throw reaches the client as a fatal error that ends the response", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    json input = json::object();
    auto r = co_await start_run(s.ep, "fail", input);
    CHECK(r.status == 200);
    CHECK(r.complete);
    auto events = parse_like_river_client(r.body);
    REQUIRE(kinds_of(events) == std::vector<std::string>{"stream_start", "chunk", "stream_fatal_error"});
    const auto& e = events[2]["special"]["error"];
    CHECK(e["__name__"] == "RiverError");
    CHECK(e["message"] == "Failed to run runner function");
    CHECK(e["type"] == "stream");
    CHECK(e["cause"] == "boom");
    co_await s.stop();
  });
}

TEST_CASE("a non-fatal error is one event among the chunks", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    json input = json::object();
    auto r = co_await start_run(s.ep, "warn", input);
    auto events = parse_like_river_client(r.body);
    REQUIRE(kinds_of(events) ==
            std::vector<std::string>{"stream_start", "chunk", "stream_error", "chunk", "stream_end"});
    CHECK(events[2]["special"]["error"] ==
          json::parse(R"({"__name__":"RiverError","message":"careful","type":"custom","cause":null,"context":{"step":1}})"));
    CHECK(events[4]["special"]["totalChunks"] == 2);
    co_await s.stop();
  });
}

TEST_CASE("a kept-alive connection carries a request after an event stream", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    http_connection c(io.get_executor());
    json input = {{"message", "x y"}};
    {
      auto ec_ = co_await c.open(s.ep, post_request("/api/river", start_body("chat", input)));
      REQUIRE_FALSE(ec_);
    }
    co_await c.read_to_end();
    REQUIRE(c.done());
    const auto first = c.body();
    {
      auto ec_ = co_await c.send(get_request("/api/river", token_of(first)));
      REQUIRE_FALSE(ec_);
    }
    {
      auto ec_ = co_await c.read_head();
      REQUIRE_FALSE(ec_);
    }
    co_await c.read_to_end();
    CHECK(c.done());
    CHECK(c.body() == first);
    {
      auto ec_ = co_await c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      REQUIRE_FALSE(ec_);
    }
    {
      auto ec_ = co_await c.read_head();
      REQUIRE_FALSE(ec_);
    }
    co_await c.read_to_end();
    CHECK(c.status() == 200);
    CHECK(c.body() == "ok\n");
    co_await s.stop();
  });
}

namespace {

// Starts a run of `stream`, reads `events` events, then drops the connection, as a client that
// goes away (or a TypeScript River client's abort()) does; returns the run's token.
// (Arguments by reference to the caller's named values, and a literal's view: GCC 12 mishandles
// temporaries inside co_await expressions.)
asio::awaitable<std::string> start_and_leave(test_server& s, std::string_view stream, const json& input,
                                             std::size_t events) {
  http_connection c(co_await asio::this_coro::executor);
  const auto opened = co_await c.open(s.ep, post_request("/api/river", start_body(stream, input)));
  REQUIRE_FALSE(opened);
  co_await c.read_events(events);
  auto token = token_of(c.body());
  c.close();
  co_return token;
}

}  // namespace

TEST_CASE("a client that disconnects mid-stream does not stop the run, and its connection is freed",
          "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    const json input = {{"count", 30}, {"delay_ms", 3}};
    const auto token = co_await start_and_leave(s, "tick", input, 2);
    auto& caller = s.srv.get_caller();
    for (int i = 0; i < 200 && (caller.stats().runs_ended < 1 || s.srv.open_connections() > 0); ++i)
      co_await pause_ms(10);
    CHECK(caller.stats().runs_ended == 1);
    CHECK(s.srv.open_connections() == 0);
    CHECK(s.srv.get_handler().open_streams() == 0);
    auto all = co_await exchange(s.ep, get_request("/api/river", token));
    auto events = parse_like_river_client(all.body);
    REQUIRE(events.size() == 32);
    CHECK(events[30]["chunk"]["n"] == 29);
    co_await s.stop();
  });
}

TEST_CASE("under cancel_when_unwatched a client that disconnects stops the run: it ends aborted",
          "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    const json input = {{"count", 2000}, {"delay_ms", 5}};
    const auto token = co_await start_and_leave(s, "tick_unwatched", input, 3);
    auto& caller = s.srv.get_caller();
    for (int i = 0; i < 500 && caller.stats().runs_aborted < 1; ++i) co_await pause_ms(10);
    CHECK(caller.stats().runs_aborted == 1);
    CHECK(caller.stats().runs_ended == 0);
    auto all = co_await exchange(s.ep, get_request("/api/river", token));
    auto events = parse_like_river_client(all.body);
    REQUIRE(events.size() >= 4u);
    CHECK(events.size() < 1000u);
    CHECK(events.back() == json{{"type", "aborted"}});
    co_await s.stop();
  });
}

TEST_CASE("an idle event stream sends keep-alive comments, which both client kinds ignore", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.endpoint.heartbeat_interval = 40ms;
    test_server s(io, o);
    json input = {{"count", 3}, {"delay_ms", 150}};
    auto r = co_await start_run(s.ep, "tick", input);
    CHECK(r.body.find(": keep-alive\n\n") != std::string::npos);
    auto ts = parse_like_river_client(r.body);
    auto es = parse_like_event_source(r.body);
    CHECK(ts.size() == 5);
    CHECK(es.events.size() == 5);
    CHECK(es.comments >= 3);
    co_await s.stop();
  });
}

TEST_CASE("resuming an idle run answers its headers at once", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    http_connection c(io.get_executor());
    json input = {{"count", 2}, {"delay_ms", 2000}};
    {
      auto ec_ = co_await c.open(s.ep, post_request("/api/river", start_body("tick", input)));
      REQUIRE_FALSE(ec_);
    }
    co_await c.read_events(1);
    const auto token = token_of(c.body());
    http_connection r(io.get_executor());
    {
      auto ec_ = co_await r.connect(s.ep);
      REQUIRE_FALSE(ec_);
    }
    {
      auto ec_ = co_await r.send(get_request("/api/river", token, "1"));
      REQUIRE_FALSE(ec_);
    }
    const auto before = std::chrono::steady_clock::now();
    {
      auto ec_ = co_await r.read_head();
      REQUIRE_FALSE(ec_);
    }
    CHECK(std::chrono::steady_clock::now() - before < 1s);
    CHECK(r.status() == 200);
    c.close();
    r.close();
    s.srv.get_caller().cancel_all();
    co_await s.stop();
  });
}

TEST_CASE("500 concurrent SSE clients each get their whole run", "[http][integration][load]") {
  raise_fd_limit();
  run_bounded(
      [](asio::io_context& io) -> asio::awaitable<void> {
        test_server s(io);
        constexpr int clients = 500;
        int finished = 0, correct = 0;
        auto one = [&](int i) -> asio::awaitable<void> {
          json input = {{"message", "w" + std::to_string(i) + " b c d e f g h"}, {"delay_ms", 5}};
          auto r = co_await start_run(s.ep, "chat", input);
          auto events = parse_like_river_client(r.body);
          if (r.status == 200 && r.complete && events.size() == 10 &&
              events[1]["chunk"]["text"] == "w" + std::to_string(i) && events[9]["special"]["totalChunks"] == 8)
            ++correct;
          ++finished;
        };
        for (int i = 0; i < clients; ++i) asio::co_spawn(io, one(i), asio::detached);
        while (finished < clients) co_await pause_ms(10);
        CHECK(correct == clients);
        CHECK(s.srv.get_caller().stats().runs_started == clients);
        co_await s.stop();
      },
      120s);
}

TEST_CASE("/healthz and /metrics answer, metrics in the Prometheus text format", "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    json input = {{"message", "a b"}};
    (void)co_await start_run(s.ep, "chat", input);
    json none = json::object();
    (void)co_await start_run(s.ep, "fail", none);
    auto health = co_await exchange(s.ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(health.status == 200);
    CHECK(health.body == "ok\n");
    // The connections of the requests above close on their own time: wait for them.
    for (int i = 0; i < 100 && s.srv.open_connections() > 0; ++i) co_await pause_ms(10);
    auto m = co_await exchange(s.ep, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(m.status == 200);
    CHECK(m.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(m.body.find("# TYPE river_runs_started_total counter\nriver_runs_started_total 2\n") != std::string::npos);
    CHECK(m.body.find("river_runs_finished_total{outcome=\"end\"} 1\n") != std::string::npos);
    CHECK(m.body.find("river_runs_finished_total{outcome=\"fatal_error\"} 1\n") != std::string::npos);
    CHECK(m.body.find("river_runs_finished_total{outcome=\"aborted\"} 0\n") != std::string::npos);
    CHECK(m.body.find("river_runs_active 0\n") != std::string::npos);
    CHECK(m.body.find("river_events_appended_total 7\n") != std::string::npos);
    CHECK(m.body.find("river_http_connections_open 1\n") != std::string::npos);  // this request's own
    CHECK(m.body.find("river_http_events_sent_total 7\n") != std::string::npos);
    CHECK(m.body.find("river_http_bytes_sent_total ") != std::string::npos);
    // Every sample line is `name{labels} value`.
    std::istringstream lines(m.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty() || line[0] == '#') continue;
      INFO(line);
      CHECK(line.find(' ') != std::string::npos);
      CHECK(line.rfind("river_", 0) == 0);
    }
    co_await s.stop();
  });
}
