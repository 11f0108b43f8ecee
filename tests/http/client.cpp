#include <river/http/client.hpp>

#include "support/bounded.hpp"
#include "support/collect.hpp"
#include "support/fake_river.hpp"
#include "support/read_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/beast/core/error.hpp>

#include <set>
#include <string>
#include <vector>

using namespace river::test;
using river::event_kind;
using river::http::client_errc;
using json = nlohmann::json;

namespace client_test {

struct text_chunk {
  std::string text;
  friend bool operator==(const text_chunk&, const text_chunk&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(text_chunk, text)

using stream_t = river::http::basic_event_stream<text_chunk>;
using event_t = river::basic_event<text_chunk>;

// Quick retries, so that tests of resumption take milliseconds.
river::http::client_options fast_options() {
  river::http::client_options o;
  o.initial_backoff = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(20);
  o.connect_timeout = std::chrono::seconds(5);
  o.response_timeout = std::chrono::seconds(5);
  o.idle_timeout = std::chrono::seconds(5);
  return o;
}

// Reads a stream until it fails; returns the events before the failure and the failure.
template <class Chunk>
asio::awaitable<std::pair<std::vector<river::basic_event<Chunk>>, river::error>> read_until_error(
    river::http::basic_event_stream<Chunk>& s) {
  std::pair<std::vector<river::basic_event<Chunk>>, river::error> out;
  for (;;) {
    auto r = co_await s.try_next();
    if (!r) {
      out.second = r.error();
      break;
    }
    if (!*r) break;
    out.first.push_back(std::move(**r));
  }
  co_return out;
}

std::vector<std::string> positions_of(const std::vector<event_t>& evs) {
  std::vector<std::string> out;
  for (const auto& e : evs) out.push_back(e.position);
  return out;
}

}  // namespace client_test

using namespace client_test;

TEST_CASE("client starts a run with POST and reads its typed events with their positions", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(3);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);

    REQUIRE(server.requests().size() == 1u);
    const auto& req = server.requests()[0];
    CHECK(req.method == "POST");
    CHECK(req.target == "/api/river");
    CHECK(req.header("Content-Type") == "application/json");
    CHECK(req.header("Accept") == "text/event-stream");
    CHECK(req.header("Host") == "127.0.0.1:" + std::to_string(server.port()));
    CHECK_FALSE(req.has_header("Last-Event-ID"));
    CHECK(req.body == R"({"input":{"message":"hi"},"routerStreamKey":"chat"})");

    CHECK(texts(events) == river.events());
    REQUIRE(events.size() == 5u);
    CHECK(events[1].chunk()->text == "t1");
    CHECK(events[3].chunk()->text == "t3");
    CHECK(events[4].get_if<river::events::end>()->total_chunks == 3u);
    // Every event but possibly the first comes with its position.
    CHECK((events[0].position.empty() || events[0].position == fake_river::position(1)));
    for (std::size_t i = 1; i < events.size(); ++i) CHECK(events[i].position == fake_river::position(i + 1));
    CHECK(opened->run_id() == "run-1");
    CHECK(opened->resumption_token() == river.token());
    CHECK(opened->position() == fake_river::position(5));
    CHECK(opened->reconnections() == 0u);
    CHECK_FALSE(opened->is_open());
    auto after = co_await opened->next();  // empty after the terminal event
    CHECK_FALSE(after);
  });
}

TEST_CASE("client resumes with GET, the token as resumeKey and the position as Last-Event-ID", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(4);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto opened = co_await c.resume<text_chunk>(river.token(), fake_river::position(3));
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);

    REQUIRE(server.requests().size() == 1u);
    const auto& req = server.requests()[0];
    CHECK(req.method == "GET");
    CHECK(req.path() == "/api/river");
    CHECK(req.query("resumeKey") == river.token());
    // The token's base64 is escaped as encodeURIComponent escapes it: no raw '+', '/' or '='.
    CHECK(req.target.find_first_of("+/=", req.target.find("resumeKey=") + 10) == std::string::npos);
    CHECK(req.header("Last-Event-ID") == fake_river::position(3));

    std::vector<std::string> expected(river.events().begin() + 3, river.events().end());
    CHECK(texts(events) == expected);
    CHECK(events.front().chunk()->text == "t3");
    CHECK(opened->run_id() == "run-1");  // from the token
    CHECK(opened->resumption_token() == river.token());

    // From the start: the whole log, start event included.
    auto again = co_await c.resume<text_chunk>(river.token());
    REQUIRE(again.has_value());
    auto all = co_await read_all(*again);
    CHECK(texts(all) == river.events());
    CHECK_FALSE(server.requests()[1].has_header("Last-Event-ID"));
  });
}

