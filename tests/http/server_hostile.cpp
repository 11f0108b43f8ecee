// Malformed and hostile requests: each gets its documented status and a RiverError body, and the
// server keeps serving an event stream to another client throughout.

#include <river/http/server.hpp>

#include "http/server_fixture.hpp"

using namespace river::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct hostile_case {
  std::string name;
  std::string bytes;
  unsigned status;
  std::string type;     // expected error type; empty: any
  std::string message = {};  // a piece of the expected message; empty: any
  std::string allow = {};  // expected Allow field; empty: not checked
};

std::string token_for(std::string provider, std::string stream, std::string storage, std::string run) {
  river::resumption_token t{std::move(provider), std::move(stream), std::move(storage), std::move(run), {}};
  return river::encode_token(t);
}

// A body's JSON is a RiverError, with the protocol's keys in the protocol's order.
void check_river_error(const std::string& body, const hostile_case& c) {
  INFO(c.name << ": " << body);
  CHECK(body.rfind(R"({"__name__":"RiverError","message":")", 0) == 0);
  auto j = json::parse(body, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["__name__"] == "RiverError");
  CHECK(j["message"].is_string());
  CHECK(j["cause"].is_null());
  CHECK(j["context"].is_object());
  // Every client error (4xx) is a validation error, whatever part of the server found it.
  if (c.status >= 400 && c.status < 500) CHECK(j["type"] == "validation");
  if (!c.type.empty()) CHECK(j["type"] == c.type);
  if (!c.message.empty()) CHECK(j["message"].get<std::string>().find(c.message) != std::string::npos);
}

std::string raw_get(std::string target, std::string extra = {}) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
}

}  // namespace

