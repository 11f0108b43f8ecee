#pragma once

#include <river/redis/connection.hpp>
#include <river/redis/provider.hpp>

#include "core/provider_contract.hpp"
#include "support/bounded.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/as_tuple.hpp>

namespace river::test {

namespace redis = river::redis;
using contract::clock_type;
using contract::forever;

/// Provider settings with short durations for tests.
inline redis::config test_config(const redis_server& server) {
  redis::config cfg;
  cfg.url = server.url();
  cfg.producer_lost_timeout = std::chrono::milliseconds(1500);
  cfg.connection.reconnect_min = std::chrono::milliseconds(10);
  cfg.connection.reconnect_max = std::chrono::milliseconds(100);
  return cfg;
}

// Creating, appending, opening and draining logs: the provider contract's helpers.
using contract::append;
using contract::create;
using contract::drain;
using contract::open;

/// One command.
inline redis::request cmd(std::initializer_list<std::string_view> args) {
  redis::request r;
  r.push(args);
  return r;
}

/// Runs raw commands on a connection of its own.
inline asio::awaitable<redis::response> raw(const redis_server& server, redis::request req) {
  redis::connection c(co_await asio::this_coro::executor, server.url());
  c.start();
  auto [ec, replies] = co_await c.async_exec(std::move(req), asio::as_tuple(asio::use_awaitable));
  REQUIRE(!ec);
  co_return std::move(replies);
}

inline std::string chunk(int i) { return R"({"type":"chunk","chunk":)" + std::to_string(i) + "}"; }

}  // namespace river::test