TEST_CASE("client keeps the base URL's query and escapes the token in resume requests", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(1);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url() + "?tenant=a%20b", fast_options());
    auto opened = co_await c.resume(river.token());
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);
    CHECK(events.size() == 3u);
    const auto& req = server.requests()[0];
    CHECK(req.target.rfind("/api/river?tenant=a%20b&resumeKey=", 0) == 0);
    CHECK(req.query("resumeKey") == river.token());
  });
}

TEST_CASE("client resumes by itself after lost connections and delivers every event once (positions)", "[http]") {
  auto kind = GENERATE(cut_kind::clean, cut_kind::mid_message, cut_kind::before_id);
  auto chunked = GENERATE(false, true);
  auto separate = GENERATE(false, true);
  CAPTURE(static_cast<int>(kind), chunked, separate);
  run_bounded(
      [=](asio::io_context& io) -> asio::awaitable<void> {
        fake_river_options o;
        o.cut_after = {2, 3, 1, 0};
        o.cut = kind;
        o.chunked = chunked;
        o.separate_id_writes = separate;
        fake_river river(6, o);
        scripted_server server(io.get_executor(), river.handler());
        river::http::client c(io.get_executor(), server.url(), fast_options());
        auto input = chat_input();
        auto opened = co_await c.start<text_chunk>("chat", input);
        REQUIRE(opened.has_value());
        auto events = co_await read_all(*opened);

        CHECK(texts(events) == river.events());
        // Each event has its position, but for those whose position was cut off (before_id): they
        // were delivered when the connection was lost, without it.
        std::size_t without = 0;
        for (std::size_t i = 1; i < events.size(); ++i) {
          if (events[i].position.empty())
            ++without;
          else
            CHECK(events[i].position == fake_river::position(i + 1));
        }
        CHECK(without == (kind == cut_kind::before_id ? 3u : 0u));
        CHECK(opened->reconnections() == 4u);
        REQUIRE(server.requests().size() == 5u);
        // Each resume starts after the last position received: the first response brought events
        // 1 and 2, the second 3 to 5, the third 6, the fourth none. With before_id, the event after
        // each cut arrived whole without its position: the next response repeats it, and the client
        // does not deliver it again.
        std::vector<std::string> resumed_from;
        for (std::size_t i = 1; i < server.requests().size(); ++i) {
          const auto& r = server.requests()[i];
          CHECK(r.method == "GET");
          CHECK(r.query("resumeKey") == river.token());
          resumed_from.push_back(r.header("Last-Event-ID"));
        }
        CHECK(resumed_from == std::vector<std::string>{fake_river::position(2), fake_river::position(5),
                                                       fake_river::position(6), fake_river::position(6)});
      },
      std::chrono::seconds(30));
}

TEST_CASE("client resumes by itself against a server that sends no positions, skipping what it delivered", "[http]") {
  auto kind = GENERATE(cut_kind::clean, cut_kind::mid_message, cut_kind::before_id);
  auto chunked = GENERATE(false, true);
  CAPTURE(static_cast<int>(kind), chunked);
  run_bounded(
      [=](asio::io_context& io) -> asio::awaitable<void> {
        fake_river_options o;
        o.send_ids = false;
        o.cut_after = {2, 3, 5, 0};  // each response starts again from the start of the run
        o.cut = kind;
        o.chunked = chunked;
        fake_river river(6, o);
        scripted_server server(io.get_executor(), river.handler());
        river::http::client c(io.get_executor(), server.url(), fast_options());
        auto input = chat_input();
        auto opened = co_await c.start<text_chunk>("chat", input);
        REQUIRE(opened.has_value());
        auto [events, failure] = co_await read_until_error(*opened);
        INFO(failure.message);
        CHECK_FALSE(failure.code);
        CHECK(texts(events) == river.events());
        for (const auto& e : events) CHECK(e.position.empty());
        CHECK(opened->position().empty());
        for (std::size_t i = 1; i < server.requests().size(); ++i) {
          CHECK(server.requests()[i].method == "GET");
          CHECK_FALSE(server.requests()[i].has_header("Last-Event-ID"));
        }
        // Cut after 2, 3 and 5 events, then whole: 2, 3 and 5 count only when they pass what was
        // delivered (with before_id, one more event arrives whole before each cut).
        CHECK(opened->reconnections() >= 2u);
      },
      std::chrono::seconds(30));
}

