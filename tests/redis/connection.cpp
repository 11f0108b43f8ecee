#include <river/redis/connection.hpp>

#include "support/bounded.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <signal.h>
#include <thread>

using namespace river::test;
namespace redis = river::redis;
using river::error_code;
using redis::value;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

redis::connection_config quick() {
  redis::connection_config cfg;
  cfg.reconnect_min = std::chrono::milliseconds(10);
  cfg.reconnect_max = std::chrono::milliseconds(50);
  cfg.connect_timeout = std::chrono::seconds(2);
  return cfg;
}

redis::request one(std::initializer_list<std::string_view> args) {
  redis::request r;
  r.push(args);
  return r;
}

// Sends one request and returns its replies, failing the test on a connection error.
asio::awaitable<redis::response> exec(redis::connection& c, redis::request req) {
  auto [ec, replies] = co_await c.async_exec(std::move(req), tuple_awaitable);
  INFO(ec.message());
  REQUIRE(!ec);
  co_return std::move(replies);
}

// Waits until the connection is established, within the test's bound.
asio::awaitable<void> until_connected(redis::connection& c, std::uint64_t generation = 1) {
  while (!c.connected() || c.generation() < generation) co_await sleep_for(2ms);
}

// Sends `n` INCRs of one counter at once, the i-th through `send(i, handler)`, and checks that
// each got its own count and that the replies came in order.
using reply_handler = std::function<void(error_code, redis::response)>;
asio::awaitable<void> pipelined_incrs(int n, std::function<void(int, reply_handler)> send) {
  std::vector<std::int64_t> got(static_cast<std::size_t>(n), -1);
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    send(i, [&, i](error_code ec, redis::response r) {
      REQUIRE(!ec);
      REQUIRE(r.size() == 1);
      got[static_cast<std::size_t>(i)] = r[0].integer;
      order.push_back(i);
    });
  }
  while (order.size() < static_cast<std::size_t>(n)) co_await sleep_for(1ms);
  for (int i = 0; i < n; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == i + 1);
  for (int i = 0; i < n; ++i) REQUIRE(order[static_cast<std::size_t>(i)] == i);
}

}  // namespace

TEST_CASE("redis connection: pipelined requests are answered in order, coalesced into few writes") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::connection c(io.get_executor(), server.url(), quick());
    c.start();
    constexpr int n = 2000;
    co_await pipelined_incrs(n, [&](int, reply_handler done) {
      c.async_exec(one({"INCR", "counter"}), std::move(done));
    });
    auto s = c.get_stats();
    CHECK(s.requests == n);
    CHECK(s.commands == n);
    CHECK(s.connects == 1);
    // Requests queued while a write is on the wire travel together.
    CHECK(s.writes < n / 10);
  });
}

TEST_CASE("redis connection: requests written in place travel in order with copied ones, coalesced") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::connection c(io.get_executor(), server.url(), quick());
    c.start();
    constexpr int n = 2000;
    // Every other request is written from its own bytes; they stay here until answered.
    std::vector<redis::request> kept(n);
    co_await pipelined_incrs(n, [&](int i, reply_handler done) {
      auto& mine = kept[static_cast<std::size_t>(i)];
      if (i % 2 == 0) {
        mine.push({"INCR", "counter"});
        c.async_exec_in_place(mine, std::move(done));
      } else {
        c.async_exec(one({"INCR", "counter"}), std::move(done));
      }
    });
    CHECK(c.get_stats().writes < n / 10);
    // One in place that carries several commands and binary data.
    redis::request req;
    req.push({"SET", "k", std::string_view("a\0b", 3)});
    req.push({"GET", "k"});
    auto [ec, r] = co_await c.async_exec_in_place(req, tuple_awaitable);
    REQUIRE(!ec);
    REQUIRE(r.size() == 2);
    CHECK(r[1].text == std::string("a\0b", 3));
  });
}

TEST_CASE("redis connection: one request carries many commands, error replies are values") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::connection c(io.get_executor(), server.url(), quick());
    c.start();
    redis::request req;
    req.push({"SET", "k", std::string_view("a\0b", 3)});
    req.push({"INCR", "k"});
    req.push({"GET", "k"});
    req.push({"GET", "missing"});
    req.push({"RPUSH", "l", "x", "y"});
    req.push({"LRANGE", "l", "0", "-1"});
    auto r = co_await exec(c, std::move(req));
    REQUIRE(r.size() == 6);
    CHECK(r[0].type == value::kind::status);
    CHECK(r[0].text == "OK");
    CHECK(r[1].is_error());
    CHECK(r[1].text == "ERR value is not an integer or out of range");
    CHECK(r[2].text == std::string("a\0b", 3));
    CHECK(r[3].is_nil());
    CHECK(r[4].integer == 2);
    CHECK(redis::to_string(r[5]) == R"(["x", "y"])");
    auto empty = co_await exec(c, redis::request());
    CHECK(empty.empty());
  });
}

