// The Redis provider under River's caller: cancel from another instance, readers elsewhere under
// the disconnect policy, compatibility with the TypeScript River Redis provider, and data in
// Redis of the wrong shape. (Tests that need the
// caller share this file: it is the heaviest to compile.)

#include <river/redis/provider.hpp>

#include "redis/provider_support.hpp"
#include "support/collect.hpp"

#include <river/caller.hpp>
#include <river/redis/detail/stream_entry.hpp>

using namespace river::test;
using river::errc;
using river::event_kind;
using json = nlohmann::json;

namespace {

river::router chat_routes(std::shared_ptr<redis::provider> p) {
  river::router routes;
  routes.add("chat", river::stream<json, json>().provider(std::move(p)).runner(
                         [](river::run_context<json, json>& ctx) -> asio::awaitable<void> {
                           json a = {{"text", "Hel"}};
                           json b = {{"text", "lo"}};
                           co_await ctx.append(a);
                           co_await ctx.append(b);
                         }));
  return routes;
}

// The entries the TypeScript provider writes for a run: XADD key * item JSON, then end STREAM_END.
redis::request typescript_run(const std::string& key, const std::string& run_id, const std::string& token, bool finished) {
  redis::request r;
  const auto start = R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_start","streamRunId":")" +
                     run_id + R"(","encodedResumptionToken":")" + token + R"("}})";
  r.push({"XADD", key, "*", "item", start});
  r.push({"XADD", key, "*", "item", R"({"type":"chunk","chunk":{"text":"Hel"}})"});
  r.push({"XADD", key, "*", "item", R"({"type":"chunk","chunk":{"text":"lo"}})"});
  if (finished) {
    r.push({"XADD", key, "*", "item",
            R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_end","totalChunks":2,"totalTimeMs":12.75}})"});
    r.push({"XADD", key, "*", "end", "STREAM_END"});
  }
  return r;
}

// A stream that counts slowly until it is cancelled.
river::router counting_routes(std::shared_ptr<redis::provider> p,
                              river::disconnect_policy policy = river::disconnect_policy::continue_run()) {
  river::router routes;
  routes.add("count", river::stream<json, int>().provider(std::move(p)).disconnect(policy).runner(
                          [](river::run_context<json, int>& ctx) -> asio::awaitable<void> {
                            for (int i = 0; i < 1000; ++i) {
                              co_await ctx.append(i);
                              co_await sleep_for(20ms);
                            }
                          }));
  return routes;
}

// Two instances on one Redis serving "count" with `cancel_when_unwatched(grace)`; marks of
// readers expire after 600 ms.
struct two_instances {
  two_instances(asio::io_context& io, const redis_server& server, std::chrono::milliseconds grace)
      : pa(std::make_shared<redis::provider>(io.get_executor(), config_of(server))),
        pb(std::make_shared<redis::provider>(io.get_executor(), config_of(server))),
        a(io.get_executor(), counting_routes(pa, river::disconnect_policy::cancel_when_unwatched(grace))),
        b(io.get_executor(), counting_routes(pb, river::disconnect_policy::cancel_when_unwatched(grace))) {}

  static redis::config config_of(const redis_server& server) {
    auto cfg = test_config(server);
    cfg.presence_ttl = 600ms;
    // Leases far from lapsing on a loaded machine: these tests are about readers, not owners.
    cfg.producer_lost_timeout = 10s;
    return cfg;
  }

  std::shared_ptr<redis::provider> pa, pb;
  river::caller a, b;
};

}  // namespace