TEST_CASE("client reads positions sent inside event messages, and resumes from them", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.ids_in_message = true;
    o.cut_after = {3};
    fake_river river(4, o);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);
    CHECK(texts(events) == river.events());
    for (std::size_t i = 0; i < events.size(); ++i) CHECK(events[i].position == fake_river::position(i + 1));
    REQUIRE(server.requests().size() == 2u);
    CHECK(server.requests()[1].header("Last-Event-ID") == fake_river::position(3));
  });
}

TEST_CASE("client waits as long as the server's retry field asks before resuming", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.retry = 400;
    o.cut_after = {2};
    fake_river river(2, o);
    scripted_server server(io.get_executor(), river.handler());
    auto options = fast_options();
    options.max_backoff = std::chrono::seconds(5);
    river::http::client c(io.get_executor(), server.url(), options);
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto first = co_await opened->next();
    auto second = co_await opened->next();
    auto before = std::chrono::steady_clock::now();
    auto third = co_await opened->next();  // after the cut: waits, then resumes
    auto waited = std::chrono::steady_clock::now() - before;
    CHECK((first && second && third));
    CHECK(third->chunk()->text == "t2");
    CHECK(waited >= std::chrono::milliseconds(190));  // the upper half of 400 ms, jittered
    CHECK(opened->reconnections() == 1u);
  });
}

TEST_CASE("client resumes after a silent connection passes the idle timeout", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.stall_after = {2, 0};
    o.heartbeats = true;
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler());
    auto options = fast_options();
    options.idle_timeout = std::chrono::milliseconds(200);
    river::http::client c(io.get_executor(), server.url(), options);
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto started = std::chrono::steady_clock::now();
    auto events = co_await read_all(*opened);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    CHECK(texts(events) == river.events());
    CHECK(opened->reconnections() == 2u);
    CHECK(server.requests()[1].header("Last-Event-ID") == fake_river::position(2));
    server.stop();
  });
}

TEST_CASE("client waits for a reader slower than its timeouts without reconnecting", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    // The reader comes back after both timeouts have passed, while nothing is pending; the next
    // event then arrives well within the idle timeout.
    fake_river_options o;
    o.pace = std::chrono::milliseconds(350);
    fake_river river(1, o);
    scripted_server server(io.get_executor(), river.handler());
    auto options = fast_options();
    options.response_timeout = std::chrono::milliseconds(200);
    options.idle_timeout = std::chrono::milliseconds(200);
    river::http::client c(io.get_executor(), server.url(), options);
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    std::vector<event_t> events;
    for (;;) {
      co_await pause(std::chrono::milliseconds(250));
      auto ev = co_await opened->next();
      if (!ev) break;
      events.push_back(std::move(*ev));
    }
    CHECK(texts(events) == river.events());
    CHECK(opened->reconnections() == 0u);
    CHECK(server.requests().size() == 1u);
  });
}

TEST_CASE("client gives up resuming after its attempts, with a clear error", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.cut_after = {2};
    o.resume_statuses = {503, 503, 503, 503};
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler());
    auto options = fast_options();
    options.max_resume_attempts = 3;
    river::http::client c(io.get_executor(), server.url(), options);
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto [events, failure] = co_await read_until_error(*opened);
    CHECK(events.size() == 2u);
    CHECK(failure.code == client_errc::retries_exhausted);
    CHECK(failure.type == river::error_type::network);
    CHECK(failure.message.find("after 3 attempts") != std::string::npos);
    CHECK(failure.message.find("Try later") != std::string::npos);
    CHECK(server.requests().size() == 4u);  // the start and three attempts
    CHECK_FALSE(opened->is_open());
    auto later = co_await opened->try_next();
    CHECK(later.error().code == river::errc::not_open);
  });
}

