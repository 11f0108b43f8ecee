#pragma once

#include <river/redis/connection.hpp>
#include <river/redis/provider.hpp>

#include "core/provider_contract.hpp"
#include "support/bounded.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>

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

/// What `server` holds for a run, as "position=data", without the end entry.
inline asio::awaitable<std::vector<std::string>> stored(const redis_server& server, std::string key) {
  redis::request req;
  req.push({"XRANGE", std::move(key), "-", "+"});
  auto replies = co_await raw(server, std::move(req));
  std::vector<std::string> out;
  for (const auto& e : replies.at(0).elements) {
    const auto& fields = e.elements.at(1).elements;
    if (fields.at(0).text == "item") out.push_back(e.elements.at(0).text + "=" + fields.at(1).text);
  }
  co_return out;
}

/// Reads `r` to its end in the background (`drain`), into `out`; `done` counts the readers that
/// finished. `r`, `out` and `done` must outlive it.
inline void drain_in_background(const asio::any_io_executor& ex, river::log_reader& r, std::vector<std::string>& out,
                                int& done) {
  asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
    out = co_await drain(r, 16);
    ++done;
  }, asio::detached);
}

/// Appends `events` records to each of `runs` new runs, PREFIX0, PREFIX1..., each run on a strand
/// of its own, as River's runs are: with several threads the provider is used from all at once.
/// No Catch2 macro runs on those threads (Catch2 is not thread safe): returns how many creates and
/// appends failed.
inline asio::awaitable<int> append_on_strands(river::provider& p, std::string prefix, int runs, int events) {
  std::atomic<int> done{0}, failed{0};
  auto ex = co_await asio::this_coro::executor;
  for (int r = 0; r < runs; ++r) {
    asio::co_spawn(asio::make_strand(ex), [&, r]() -> asio::awaitable<void> {
      auto log = co_await p.create_log(prefix + std::to_string(r), nullptr);
      if (!log) {
        ++failed;
      } else {
        for (int i = 0; i < events; ++i) {
          auto data = chunk(i);
          auto appended = co_await log->writer->append(std::move(data), i == events - 1);
          if (!appended) ++failed;
        }
      }
      ++done;
    }, asio::detached);
  }
  while (done < runs) co_await sleep_for(std::chrono::milliseconds(1));
  co_return failed.load();
}

}  // namespace river::test
