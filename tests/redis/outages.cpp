// Redis outages: a short one (paused, restarted, a connection cut under an append) is only a
// delay, each event stored exactly once; a busy owner is never taken for a dead one.

#include <river/caller.hpp>

#include "redis/provider_support.hpp"
#include "support/collect.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <signal.h>

#include <functional>
#include <future>
#include <thread>

using namespace river::test;
using json = nlohmann::json;
using river::errc;

namespace {

using tcp = asio::ip::tcp;

// A stream whose runner appends `count` chunks {"i": n}, `every` apart.
river::router paced_routes(std::shared_ptr<river::provider> p, int count, std::chrono::milliseconds every,
                           std::chrono::milliseconds block = {}) {
  river::router r;
  r.add("paced", river::stream<json, json>().provider(std::move(p)).runner(
                     [count, every, block](river::run_context<json, json>& ctx) -> asio::awaitable<void> {
                       asio::steady_timer t(ctx.get_executor());
                       for (int i = 0; i < count; ++i) {
                         t.expires_after(every);
                         co_await t.async_wait(asio::use_awaitable);
                         // A runner that holds its thread: longer than a renewal, shorter than the lease.
                         if (block.count() > 0 && i % 10 == 5) std::this_thread::sleep_for(block);
                         json chunk = {{"i", i}};
                         co_await ctx.append(chunk);
                       }
                     }));
  return r;
}

// The chunks of a run's events, checked: start, 0..count-1 once each in order, stream_end.
void check_complete(const std::vector<river::event>& evs, int count) {
  REQUIRE(evs.size() == static_cast<std::size_t>(count) + 2);
  CHECK(evs.front().kind() == river::event_kind::start);
  for (int i = 0; i < count; ++i) CHECK(evs[static_cast<std::size_t>(i) + 1].chunk()->at("i") == i);
  INFO(river::to_json_text(evs.back()));
  CHECK(evs.back().kind() == river::event_kind::end);
}

// The item entries Redis holds for a run.
asio::awaitable<std::vector<std::string>> stored_items(const redis_server& server, std::string key) {
  auto req = cmd({"XRANGE", key, "-", "+"});
  auto r = co_await raw(server, std::move(req));
  std::vector<std::string> out;
  for (const auto& e : r.at(0).elements)
    if (e.elements.at(1).elements.at(0).text == "item") out.push_back(e.elements.at(1).elements.at(1).text);
  co_return out;
}

std::vector<std::string> texts_of(const std::vector<river::event>& evs) {
  std::vector<std::string> out;
  for (const auto& e : evs) out.push_back(river::to_json_text(e));
  return out;
}

// A run of `count` chunks, read on its owner and on another instance, while `disturb` runs
// against Redis from a thread of its own: both readers see every event once, which is what
// Redis holds.
void run_through(redis_server& server, redis::config cfg, int count, std::chrono::milliseconds every,
                 std::function<void()> disturb, std::chrono::milliseconds limit = 60s) {
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        auto owner = std::make_shared<redis::provider>(io.get_executor(), cfg);
        auto elsewhere = std::make_shared<redis::provider>(io.get_executor(), cfg);
        river::caller a(io.get_executor(), paced_routes(owner, count, every));
        river::caller b(io.get_executor(), paced_routes(elsewhere, count, every));
        json input = json::object();
        auto started = (co_await a.start("paced", input)).value();
        auto token = started.resumption_token();
        auto followed = (co_await b.resume(token)).value();
        std::vector<river::event> from_b;
        bool b_done = false;
        asio::co_spawn(io, [&]() -> asio::awaitable<void> { from_b = co_await collect(followed); b_done = true; },
                       asio::detached);
        std::thread disturber(disturb);
        auto from_a = co_await collect(started);
        disturber.join();
        while (!b_done) co_await sleep_for(5ms);
        check_complete(from_a, count);
        CHECK(texts_of(from_b) == texts_of(from_a));
        auto items = co_await stored_items(server, "stream-default-" + started.run_id());
        CHECK(items == texts_of(from_a));
        CHECK(a.stats().runs_ended == 1);
      },
      limit);
}