TEST_CASE("client does not retry a resume the server refuses for good", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.cut_after = {2};
    o.resume_statuses = {404};
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto [events, failure] = co_await read_until_error(*opened);
    CHECK(events.size() == 2u);
    CHECK(failure.code == river::http::make_status_error(404));
    CHECK(failure.message == "Try later");
    CHECK(server.requests().size() == 2u);
  });
}

TEST_CASE("client reports a lost connection when the run cannot be resumed", "[http]") {
  auto attempts = GENERATE(0u, 5u);
  run_bounded([=](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.cut_after = {2};
    // Without a token (a provider that cannot resume), or with automatic resumption off.
    fake_river river(3, o, "run-1", attempts == 0u);
    scripted_server server(io.get_executor(), river.handler());
    auto options = fast_options();
    options.max_resume_attempts = attempts;
    river::http::client c(io.get_executor(), server.url(), options);
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto [events, failure] = co_await read_until_error(*opened);
    CHECK(events.size() == 2u);
    CHECK(failure.code == client_errc::connection_lost);
    CHECK(failure.message.find("Lost the connection to 127.0.0.1:") == 0);
    CHECK(server.requests().size() == 1u);
  });
}

TEST_CASE("client turns error statuses into river errors", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    int status = 0;
    std::string body, type;
    scripted_server server(io.get_executor(), [&](const http_request&, response_writer& w) -> asio::awaitable<void> {
      co_await w.respond(status, body, type);
    });
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();

    // A River server's error: its message, type and context, and the status.
    status = 400;
    type = "application/json";
    body =
        R"({"__name__":"RiverError","message":"Invalid input","type":"validation","cause":null,"context":{"field":"message"}})";
    auto r1 = co_await c.start<text_chunk>("chat", input);
    REQUIRE_FALSE(r1.has_value());
    CHECK(r1.error().message == "Invalid input");
    CHECK(r1.error().type == river::error_type::validation);
    CHECK(r1.error().context == json{{"field", "message"}, {"httpStatus", 400}});
    CHECK(r1.error().code == river::http::make_status_error(400));
    CHECK(r1.error().code.message() == "HTTP 400 Bad Request");
    CHECK(r1.error().code.category().name() == std::string("river.http.status"));

    // Anything else: the status and what the body says.
    status = 500;
    type = "text/html";
    body = "<h1>oops</h1>";
    auto r2 = co_await c.start<text_chunk>("chat", input);
    REQUIRE_FALSE(r2.has_value());
    CHECK(r2.error().message == "The server answered HTTP 500 Internal Server Error: <h1>oops</h1>");
    CHECK(r2.error().type == river::error_type::network);
    CHECK(r2.error().context == json{{"httpStatus", 500}});

    status = 404;
    type = "application/json";
    body = R"({"message":"Not Found"})";  // SvelteKit's error body
    auto r3 = co_await c.resume<text_chunk>("token");
    REQUIRE_FALSE(r3.has_value());
    CHECK(r3.error().message == "The server answered HTTP 404 Not Found: Not Found");

    status = 200;
    type = "text/html";
    body = "<html></html>";
    auto r4 = co_await c.start<text_chunk>("chat", input);
    REQUIRE_FALSE(r4.has_value());
    CHECK(r4.error().code == client_errc::unexpected_content_type);

    // With a token: the status as the error code.
    auto [ec, stream] = co_await c.async_start<text_chunk>("chat", input, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == client_errc::unexpected_content_type);
    CHECK_FALSE(stream.is_open());
  });
}

TEST_CASE("client fails with a timeout when the server does not answer", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    scripted_server server(io.get_executor(), [](const http_request&, response_writer&) -> asio::awaitable<void> {
      co_await pause(std::chrono::seconds(10));
    });
    auto options = fast_options();
    options.response_timeout = std::chrono::milliseconds(200);
    river::http::client c(io.get_executor(), server.url(), options);
    auto input = chat_input();
    auto started = std::chrono::steady_clock::now();
    auto r = co_await c.start<text_chunk>("chat", input);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == boost::beast::error::timeout);
    CHECK(r.error().message.find("No response from 127.0.0.1:") == 0);
    server.stop();
  });
}