TEST_CASE("redis compatibility: a run written as the TypeScript provider writes it is resumed, finished or live") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.producer_lost_timeout = 400ms;
    auto p = std::make_shared<redis::provider>(io.get_executor(), cfg);
    river::caller c(io.get_executor(), chat_routes(p));
    for (bool finished : {true, false}) {
      const std::string run_id = finished ? "0b9c6a58-9f1e-4f7e-8d1c-1a2b3c4d5e6f" : "7d1f0e2a-3b4c-4d5e-8f90-a1b2c3d4e5f6";
      river::resumption_token t{"redis", "chat", "default", run_id, ""};
      const auto token = river::encode_token(t);
      auto req = typescript_run("stream-default-" + run_id, run_id, token, finished);
      co_await raw(server, std::move(req));
      auto reader = (co_await c.resume(token)).value();
      if (!finished) {
        // A TypeScript producer keeps no lease: its run is never taken for a lost one.
        co_await sleep_for(900ms);
        auto rest = cmd({"XADD", "stream-default-" + run_id, "*", "item",
                         R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_end","totalChunks":2,"totalTimeMs":3}})"});
        rest.push({"XADD", "stream-default-" + run_id, "*", "end", "STREAM_END"});
        co_await raw(server, std::move(rest));
      }
      auto evs = co_await collect(reader);
      CHECK(kinds(evs) == std::vector<event_kind>{event_kind::start, event_kind::chunk, event_kind::chunk, event_kind::end});
      REQUIRE(evs.size() == 4);
      CHECK(*evs[1].chunk() == json{{"text", "Hel"}});
      CHECK(std::get<river::events::start>(evs[0].payload).run_id == run_id);
      // Resuming after the first chunk gives the rest.
      auto after = (co_await c.resume(token, evs[1].position)).value();
      auto tail = co_await collect(after);
      CHECK(kinds(tail) == std::vector<event_kind>{event_kind::chunk, event_kind::end});
    }
  });
}

TEST_CASE("redis compatibility: a run written by this server reads with XRANGE and the layout of section 7 alone") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto p = std::make_shared<redis::provider>(io.get_executor(), test_config(server));
    river::caller c(io.get_executor(), chat_routes(p));
    auto reader = (co_await c.start("chat", json::object())).value();
    auto evs = co_await collect(reader);
    REQUIRE(evs.size() == 4);
    // What a TypeScript reader does: XRANGE, the first field of each entry, stop at `end`.
    auto req = cmd({"XRANGE", "stream-default-" + reader.run_id(), "-", "+"});
    auto r = co_await raw(server, std::move(req));
    auto entries = redis::detail::decode_range(r.at(0)).value();
    std::vector<json> items;
    bool ended = false;
    for (auto& e : entries) {
      REQUIRE(!ended);
      if (e.fields.at(0).first == "end") {
        CHECK(e.fields.at(0).second == "STREAM_END");
        ended = true;
        continue;
      }
      REQUIRE(e.fields.at(0).first == "item");
      items.push_back(json::parse(e.fields.at(0).second));
    }
    CHECK(ended);
    REQUIRE(items.size() == 4);
    CHECK(items[0]["special"]["RIVER_SPECIAL_TYPE_KEY"] == "stream_start");
    CHECK(items[0]["special"]["streamRunId"] == reader.run_id());
    auto token = river::decode_token(items[0]["special"]["encodedResumptionToken"].get<std::string>()).value();
    CHECK(token.provider_id == "redis");
    CHECK(token.stream_storage_id == "default");
    CHECK(token.router_stream_key == "chat");
    CHECK(items[1] == json{{"type", "chunk"}, {"chunk", {{"text", "Hel"}}}});
    CHECK(items[2] == json{{"type", "chunk"}, {"chunk", {{"text", "lo"}}}});
    CHECK(items[3]["special"]["RIVER_SPECIAL_TYPE_KEY"] == "stream_end");
    CHECK(items[3]["special"]["totalChunks"] == 2);
  });
}

TEST_CASE("redis bad data: entries of another shape and fields that are not JSON become stream errors") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    redis::provider p(io.get_executor(), test_config(server));
    auto req = cmd({"XADD", "stream-default-bad", "*", "foo", "bar"});
    req.push({"XADD", "stream-default-bad", "*", "item", "{not json"});
    req.push({"XADD", "stream-default-bad", "*", "item", R"({"type":"chunk","chunk":1})"});
    req.push({"XADD", "stream-default-bad", "*", "end", "STREAM_END"});
    co_await raw(server, std::move(req));
    for (std::size_t max : {1u, 10u}) {
      auto reader = co_await open(p, "bad");
      auto all = co_await drain(*reader, max);
      REQUIRE(all.size() == 3);
      CHECK(all[0].find(R"("RIVER_SPECIAL_TYPE_KEY":"stream_error")") != std::string::npos);
      CHECK(all[0].find("not a River event") != std::string::npos);
      CHECK(all[0].find(R"("field":"foo")") != std::string::npos);
      CHECK(all[1].find("not valid JSON") != std::string::npos);
      CHECK(all[2].ends_with(R"(={"type":"chunk","chunk":1})"));
      for (auto& rec : all) CHECK(json::accept(rec.substr(rec.find('=') + 1)));
    }
  });
}