TEST_CASE("malformed and hostile requests get their status and a RiverError, others are served meanwhile",
          "[http][integration][hostile]") {
  run_bounded(
      [](asio::io_context& io) -> asio::awaitable<void> {
        auto o = test_options();
        o.max_header_bytes = 8 * 1024;
        test_server s(io, o);
        // Stalled requests are tried on a second server with a short read timeout.
        auto quick = test_options();
        quick.read_timeout = 300ms;
        test_server impatient(io, quick);

        // A client that streams a long run during the whole test.
        http_connection watcher(io.get_executor());
        json tick = {{"count", 150}, {"delay_ms", 10}};
        {
          auto ec = co_await watcher.open(s.ep, post_request("/api/river", start_body("tick", tick)));
          REQUIRE_FALSE(ec);
        }
        bool watcher_done = false;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              co_await watcher.read_to_end();
              watcher_done = true;
            },
            asio::detached);

        // A real run, for tokens and positions.
        json input = {{"message", "a b"}};
        auto started = co_await exchange(s.ep, post_request("/api/river", start_body("chat", input)));
        REQUIRE(started.status == 200);
        const auto token = token_of(started.body);
        const auto run_id = parse_like_river_client(started.body)[0]["special"]["streamRunId"].get<std::string>();
        const std::string path = "/api/river";
        const auto good_get = [&](std::string query) { return raw_get(path + "?" + query); };

        std::vector<hostile_case> cases = {
            {"body not JSON", post_request(path, "{nope"), 400, "validation", "not JSON"},
            {"body empty", post_request(path, ""), 400, "validation", "not JSON"},
            {"body a JSON array", post_request(path, "[1,2]"), 400, "validation", "not a JSON object"},
            {"body a JSON string", post_request(path, "\"chat\""), 400, "validation", "not a JSON object"},
            {"body with a NUL byte", post_request(path, std::string("{\"a\":\0}", 7)), 400, "validation", "not JSON"},
            {"deeply nested body", post_request(path, std::string(5000, '[') + std::string(5000, ']')), 400, "", ""},
            {"routerStreamKey missing", post_request(path, R"({"input":{}})"), 400, "validation", "routerStreamKey"},
            {"routerStreamKey not a string", post_request(path, R"({"routerStreamKey":7,"input":{}})"), 400, "",
             "routerStreamKey"},
            {"unknown stream", post_request(path, R"({"routerStreamKey":"nope","input":{}})"), 404, "",
             "Stream not found"},
            {"input of the wrong type", post_request(path, R"({"routerStreamKey":"chat","input":{"message":42}})"),
             400, "validation", "message"},
            {"input missing", post_request(path, R"({"routerStreamKey":"chat"})"), 400, "validation", ""},
            {"wrong content type (XML)", post_request(path, start_body("chat", input), "application/xml"), 415,
             "validation", "content type"},
            {"wrong content type (form)",
             post_request(path, start_body("chat", input), "application/x-www-form-urlencoded"), 415, "", ""},
            {"body over the limit (by Content-Length)",
             "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
             413, "", "too large"},
            {"GET without resumeKey", good_get("x=1"), 400, "", "resume key"},
            {"GET with an empty resumeKey", good_get("resumeKey="), 400, "", "resume key"},
            {"token not base64", good_get("resumeKey=%21%21%21%21"), 400, "", "Invalid resumption token"},
            {"token not JSON", good_get("resumeKey=" + url_encode(river::detail::base64_encode("hello"))), 400, "",
             "not JSON"},
            {"token missing a field",
             good_get("resumeKey=" + url_encode(river::detail::base64_encode(R"({"providerId":"memory"})"))), 400, "",
             "missing"},
            {"token oversized", good_get("resumeKey=" + std::string(5000, 'A')), 400, "", "limit"},
            {"token naming an unknown stream", good_get("resumeKey=" + url_encode(token_for("memory", "nope", "default", run_id))),
             404, "", "Stream not found"},
            {"token naming an unknown run",
             good_get("resumeKey=" + url_encode(token_for("memory", "chat", "default", "no-such-run"))), 404, "",
             "Run not found"},
            {"token tampered to another storage id",
             good_get("resumeKey=" + url_encode(token_for("memory", "chat", "other", run_id))), 404, "", "Run not found"},
            {"token naming another provider",
             good_get("resumeKey=" + url_encode(token_for("redis", "chat", "default", run_id))), 400, "",
             "another provider"},
            {"position not a number", good_get("resumeKey=" + url_encode(token) + "&lastEventId=abc"), 400, "",
             "position"},
            {"position past the end", good_get("resumeKey=" + url_encode(token) + "&lastEventId=999"), 400, "",
             "position"},
            {"position in Last-Event-ID not a number",
             raw_get(path + "?resumeKey=" + url_encode(token), "Last-Event-ID: 1x\r\n"), 400, "", "position"},
            {"DELETE without resumeKey", "DELETE " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", 400, "", "resume key"},
            {"DELETE with a bad token", "DELETE " + path + "?resumeKey=xyz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "",
             "Invalid resumption token"},
            {"DELETE of an unknown run",
             "DELETE " + path + "?resumeKey=" + url_encode(token_for("memory", "chat", "default", "gone")) +
                 " HTTP/1.1\r\nHost: x\r\n\r\n",
             404, "", "Run not found"},
            {"DELETE of a finished run", delete_request(path, token), 409, "", "already finished"},
            {"PUT", "PUT " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "validation",
             "Method not allowed", "GET, POST, DELETE, OPTIONS"},
            {"PATCH", "PATCH " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "", "", "GET, POST, DELETE, OPTIONS"},
            {"TRACE", "TRACE " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", 405, "", "", "GET, POST, DELETE, OPTIONS"},
            {"unknown path", raw_get("/nope"), 404, "", "Not found"},
            {"path prefix only", raw_get("/api/riverx"), 404, "", "Not found"},
            {"invalid percent-encoding in the target", raw_get(path + "?resumeKey=%zz"), 400, "", ""},
            {"one oversized header field", raw_get(path, "X-Big: " + std::string(10000, 'a') + "\r\n"), 431, "",
             "too large"},
            {"too many header fields", raw_get(path, [] {
               std::string h;
               for (int i = 0; i < 600; ++i) h += "X-F" + std::to_string(i) + ": 0123456789\r\n";
               return h;
             }()),
             431, "", "too large"},
            {"garbage request line", "HELLO\r\n\r\n", 400, "validation", "Malformed"},
            {"unknown HTTP version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400, "", "Malformed"},
            {"bad header field name", "GET / HTTP/1.1\r\nHo st: x\r\n\r\n", 400, "", "Malformed"},
            {"bad chunk size",
             "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, "",
             "Malformed"},
        };
        REQUIRE(cases.size() >= 30);
        for (const auto& c : cases) {
          auto reply = co_await exchange(s.ep, c.bytes);
          INFO(c.name);
          CHECK_FALSE(reply.error);
          CHECK(reply.status == c.status);
          CHECK(reply.content_type == "application/json");
          check_river_error(reply.body, c);
        }

        // Allow fields, read with the raw client.
        for (const auto& c : cases) {
          if (c.allow.empty()) continue;
          http_connection k(io.get_executor());
          auto ec = co_await k.connect(s.ep);
          REQUIRE_FALSE(ec);
          ec = co_await k.send(c.bytes);
          REQUIRE_FALSE(ec);
          ec = co_await k.read_head();
          REQUIRE_FALSE(ec);
          CHECK(k.header("Allow") == c.allow);
        }

        // A chunked body that grows past the limit: 413 once the limit is passed.
        {
          std::string big = "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
          const std::string piece(64 * 1024, 'x');
          for (int i = 0; i < 20; ++i) big += "10000\r\n" + piece + "\r\n";
          big += "0\r\n\r\n";
          auto reply = co_await exchange(s.ep, big);
          CHECK(reply.status == 413);
          hostile_case c{"chunked body over the limit", {}, 413, "", "too large"};
          check_river_error(reply.body, c);
        }

        // Half a request, then nothing: 408 after the read timeout, and the connection closes.
        const auto whole_post = post_request(path, start_body("chat", input));
        const std::vector<std::string> halves = {"GET /api/river?resumeKey=abc HTTP/1.1\r\nHost: x\r\n",
                                                 whole_post.substr(0, whole_post.size() - 5)};
        for (const auto& half : halves) {
          http_connection k(io.get_executor());
          auto ec = co_await k.connect(impatient.ep);
          REQUIRE_FALSE(ec);
          ec = co_await k.send(half);
          REQUIRE_FALSE(ec);
          const auto before = std::chrono::steady_clock::now();
          ec = co_await k.read_head();
          REQUIRE_FALSE(ec);
          co_await k.read_to_end();
          CHECK(std::chrono::steady_clock::now() - before >= 250ms);
          CHECK(k.status() == 408);
          hostile_case c{"half a request", {}, 408, "validation", "timeout"};
          check_river_error(k.body(), c);
          CHECK_FALSE(k.keep_alive());
        }

        // A connection that sends nothing at all is closed after the idle timeout, without a word.
        // (The idle timeout here is the default minute; a short one is tested separately.)

        // The accepted content types.
        const std::vector<std::string> types = {"text/plain;charset=UTF-8", "application/json",
                                                "application/json; charset=utf-8", "Application/JSON", ""};
        for (const auto& type : types) {
          auto reply = co_await exchange(s.ep, post_request(path, start_body("chat", input), type));
          INFO(type);
          CHECK(reply.status == 200);
          CHECK(parse_like_river_client(reply.body).size() == 4);
        }

        co_await impatient.stop();

        // The watcher's stream went on, whole, through all of it.
        for (int i = 0; i < 500 && !watcher_done; ++i) co_await pause_ms(10);
        REQUIRE(watcher_done);
        auto events = parse_like_river_client(watcher.body());
        REQUIRE(events.size() == 152);
        for (int i = 0; i < 150; ++i) CHECK(events[static_cast<std::size_t>(i + 1)]["chunk"]["n"] == i);
        co_await s.stop();
      },
      60s);
}

TEST_CASE("a connection that sends nothing is closed after the idle timeout", "[http][integration][hostile]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.idle_timeout = 200ms;
    test_server s(io, o);
    http_connection k(io.get_executor());
    auto ec = co_await k.connect(s.ep);
    REQUIRE_FALSE(ec);
    const auto before = std::chrono::steady_clock::now();
    ec = co_await k.read_head();
    CHECK(ec);  // closed without a response
    CHECK(std::chrono::steady_clock::now() - before >= 150ms);
    for (int i = 0; i < 100 && s.srv.open_connections() > 0; ++i) co_await pause_ms(10);
    CHECK(s.srv.open_connections() == 0);
    co_await s.stop();
  });
}