TEST_CASE("client fails clearly when nothing listens", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    unsigned short port = 0;
    {
      tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      port = a.local_endpoint().port();
    }
    river::http::client c(io.get_executor(), "http://127.0.0.1:" + std::to_string(port) + "/api/river", fast_options());
    auto input = chat_input();
    auto r = co_await c.start<text_chunk>("chat", input);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == asio::error::connection_refused);
    CHECK(r.error().message.find("Could not connect to 127.0.0.1:" + std::to_string(port)) == 0);
    CHECK(r.error().type == river::error_type::network);
  });
}

TEST_CASE("client refuses URLs it cannot call", "[http]") {
  asio::io_context io;
  for (const char* url :
       {"127.0.0.1:8080/api", "ftp://host/api", "http:///api", "/api/river", "http://[::1/x", "http://host:99999/x"}) {
    INFO(url);
    CHECK_THROWS_AS(river::http::client(io.get_executor(), url), std::invalid_argument);
  }
  river::http::client v6(io.get_executor(), "http://[::1]:8080/api/river");
  CHECK(v6.url() == "http://[::1]:8080/api/river");
  river::http::client named(io.get_executor(), "https://example.com/api/river");
  CHECK(named.url() == "https://example.com/api/river");
}

TEST_CASE("client delivers a chunk that does not convert as an error event and reads on", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(2);
    river.events()[1] = R"({"type":"chunk","chunk":{"text":5}})";
    river.events().insert(river.events().begin() + 2, "not json");
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto events = co_await read_all(*opened);
    REQUIRE(events.size() == 5u);
    CHECK(events[1].kind() == event_kind::error);
    CHECK(events[1].get_if<river::events::error>()->value.code == river::errc::malformed_event);
    CHECK(events[1].position == fake_river::position(2));
    CHECK(events[2].kind() == event_kind::error);
    CHECK(events[3].chunk()->text == "t2");
    CHECK(events[4].kind() == event_kind::end);
  });
}

TEST_CASE("client refuses an event larger than its bound", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(2);
    json big = {{"text", std::string(4096, 'x')}};
    river.events()[2] = river::chunk_event_json(big.dump());
    scripted_server server(io.get_executor(), river.handler());
    auto options = fast_options();
    options.max_event_size = 1024;
    river::http::client c(io.get_executor(), server.url(), options);
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto [events, failure] = co_await read_until_error(*opened);
    CHECK(events.size() == 2u);
    CHECK(failure.code == client_errc::event_too_large);
    CHECK_FALSE(opened->is_open());
  });
}

TEST_CASE("client stream close ends a pending read, and nothing is resumed", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.stall_after = {2};
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto& s = *opened;
    auto first = co_await s.next();
    auto second = co_await s.next();
    CHECK((first && second));
    asio::steady_timer t(io, std::chrono::milliseconds(50));
    t.async_wait([&](boost::system::error_code) { s.close(); });
    auto r = co_await s.try_next();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == asio::error::operation_aborted);
    auto again = co_await s.try_next();
    CHECK(again.error().code == river::errc::not_open);
    co_await pause(std::chrono::milliseconds(50));
    CHECK(server.requests().size() == 1u);
    server.stop();
  });
}

TEST_CASE("client async_next is cancellable, and a second pending read is refused", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.stall_after = {1};
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();
    auto [ec, s] = co_await c.async_start<text_chunk>("chat", input, asio::as_tuple(asio::use_awaitable));
    REQUIRE_FALSE(ec);
    auto [ec1, first] = co_await s.async_next(asio::as_tuple(asio::use_awaitable));
    CHECK(!ec1);
    CHECK((first && first->kind() == event_kind::start));

    asio::cancellation_signal cancel;
    boost::system::error_code got = asio::error::would_block;
    bool done = false;
    s.async_next(asio::bind_cancellation_slot(cancel.slot(), [&](boost::system::error_code e, std::optional<event_t>) {
      got = e;
      done = true;
    }));
    co_await pause(std::chrono::milliseconds(20));
    auto [ec2, none] = co_await s.async_next(asio::as_tuple(asio::use_awaitable));
    CHECK(ec2 == river::errc::operation_in_progress);
    cancel.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 100 && !done; ++i) co_await pause(std::chrono::milliseconds(5));
    CHECK(done);
    CHECK(got == asio::error::operation_aborted);
    CHECK_FALSE(s.is_open());
    server.stop();
  });
}