TEST_CASE("redis bad data: a key of another type with a run's name gives a fatal error, replayed or live") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.producer_lost_timeout = 400ms;
    redis::provider p(io.get_executor(), cfg);
    auto req = cmd({"SET", "stream-default-str", "x"});
    req.push({"HSET", "stream-default-hash", "item", "{}"});
    co_await raw(server, std::move(req));
    for (const char* id : {"str", "hash"}) {
      auto reader = co_await open(p, id);
      auto all = co_await drain(*reader);
      REQUIRE(all.size() == 1);
      CHECK(all[0].find("stream_fatal_error") != std::string::npos);
      CHECK(all[0].find("not a stream") != std::string::npos);
    }
    // A live reader whose key is replaced by another type while it waits.
    auto log = co_await create(p, "live");
    co_await append(*log.writer, chunk(0));
    auto follower = co_await open(p, "live");
    std::vector<river::record_view> batch;
    auto st = (co_await follower->read(batch, 10, forever)).value();
    CHECK(st == river::read_status::records);
    auto replace = cmd({"DEL", "stream-default-live"});
    replace.push({"SET", "stream-default-live", "foreign"});
    co_await raw(server, std::move(replace));
    auto rest = co_await drain(*follower);
    REQUIRE(rest.size() == 1);
    CHECK(rest[0].find("stream_fatal_error") != std::string::npos);
    CHECK(rest[0].find("not a stream") != std::string::npos);
    // Other runs are still served.
    auto other = co_await create(p, "fine");
    co_await append(*other.writer, chunk(1), true);
    auto fine = co_await drain(*other.reader);
    CHECK(fine.size() == 1);
  });
}

TEST_CASE("redis provider: a cancel sent to another instance stops the run within 200 ms, it ends aborted") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    auto pa = std::make_shared<redis::provider>(io.get_executor(), cfg);
    auto pb = std::make_shared<redis::provider>(io.get_executor(), cfg);
    CHECK(pa->instance_id() != pb->instance_id());
    river::caller a(io.get_executor(), counting_routes(pa));
    river::caller b(io.get_executor(), counting_routes(pb));
    auto started = co_await a.start("count", json::object());
    REQUIRE(started.has_value());
    auto& events = *started;
    auto ev = co_await events.next();
    REQUIRE(ev);
    CHECK(ev->kind() == river::event_kind::start);
    const auto token = events.resumption_token();
    REQUIRE(!token.empty());
    auto follower = (co_await b.resume(token)).value();
    co_await sleep_for(100ms);
    const auto t0 = clock_type::now();
    auto cancelled = co_await b.cancel(token);
    REQUIRE(cancelled.has_value());
    std::optional<river::event_kind> last;
    while (auto e = co_await events.next()) last = e->kind();
    const auto elapsed = clock_type::now() - t0;
    CHECK(last == river::event_kind::aborted);
    CHECK(elapsed < 200ms);
    std::optional<river::event_kind> followed;
    while (auto e = co_await follower.next()) followed = e->kind();
    CHECK(followed == river::event_kind::aborted);
    auto again = co_await b.cancel(token);
    CHECK(again.error().code == errc::run_already_finished);
  });
}

