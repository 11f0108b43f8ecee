// Encode once, send many: every reader of a run, live or replaying, from any position, gets the
// same bytes, because each record's frame is written once and sent to all of them as it is.

#include "http/server_fixture.hpp"

using namespace river::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("a reader joining at any position of a run written in one burst gets the bytes a live reader got",
          "[http][integration]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    test_server s(io);
    constexpr int count = 300;  // past a few runner budgets and several pages of the log
    json input = {{"count", count}, {"delay_ms", 0}};
    http_connection live(io.get_executor());
    auto opened = co_await live.open(s.ep, post_request("/api/river", start_body("tick", input)));
    REQUIRE_FALSE(opened);
    co_await live.read_to_end();
    const auto body = live.body();
    const auto token = token_of(body);
    const auto stored = co_await expected_stream(s.srv.get_caller(), token);
    REQUIRE(body == stored);
    // The live body, cut after each event's id-only message.
    std::vector<std::size_t> ends;
    for (auto at = body.find("\nid: "); at != std::string::npos; at = body.find("\nid: ", at + 1))
      ends.push_back(body.find("\n\n", at + 1) + 2);
    REQUIRE(ends.size() == count + 2);
    for (std::size_t p = 1; p < ends.size(); ++p) {
      auto reply = co_await exchange(s.ep, get_request("/api/river", token, std::to_string(p)));
      INFO("position " << p);
      REQUIRE(reply.status == 200u);
      CHECK(reply.body == body.substr(ends[p - 1]));
    }
    auto after_end = co_await exchange(s.ep, get_request("/api/river", token, std::to_string(ends.size())));
    CHECK(after_end.status == 204u);
    co_await s.stop();
  });
}

TEST_CASE("a thousand readers of one run get identical bytes", "[http][integration]") {
  raise_fd_limit();
  run_bounded(
      [](asio::io_context& io) -> asio::awaitable<void> {
        test_server s(io);
        constexpr int readers = 1000;
        json input = {{"count", 40}, {"delay_ms", 5}};
        http_connection starter(io.get_executor());
        auto opened = co_await starter.open(s.ep, post_request("/api/river", start_body("tick", input)));
        REQUIRE_FALSE(opened);
        co_await starter.read_events(1);
        const auto token = token_of(starter.body());
        REQUIRE_FALSE(token.empty());
        std::vector<std::string> bodies(readers);
        int done = 0;
        for (int i = 0; i < readers; ++i) {
          asio::co_spawn(
              io,
              [&, i]() -> asio::awaitable<void> {
                http_connection c(io.get_executor());
                auto failed = co_await c.open(s.ep, get_request("/api/river", token));
                if (failed) co_return;
                co_await c.read_to_end();
                bodies[static_cast<std::size_t>(i)] = c.body();
              },
              [&](std::exception_ptr) { ++done; });
        }
        co_await starter.read_to_end();
        while (done < readers) co_await sleep_for(5ms);
        const auto expected = co_await expected_stream(s.srv.get_caller(), token);
        CHECK(starter.body() == expected);
        int same = 0;
        for (const auto& b : bodies) same += b == expected ? 1 : 0;
        CHECK(same == readers);
        co_await s.stop();
      },
      120s);
}