TEST_CASE("client async operations work with callbacks", "[http]") {
  asio::io_context io;
  fake_river river(2);
  scripted_server server(io.get_executor(), river.handler());
  river::http::client c(io.get_executor(), server.url(), fast_options());
  std::vector<std::string> seen;
  stream_t stream;
  boost::system::error_code cancel_ec = asio::error::would_block;
  std::function<void(boost::system::error_code, std::optional<event_t>)> on_event = [&](boost::system::error_code ec,
                                                                                        std::optional<event_t> ev) {
    REQUIRE_FALSE(ec);
    if (!ev) {
      c.async_cancel(river.token(), [&](boost::system::error_code e) {
        cancel_ec = e;
        server.stop();  // the last work: run_for returns
      });
      return;
    }
    seen.push_back(river::to_json_text(*ev));
    stream.async_next(on_event);
  };
  c.async_start<text_chunk>("chat", chat_input(), [&](boost::system::error_code ec, stream_t s) {
    REQUIRE_FALSE(ec);
    stream = std::move(s);
    stream.async_next(on_event);
  });
  io.run_for(std::chrono::seconds(10));
  CHECK(seen == river.events());
  CHECK(!cancel_ec);
  CHECK(river.cancels() == 1);
  REQUIRE(server.requests().size() == 2u);
  CHECK(server.requests()[1].method == "DELETE");
  CHECK(server.requests()[1].query("resumeKey") == river.token());
}

TEST_CASE("client cancel reports the server's refusal", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(1);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto ok = co_await c.cancel(river.token());
    CHECK(ok.has_value());
    auto refused = co_await c.cancel("unknown-token");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == river::http::make_status_error(404));
    CHECK(refused.error().message == "Run not found");
    auto ec = co_await c.async_cancel("unknown-token", asio::as_tuple(asio::use_awaitable));
    CHECK(std::get<0>(ec) == river::http::make_status_error(404));
  });
}

TEST_CASE("client refuses a resumed stream that replays another run", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.send_ids = false;
    o.cut_after = {3};
    fake_river river(4, o);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    auto input = chat_input();
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto first = co_await opened->next();
    CHECK((first && first->kind() == event_kind::start));
    // The log changes under the client: the replay starts another run.
    river.events()[0] = river::to_json_text(river::event{river::events::start{"run-2", river.token()}, {}});
    auto [events, failure] = co_await read_until_error(*opened);
    CHECK(events.size() == 2u);
    CHECK(failure.code == client_errc::replay_mismatch);
  });
}

TEST_CASE("client error codes have their own messages and category", "[http]") {
  std::set<std::string> messages;
  for (int v = 1; v <= static_cast<int>(client_errc::replay_mismatch); ++v) {
    river::error_code ec = static_cast<client_errc>(v);
    CHECK(ec.category().name() == std::string("river.http.client"));
    CHECK(messages.insert(ec.message()).second);
  }
  CHECK(river::http::make_status_error(503).message() == "HTTP 503 Service Unavailable");
  CHECK(river::http::make_status_error(799).message() == "HTTP 799");
}

// ---------------------------------------------------------------------------------------------
// The callback API