TEST_CASE("redis provider: under cancel_when_unwatched a reader on another instance keeps the run going, "
          "and the run is cancelled once it goes") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    two_instances w(io, server, 300ms);
    auto& [pa, pb, a, b] = w;
    auto starter = (co_await a.start("count", json::object())).value();
    const auto token = starter.resumption_token();
    const auto readers_key = "river-readers:{stream-default-" + starter.run_id() + "}";
    auto elsewhere = (co_await b.resume(token)).value();
    (void)co_await elsewhere.next();
    // Only the instance that does not run the run marks its readers in Redis (soon: the mark
    // goes out in the background).
    redis::response marks;
    for (int i = 0; i < 100; ++i) {
      auto req = cmd({"HKEYS", readers_key});
      marks = co_await raw(server, std::move(req));
      if (!marks.at(0).elements.empty()) break;
      co_await sleep_for(10ms);
    }
    REQUIRE(marks.at(0).elements.size() == 1u);
    CHECK(marks.at(0).elements.at(0).text == pb->instance_id());
    // The starter goes; the reader elsewhere keeps reading for several graces and renewals.
    starter = river::event_reader();
    for (int i = 0; i < 60; ++i) (void)co_await elsewhere.next();
    CHECK(a.active_runs() == 1u);
    CHECK(a.stats().runs_aborted == 0u);
    // It goes too: the mark is dropped at once, and the run ends aborted.
    const auto token_b = elsewhere.resumption_token();
    elsewhere = river::event_reader();
    for (int i = 0; i < 300 && (a.active_runs() != 0 || a.stats().runs_aborted == 0); ++i) co_await sleep_for(10ms);
    CHECK(a.active_runs() == 0u);
    CHECK(a.stats().runs_aborted == 1u);
    auto after = (co_await b.resume(token_b)).value();
    const auto evs = co_await collect(after);
    REQUIRE_FALSE(evs.empty());
    CHECK(evs.back().kind() == event_kind::aborted);
    // With its last reader gone, B drops its mark (in the background).
    after = river::event_reader();
    std::int64_t left = -1;
    for (int i = 0; i < 100 && left != 0; ++i) {
      auto count_marks = cmd({"HLEN", readers_key});
      auto replies = co_await raw(server, std::move(count_marks));
      left = replies.at(0).integer;
      if (left != 0) co_await sleep_for(10ms);
    }
    CHECK(left == 0);
  });
}

TEST_CASE("redis provider: under cancel_when_unwatched the readers of an instance that died stop counting "
          "after its marks expire") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    two_instances w(io, server, 200ms);
    auto& [pa, pb, a, b] = w;
    auto starter = (co_await a.start("count", json::object())).value();
    auto elsewhere = (co_await b.resume(starter.resumption_token())).value();
    (void)co_await elsewhere.next();
    starter = river::event_reader();
    // B's connections close with its reader still open: its mark is never dropped, only expires.
    co_await pb->close();
    const auto t0 = clock_type::now();
    // The runner stops first; `aborted` counts once Redis stored it.
    for (int i = 0; i < 500 && (a.active_runs() != 0 || a.stats().runs_aborted == 0); ++i) co_await sleep_for(10ms);
    CHECK(a.active_runs() == 0u);
    const auto st = a.stats();
    INFO("ended " << st.runs_ended << ", failed " << st.runs_failed);
    CHECK(st.runs_aborted == 1u);
    CHECK(clock_type::now() - t0 >= 200ms);  // the grace, at least
    elsewhere = river::event_reader();
  });
}

TEST_CASE("redis provider: a run cancelled while Redis is paused under an append: readers here get what Redis holds",
          "[redis][outage]") {
  if (!redis_or_skip()) return;
  redis_server server;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    auto cfg = test_config(server);
    cfg.producer_lost_timeout = 10s;
    // A paused Redis fails the request in flight quickly: the append is sent again.
    cfg.connection.response_timeout = 300ms;
    auto p = std::make_shared<redis::provider>(io.get_executor(), cfg);
    river::caller c(io.get_executor(), counting_routes(p));
    auto events = (co_await c.start("count", json::object())).value();
    const auto key = "stream-default-" + events.run_id();
    for (int i = 0; i < 3; ++i) (void)co_await events.next();
    // The next append goes to a paused Redis; the run is cancelled while it waits there, and its
    // first attempt is stored when Redis resumes.
    ::kill(server.pid(), SIGSTOP);
    co_await sleep_for(100ms);
    auto cancelled = co_await c.cancel(events.resumption_token());
    CHECK(cancelled.has_value());
    co_await sleep_for(800ms);
    ::kill(server.pid(), SIGCONT);
    std::vector<std::string> seen;
    while (auto ev = co_await events.next()) seen.push_back(ev->position);
    auto req = cmd({"XRANGE", key, "-", "+"});
    auto r = co_await raw(server, std::move(req));
    std::vector<std::string> stored;
    for (const auto& e : redis::detail::decode_range(r.at(0)).value())
      if (e.fields.at(0).first == "item") stored.push_back(e.id);
    // The reader here read after the first three events: the rest, exactly as Redis holds it.
    REQUIRE(stored.size() >= 4u);
    CHECK(std::vector<std::string>(stored.begin() + 3, stored.end()) == seen);
  });
}