TEST_CASE("redis connection: callback, use_awaitable, as_tuple and use_future all complete") {
  if (!redis_or_skip()) return;
  redis_server server;
  asio::io_context io;
  redis::connection c(io.get_executor(), server.url(), quick());
  c.start();
  std::future<redis::response> fut = c.async_exec(one({"PING"}), asio::use_future);
  bool callback = false, awaited = false, tupled = false;
  c.async_exec(one({"ECHO", "cb"}), [&](error_code ec, redis::response r) {
    callback = !ec && r.at(0).text == "cb";
  });
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto req1 = one({"ECHO", "aw"});
    auto r = co_await c.async_exec(std::move(req1), asio::use_awaitable);
    awaited = r.at(0).text == "aw";
    auto req2 = one({"ECHO", "tu"});
    auto [ec, r2] = co_await c.async_exec(std::move(req2), tuple_awaitable);
    tupled = !ec && r2.at(0).text == "tu";
    c.close();
  }, asio::detached);
  io.run_for(10s);
  CHECK(callback);
  CHECK(awaited);
  CHECK(tupled);
  REQUIRE(fut.wait_for(0s) == std::future_status::ready);
  CHECK(fut.get().at(0).text == "PONG");
}

TEST_CASE("redis connection: a handler runs on its own executor, and one too big for the request's slot works too") {
  if (!redis_or_skip()) return;
  redis_server server;
  asio::io_context io, elsewhere;
  redis::connection c(io.get_executor(), server.url(), quick());
  c.start();
  auto keep = asio::make_work_guard(elsewhere);
  std::thread other([&] { elsewhere.run(); });
  std::atomic<bool> bound_done{false}, bound_there{false}, big_done{false}, big_ok{false};
  c.async_exec(one({"ECHO", "bound"}), asio::bind_executor(elsewhere, [&](error_code ec, redis::response r) {
                 bound_there = elsewhere.get_executor().running_in_this_thread() && !ec && r.at(0).text == "bound";
                 bound_done = true;
               }));
  std::array<char, 1024> ballast{};
  ballast[1023] = 'b';
  c.async_exec(one({"ECHO", "big"}), [&, ballast](error_code ec, redis::response r) {
    big_ok = io.get_executor().running_in_this_thread() && !ec && r.at(0).text == "big" && ballast[1023] == 'b';
    big_done = true;
  });
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        while (!bound_done || !big_done) co_await sleep_for(1ms);
        c.close();
      },
      asio::detached);
  io.run_for(10s);
  keep.reset();
  other.join();
  CHECK(bound_there);
  CHECK(big_ok);
}

TEST_CASE("redis connection: AUTH and SELECT from the URL, a wrong or missing password is a clear error") {
  if (!redis_or_skip()) return;
  redis_server::options opts;
  opts.password = "s3cret";
  redis_server server(opts);
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    const auto base = "127.0.0.1:" + std::to_string(server.port());
    redis::connection db2(io.get_executor(), "redis://default:s3cret@" + base + "/2", quick());
    redis::connection db0(io.get_executor(), "redis://:s3cret@" + base, quick());
    db2.start();
    db0.start();
    auto req3 = one({"SET", "where", "two"});
    co_await exec(db2, std::move(req3));
    auto req4 = one({"GET", "where"});
    auto in0 = co_await exec(db0, std::move(req4));
    CHECK(in0.at(0).is_nil());
    auto req5 = one({"SELECT", "2"});
    auto sel = co_await exec(db0, std::move(req5));
    auto req6 = one({"GET", "where"});
    auto in2 = co_await exec(db0, std::move(req6));
    CHECK(in2.at(0).text == "two");

    redis::connection wrong(io.get_executor(), "redis://:nope@" + base, quick());
    wrong.start();
    auto req7 = one({"PING"});
    auto [ec, r] = co_await wrong.async_exec(std::move(req7), tuple_awaitable);
    CHECK(ec == redis::error::not_connected);
    CHECK(wrong.last_error().find("Redis refused the handshake") != std::string::npos);
    CHECK(wrong.last_error().find("WRONGPASS") != std::string::npos);
    CHECK(!wrong.connected());

    // Without a password the handshake's PING is refused: a clear error at once, not on every
    // command.
    redis::connection anonymous(io.get_executor(), server.url(), quick());
    anonymous.start();
    auto req8 = one({"GET", "where"});
    auto [denied_ec, denied] = co_await anonymous.async_exec(std::move(req8), tuple_awaitable);
    CHECK(denied_ec == redis::error::not_connected);
    CHECK(anonymous.last_error().find("NOAUTH") != std::string::npos);
  });
}