TEST_CASE("connections past the limit get 503 while the others are served", "[http][integration][hostile]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.max_connections = 3;
    test_server s(io, o);
    std::vector<std::unique_ptr<http_connection>> held;
    for (int i = 0; i < 3; ++i) {
      held.push_back(std::make_unique<http_connection>(io.get_executor()));
      auto ec = co_await held.back()->connect(s.ep);
      REQUIRE_FALSE(ec);
    }
    for (int i = 0; i < 100 && s.srv.open_connections() < 3; ++i) co_await pause_ms(5);
    REQUIRE(s.srv.open_connections() == 3);
    auto refused = co_await exchange(s.ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(refused.status == 503);
    hostile_case c{"over the connection limit", {}, 503, "internal", "Too many connections"};
    check_river_error(refused.body, c);
    // A held connection is still served.
    auto ec = co_await held[0]->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE_FALSE(ec);
    ec = co_await held[0]->read_head();
    REQUIRE_FALSE(ec);
    co_await held[0]->read_to_end();
    CHECK(held[0]->status() == 200);
    auto metrics = s.srv.metrics_text();
    CHECK(metrics.find("river_http_connections_rejected_total 1\n") != std::string::npos);
    held.clear();
    co_await s.stop();
  });
}

TEST_CASE("a client that stops reading is dropped after the write timeout, others are not slowed",
          "[http][integration][hostile]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.endpoint.write_timeout = 300ms;
    test_server s(io, o);
    // The stuck client: a tiny receive buffer, and it never reads.
    http_connection stuck(io.get_executor());
    stuck.socket().open(tcp::v4());
    stuck.socket().set_option(asio::socket_base::receive_buffer_size(4096));
    auto ec = co_await stuck.connect(s.ep);
    REQUIRE_FALSE(ec);
    // About 5 MB of events: more than the socket buffers on both sides hold.
    std::string words;
    for (int i = 0; i < 80000; ++i) words += "w" + std::to_string(i) + " ";
    json many = {{"message", words}};
    ec = co_await stuck.send(post_request("/api/river", start_body("chat", many)));
    REQUIRE_FALSE(ec);
    // Meanwhile another client is served at once.
    json input = {{"message", "a b c"}};
    auto other = co_await exchange(s.ep, post_request("/api/river", start_body("chat", input)));
    CHECK(other.status == 200);
    CHECK(parse_like_river_client(other.body).size() == 5);
    for (int i = 0; i < 1000 && s.srv.open_connections() > 0; ++i) co_await pause_ms(10);
    CHECK(s.srv.open_connections() == 0);
    CHECK(s.srv.metrics_text().find("river_http_timeouts_total 1\n") != std::string::npos);
    co_await s.stop();
  });
}
