#pragma once

// One chat_server process with `--redis`, on a free loopback port: an instance of a service
// behind a load balancer, for the tests that run several of them on one Redis.

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"

#include <string>

namespace river::test {

struct chat_instance {
  chat_instance(const redis_server& redis, int delay_ms, int producer_lost_ms = 1000)
      : chat_instance(redis.url(), "Redis at 127.0.0.1:" + std::to_string(redis.port()), delay_ms, producer_lost_ms) {}

  /// An instance on the Redis (or Redis Cluster) at `url`; it must say it keeps its runs in `where`.
  chat_instance(const std::string& url, const std::string& where, int delay_ms, int producer_lost_ms = 1000)
      : process({RIVER_CHAT_SERVER, "--host", "127.0.0.1", "--port", "0", "--redis", url, "--storage-id", "chat-test",
                 "--delay-ms", std::to_string(delay_ms), "--producer-lost-ms", std::to_string(producer_lost_ms)}) {
    auto said = process.wait_for_line("keeping runs in ");
    REQUIRE(said == where + ", storage id \"chat-test\"");
    auto listening = process.wait_for_line("listening on http://127.0.0.1:");
    REQUIRE(listening);
    ep = tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(std::stoi(*listening)));
  }
  child_process process;
  tcp::endpoint ep;
};

}  // namespace river::test