TEST_CASE("redis connection: unix sockets") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::connection c(io.get_executor(), "unix://" + server.socket_path(), quick());
    c.start();
    auto req9 = one({"PING"});
    auto r = co_await exec(c, std::move(req9));
    CHECK(r.at(0).text == "PONG");
  });
}

TEST_CASE("redis connection: with no server, requests fail at once instead of waiting") {
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    const auto port = free_loopback_port();
    redis::connection c(io.get_executor(), "redis://127.0.0.1:" + std::to_string(port), quick());
    c.start();
    for (int i = 0; i < 3; ++i) {
      auto req10 = one({"PING"});
      auto [ec, r] = co_await c.async_exec(std::move(req10), tuple_awaitable);
      CHECK(ec == redis::error::not_connected);
      CHECK(r.empty());
    }
    CHECK(c.last_error().find("refused") != std::string::npos);
    c.close();
    auto req11 = one({"PING"});
    auto [ec, r] = co_await c.async_exec(std::move(req11), tuple_awaitable);
    CHECK(ec == redis::error::closed);
  });
  CHECK_THROWS_AS(redis::connection(asio::system_executor(), "http://x", quick()), std::invalid_argument);
}

TEST_CASE("redis connection: a server that goes away fails what is in flight, the connection comes back") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::connection c(io.get_executor(), server.url(), quick());
    c.start();
    auto req12 = one({"SET", "a", "1"});
    co_await exec(c, std::move(req12));
    // A blocked command is in flight when the server dies.
    error_code blocked_ec;
    bool blocked_done = false;
    c.async_exec(one({"BLPOP", "nothing", "0"}), [&](error_code ec, redis::response) {
      blocked_ec = ec;
      blocked_done = true;
    });
    co_await sleep_for(20ms);
    server.kill();
    while (!blocked_done) co_await sleep_for(1ms);
    CHECK(blocked_ec == redis::error::connection_lost);
    auto req13 = one({"PING"});
    auto [ec, r] = co_await c.async_exec(std::move(req13), tuple_awaitable);
    CHECK(ec == redis::error::not_connected);
    server.start();
    co_await until_connected(c, 2);
    auto req14 = one({"PING"});
    auto pong = co_await exec(c, std::move(req14));
    CHECK(pong.at(0).text == "PONG");
    CHECK(c.get_stats().connects == 2);
    CHECK(c.get_stats().failures >= 1);
  });
}

TEST_CASE("redis connection: a reply past the read buffer limit breaks the connection, which recovers") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = quick();
    cfg.max_read_buffer = 4096;
    redis::connection c(io.get_executor(), server.url(), cfg);
    c.start();
    const std::string big(100'000, 'x');
    auto req15 = one({"SET", "big", big});
    co_await exec(c, std::move(req15));
    auto req16 = one({"GET", "big"});
    auto [ec, r] = co_await c.async_exec(std::move(req16), tuple_awaitable);
    CHECK(ec == redis::error::connection_lost);
    CHECK(c.last_error() == "Redis reply exceeds the read buffer limit");
    co_await until_connected(c, 2);
    auto req17 = one({"STRLEN", "big"});
    auto small = co_await exec(c, std::move(req17));
    CHECK(small.at(0).integer == 100'000);
  });
}

TEST_CASE("redis connection: a server that stops answering is dropped after the response timeout, then reached again") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = quick();
    cfg.response_timeout = 300ms;
    redis::connection c(io.get_executor(), server.url(), cfg);
    c.start();
    auto first = one({"PING"});
    co_await exec(c, std::move(first));
    // An idle connection is not a silent one: it stays up past the timeout.
    co_await sleep_for(700ms);
    auto second = one({"PING"});
    co_await exec(c, std::move(second));
    CHECK(c.generation() == 1);

    // Stopped, the server keeps its socket open and answers nothing.
    ::kill(server.pid(), SIGSTOP);
    const auto t0 = std::chrono::steady_clock::now();
    auto hung = one({"SET", "k", "v"});
    auto [ec, r] = co_await c.async_exec(std::move(hung), tuple_awaitable);
    const auto waited = std::chrono::steady_clock::now() - t0;
    ::kill(server.pid(), SIGCONT);
    CHECK(ec == redis::error::response_timeout);
    CHECK(r.empty());
    CHECK(c.last_error() == "No reply from Redis within 300 ms");
    CHECK(waited >= 300ms);
    CHECK(waited < 2s);

    co_await until_connected(c, 2);
    auto third = one({"PING"});
    auto pong = co_await exec(c, std::move(third));
    CHECK(pong.at(0).text == "PONG");
    CHECK(c.get_stats().failures == 1);
  });
}