// `run_through` a run of `count` chunks (one every 20 ms) with the provider's default settings,
// against a Redis with AOF that is paused (SIGSTOP) `after` the start for `pause`.
void run_through_pause(int count, std::chrono::milliseconds after, std::chrono::milliseconds pause,
                       std::chrono::milliseconds limit) {
  if (!redis_or_skip()) return;
  redis_server::options opts;
  opts.appendonly = true;
  redis_server server(opts);
  redis::config cfg;  // the defaults
  cfg.url = server.url();
  run_through(server, cfg, count, 20ms, [&] {
    std::this_thread::sleep_for(after);
    ::kill(server.pid(), SIGSTOP);
    std::this_thread::sleep_for(pause);
    ::kill(server.pid(), SIGCONT);
  }, limit);
}

}  // namespace

TEST_CASE("redis outages: Redis paused for 4.5 s mid-run is a delay, every event once, as Redis holds them",
          "[redis][outage]") {
  run_through_pause(120, 600ms, 4500ms, 60s);
}

TEST_CASE("redis outages: Redis paused for 12 s, past the response timeout, is a delay too", "[redis][outage]") {
  run_through_pause(80, 500ms, 12s, 90s);
}

TEST_CASE("redis outages: Redis killed and restarted within 3 s, three times, loses and repeats nothing",
          "[redis][outage]") {
  if (!redis_or_skip()) return;
  redis_server::options opts;
  opts.appendonly = true;
  redis_server server(opts);
  auto cfg = test_config(server);
  cfg.producer_lost_timeout = 10s;
  run_through(server, cfg, 150, 20ms, [&] {
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(600ms);
      server.kill();
      std::this_thread::sleep_for(std::chrono::milliseconds(300 + 900 * i));
      server.start();
    }
  });
}

namespace {

// A TCP proxy in front of Redis that can cut a connection right after it forwarded an XADD,
// before Redis's reply comes back: the append ran, its reply is lost.
class cutting_proxy {
 public:
  cutting_proxy(asio::io_context& io, std::uint16_t redis_port)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), redis_port_(redis_port) {
    asio::co_spawn(io, accept(), asio::detached);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void cut_after_next_xadd() { armed_ = true; }
  int cuts() const { return cuts_; }
  void close() {
    error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  using error_code = boost::system::error_code;

  asio::awaitable<void> accept() {
    for (;;) {
      auto [ec, client] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      auto server = std::make_shared<tcp::socket>(acceptor_.get_executor());
      auto [cec] = co_await server->async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), redis_port_),
                                                  asio::as_tuple(asio::use_awaitable));
      if (cec) continue;
      auto c = std::make_shared<tcp::socket>(std::move(client));
      asio::co_spawn(acceptor_.get_executor(), pipe(c, server, true), asio::detached);
      asio::co_spawn(acceptor_.get_executor(), pipe(server, c, false), asio::detached);
    }
  }

  asio::awaitable<void> pipe(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to, bool to_redis) {
    std::array<char, 65536> buf;
    for (;;) {
      auto [ec, n] = co_await from->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      auto [wec, w] = co_await asio::async_write(*to, asio::buffer(buf.data(), n), asio::as_tuple(asio::use_awaitable));
      (void)w;
      if (wec) break;
      if (to_redis && armed_ && std::string_view(buf.data(), n).find("XADD") != std::string_view::npos) {
        armed_ = false;
        ++cuts_;
        // Give Redis the time to run it, then cut both ways before its reply is forwarded.
        from->close();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        to->close();
        break;
      }
    }
    error_code ignored;
    from->close(ignored);
    to->close(ignored);
  }

  tcp::acceptor acceptor_;
  std::uint16_t redis_port_;
  bool armed_ = false;
  int cuts_ = 0;
};