namespace client_test {

struct recorder {
  std::vector<std::string> calls;
  river::http::stream_callbacks<text_chunk> callbacks() {
    river::http::stream_callbacks<text_chunk> cb;
    cb.on_start = [this] { calls.push_back("start"); };
    cb.on_info = [this](const river::events::start& s) { calls.push_back("info " + s.run_id); };
    cb.on_chunk = [this](const text_chunk& c, std::size_t i) {
      calls.push_back("chunk " + c.text + " #" + std::to_string(i));
    };
    cb.on_error = [this](const river::error& e) { calls.push_back("error " + e.message); };
    cb.on_fatal_error = [this](const river::error& e) { calls.push_back("fatal " + e.message); };
    cb.on_success = [this](const river::events::end& e) {
      calls.push_back("success " + std::to_string(e.total_chunks) + " " + std::to_string(e.total_time_ms));
    };
    cb.on_abort = [this] { calls.push_back("abort"); };
    return cb;
  }
};

asio::awaitable<void> wait_finished(const river::http::run_handle& h) {
  for (int i = 0; i < 2000 && !h.finished(); ++i) co_await pause(std::chrono::milliseconds(5));
}

}  // namespace client_test

TEST_CASE("client callbacks report a run in order, across a lost connection", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.cut_after = {2};
    o.cut = cut_kind::before_id;
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    recorder rec;
    auto h = c.start("chat", chat_input(), rec.callbacks());
    co_await wait_finished(h);
    CHECK(h.finished());
    CHECK(rec.calls ==
          std::vector<std::string>{"start", "info run-1", "chunk t1 #0", "chunk t2 #1", "chunk t3 #2", "success 3 42"});
    CHECK(server.requests().size() == 2u);
    h.abort();  // after the end: nothing happens
    co_await pause(std::chrono::milliseconds(10));
    CHECK(rec.calls.size() == 6u);
  });
}

TEST_CASE("client callbacks report errors, fatal errors and aborted runs", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river river(2);
    river::error oops("Oops", river::error_type::custom);
    river.events()[2] = river::to_json_text(river::event{river::events::error{oops}, {}});
    river::error boom("Boom", river::error_type::stream);
    river.events()[3] = river::to_json_text(river::event{river::events::fatal_error{boom}, {}});
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    recorder rec;
    auto h = c.start("chat", chat_input(), rec.callbacks());
    co_await wait_finished(h);
    CHECK(rec.calls == std::vector<std::string>{"start", "info run-1", "chunk t1 #0", "error Oops", "fatal Boom"});

    river.events()[3] = R"({"type":"aborted"})";
    recorder rec2;
    auto h2 = c.resume(river.token(), rec2.callbacks());
    co_await wait_finished(h2);
    CHECK(rec2.calls == std::vector<std::string>{"start", "info run-1", "chunk t1 #0", "error Oops", "abort"});

    // From a position: no start event, chunk indices from 0.
    recorder rec3;
    auto h3 = c.resume(river.token(), fake_river::position(2), rec3.callbacks());
    co_await wait_finished(h3);
    CHECK(rec3.calls == std::vector<std::string>{"start", "error Oops", "abort"});

    recorder rec4;
    auto h4 = c.start("nope", chat_input(), rec4.callbacks());
    co_await wait_finished(h4);
    CHECK(rec4.calls == std::vector<std::string>{"start", "fatal Stream not found"});
  });
}

TEST_CASE("client callback runs stop at abort", "[http]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    fake_river_options o;
    o.stall_after = {2, 2};
    fake_river river(3, o);
    scripted_server server(io.get_executor(), river.handler());
    river::http::client c(io.get_executor(), server.url(), fast_options());
    recorder rec;
    auto cb = rec.callbacks();
    river::http::run_handle h;
    cb.on_chunk = [&](const text_chunk& chunk, std::size_t i) {
      rec.calls.push_back("chunk " + chunk.text + " #" + std::to_string(i));
      h.abort();
    };
    h = c.start("chat", chat_input(), cb);
    co_await wait_finished(h);
    CHECK(h.finished());
    CHECK(rec.calls == std::vector<std::string>{"start", "info run-1", "chunk t1 #0", "abort"});

    // Aborted while waiting for data.
    recorder rec2;
    auto h2 = c.start("chat", chat_input(), rec2.callbacks());
    co_await pause(std::chrono::milliseconds(100));
    CHECK_FALSE(h2.finished());
    h2.abort();
    co_await wait_finished(h2);
    CHECK(rec2.calls == std::vector<std::string>{"start", "info run-1", "chunk t1 #0", "abort"});
    server.stop();
  });
}
