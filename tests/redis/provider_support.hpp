#pragma once

#include <river/redis/connection.hpp>
#include <river/redis/provider.hpp>

#include "support/bounded.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/as_tuple.hpp>

namespace river::test {

namespace redis = river::redis;
using clock_type = std::chrono::steady_clock;
inline constexpr auto forever = clock_type::time_point::max();

/// Provider settings with short durations for tests.
inline redis::config test_config(const redis_server& server) {
  redis::config cfg;
  cfg.url = server.url();
  cfg.producer_lost_timeout = std::chrono::milliseconds(1500);
  cfg.connection.reconnect_min = std::chrono::milliseconds(10);
  cfg.connection.reconnect_max = std::chrono::milliseconds(100);
  return cfg;
}

inline asio::awaitable<river::new_log> create(redis::provider& p, std::string id,
                                              std::function<void()> hook = nullptr) {
  auto r = co_await p.create_log(std::move(id), std::move(hook));
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
  co_return std::move(*r);
}

inline asio::awaitable<std::string> append(river::log_writer& w, std::string data, bool last = false) {
  auto r = co_await w.append(std::move(data), last);
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
  co_return *r;
}

inline asio::awaitable<std::unique_ptr<river::log_reader>> open(redis::provider& p, std::string id,
                                                                std::optional<std::string> after = std::nullopt) {
  auto r = co_await p.open_log(std::string(p.storage_id()), std::move(id), std::move(after));
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
  co_return std::move(*r);
}

/// Every record until the log ends, as "position=data".
inline asio::awaitable<std::vector<std::string>> drain(river::log_reader& r, std::size_t max = 3) {
  std::vector<std::string> out;
  std::vector<river::record_view> batch;
  for (;;) {
    batch.clear();
    auto st = co_await r.read(batch, max, forever);
    INFO((st ? std::string() : st.error().message));
    REQUIRE(st.has_value());
    for (auto& rec : batch) out.push_back(std::string(rec.position) + "=" + std::string(rec.data));
    if (*st == river::read_status::end) co_return out;
  }
}

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