// Appends 30 events through a proxy that cuts the connection after an XADD Redis ran, when
// `cut_at(i)` says so before append i; checks that Redis and the run's readers hold each once.
asio::awaitable<void> append_through_cuts(asio::io_context& io, redis_server& server, std::size_t write_window,
                                          std::function<bool(int)> cut_at, int expected_cuts) {
  cutting_proxy proxy(io, server.port());
  auto cfg = test_config(server);
  cfg.url = "redis://127.0.0.1:" + std::to_string(proxy.port());
  cfg.producer_lost_timeout = 10s;
  cfg.write_window = write_window;
  redis::provider p(io.get_executor(), cfg);
  const auto run_id = "cut-" + std::to_string(write_window);
  auto log = co_await create(p, run_id);
  for (int i = 0; i < 30; ++i) {
    if (cut_at(i)) proxy.cut_after_next_xadd();
    (void)co_await append(*log.writer, chunk(i), i == 29);
  }
  CHECK(proxy.cuts() == expected_cuts);
  auto items = co_await stored_items(server, "stream-default-" + run_id);
  REQUIRE(items.size() == 30);
  for (int i = 0; i < 30; ++i) CHECK(items[static_cast<std::size_t>(i)] == chunk(i));
  auto all = co_await drain(*log.reader);
  CHECK(all.size() == 30);
  proxy.close();
}

}  // namespace

TEST_CASE("redis outages: an append whose connection is cut after Redis ran it is stored exactly once",
          "[redis][outage]") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    // One append waiting at a time: each cut falls under a batch of one or two.
    co_await append_through_cuts(io, server, 1, [](int i) { return i % 10 == 5; }, 3);
    // The default window: appends queue while the first is in flight and go out together; the
    // cut falls under a batch of many, the last record's MULTI/EXEC included.
    co_await append_through_cuts(io, server, 256, [](int i) { return i == 1; }, 1);
  });
}

TEST_CASE("redis outages: an owner whose thread is held longer than a renewal is never taken for lost",
          "[redis][outage]") {
  if (!redis_or_skip()) return;
  redis_server server;
  for (int round = 0; round < 3; ++round) {
    auto cfg = test_config(server);
    cfg.producer_lost_timeout = 900ms;  // lease 300 ms, renewed every 100 ms, checked every 300 ms
    // The follower checks the owner's lease from a thread of its own, while the owner's one
    // thread is held by its runner for 250 ms at a time: past two renewals, within the lease.
    std::promise<std::string> token;
    auto token_ready = token.get_future();
    std::vector<river::event> from_b;
    std::uint64_t lost_b = 0;
    // No Catch2 macro runs on the follower's thread (Catch2 is not thread safe): its outcome is
    // checked once it has joined.
    bounded_outcome follower_outcome;
    std::thread follower([&] {
      follower_outcome = run_for_at_most([&](asio::io_context& io) -> asio::awaitable<void> {
        auto elsewhere = std::make_shared<redis::provider>(io.get_executor(), cfg);
        river::caller b(io.get_executor(), paced_routes(elsewhere, 60, 10ms));
        while (token_ready.wait_for(0s) != std::future_status::ready) co_await sleep_for(1ms);
        auto followed = (co_await b.resume(token_ready.get())).value();
        from_b = co_await collect(followed);
        lost_b = elsewhere->get_stats().producers_lost;
      }, 30s);
    });
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
      auto owner = std::make_shared<redis::provider>(io.get_executor(), cfg);
      river::caller a(io.get_executor(), paced_routes(owner, 60, 10ms, 250ms));
      json input = json::object();
      auto started = (co_await a.start("paced", input)).value();
      token.set_value(started.resumption_token());
      auto from_a = co_await collect(started);
      check_complete(from_a, 60);
      CHECK(owner->get_stats().producers_lost == 0);
    }, 30s);
    follower.join();
    require_finished(follower_outcome, 30s);
    check_complete(from_b, 60);
    CHECK(lost_b == 0);
  }
}
