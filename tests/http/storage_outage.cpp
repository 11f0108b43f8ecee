// A Redis that is gone for good, seen from HTTP: readers end within their bound with an error
// naming the storage, new starts are refused with 503 and Retry-After, and /healthz says so until
// Redis is back.

#include <river/http/server.hpp>
#include <river/redis/provider.hpp>

#include "http/server_fixture.hpp"
#include "support/redis_server.hpp"

using namespace river::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("a Redis gone for good: readers end clearly, starts and resumes get 503 with Retry-After, /healthz says so",
          "[http][redis][integration]") {
  if (!redis_or_skip()) return;
  redis_server redis;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    river::redis::config cfg;
    cfg.url = redis.url();
    cfg.reader_outage_limit = 1s;
    cfg.outage_limit = 3s;
    cfg.start_wait = 200ms;
    cfg.connection.reconnect_min = 10ms;
    cfg.connection.reconnect_max = 100ms;
    auto provider = std::make_shared<river::redis::provider>(io.get_executor(), cfg);
    river::http::server srv(io.get_executor(), test_router(provider), test_options());
    REQUIRE_FALSE(srv.start());
    const auto ep = srv.local_endpoint();
    // Not ready until the provider's first connection is up.
    http_reply healthy;
    for (int i = 0; i < 200; ++i) {
      healthy = co_await exchange(ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      if (healthy.status == 200u) break;
      CHECK(healthy.body.find("unavailable: redis") == 0);
      co_await sleep_for(10ms);
    }
    CHECK(healthy.status == 200u);
    CHECK(healthy.body == "ok\n");

    json input = {{"count", 1000}, {"delay_ms", 10}};
    http_connection reader(io.get_executor());
    auto opened = co_await reader.open(ep, post_request("/api/river", start_body("tick", input)));
    REQUIRE_FALSE(opened);
    co_await reader.read_events(5);
    redis.kill();
    const auto gone = std::chrono::steady_clock::now();

    co_await sleep_for(100ms);
    auto down = co_await exchange(ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(down.status == 503u);
    CHECK(down.body.find("unavailable: redis 127.0.0.1:" + std::to_string(redis.port())) != std::string::npos);

    auto refused = co_await exchange(ep, post_request("/api/river", start_body("tick", input)));
    CHECK(refused.status == 503u);
    CHECK(refused.body.find("Redis is unreachable") != std::string::npos);
    http_connection again(io.get_executor());
    auto opened_again = co_await again.open(ep, post_request("/api/river", start_body("tick", input)));
    REQUIRE_FALSE(opened_again);
    CHECK(again.status() == 503u);
    CHECK(again.header("Retry-After") == "5");

    // The reader ends, within its bound, with a fatal error that names the storage.
    co_await reader.read_to_end();
    const auto ended_after = std::chrono::steady_clock::now() - gone;
    CHECK(ended_after < 3s);
    auto events = parse_like_river_client(reader.body());
    REQUIRE_FALSE(events.empty());
    CHECK(events.back()["special"]["RIVER_SPECIAL_TYPE_KEY"] == "stream_fatal_error");
    CHECK(events.back()["special"]["error"]["message"].get<std::string>().find("Redis is unreachable") != std::string::npos);
    auto metrics = co_await exchange(ep, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(metrics.body.find("river_storage_reachable{provider=\"redis\",storage=\"redis 127.0.0.1:" +
                            std::to_string(redis.port()) + "\"} 0") != std::string::npos);

    // A resume waits for Redis up to the outage limit, then is 503 too: try again later.
    http_connection resume(io.get_executor());
    auto resume_failed = co_await resume.open(ep, get_request("/api/river", token_of(reader.body())));
    REQUIRE_FALSE(resume_failed);
    CHECK(resume.status() == 503u);
    CHECK(resume.header("Retry-After") == "5");
    co_await resume.read_to_end();
    CHECK(resume.body().find("Redis is unreachable") != std::string::npos);

    // Still 503 while it stays away; 200 once it is back.
    auto still = co_await exchange(ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(still.status == 503u);
    redis.start();
    http_reply back;
    for (int i = 0; i < 300; ++i) {
      back = co_await exchange(ep, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      if (back.status == 200u) break;
      co_await sleep_for(10ms);
    }
    CHECK(back.status == 200u);
    auto metrics_back = co_await exchange(ep, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(metrics_back.body.find("river_storage_outages_total{provider=\"redis\"") != std::string::npos);
    co_await srv.shutdown(500ms);
  }, 30s);
}
