// End to end: River's HTTP client against River's HTTP server over loopback, plain and TLS, with
// the coroutine and the callback APIs; a proxy in between cuts connections to exercise the
// client's resumption against the server's positions.

#include <river/http/client.hpp>
#include <river/http/server.hpp>

#include "http/server_fixture.hpp"
#include "support/collect.hpp"
#include "support/test_tls.hpp"

#include <river/detail/base64.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/describe/class.hpp>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace river::test;
using river::event_kind;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace e2e_test {

namespace events = river::events;
using boost::system::error_code;

// --- streams -------------------------------------------------------------------------------------

struct step_input {
  std::string name;
  int steps = 0;
};
BOOST_DESCRIBE_STRUCT(step_input, (), (name, steps))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(step_input, name, steps)

// A chunk with several fields of several types, read back typed by the client.
struct step_chunk {
  std::string name;
  int index = 0;
  double progress = 0;
  std::vector<std::string> tags;
  bool last = false;
  friend bool operator==(const step_chunk&, const step_chunk&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(step_chunk, name, index, progress, tags, last)

step_chunk make_step(const std::string& name, int i, int steps) {
  step_chunk c;
  c.name = name;
  c.index = i;
  c.progress = static_cast<double>(i + 1) / steps;
  c.tags = {"step", "n" + std::to_string(i)};
  if (i % 2 == 1) c.tags.push_back("odd \"quoted\"\n\u00e9");
  c.last = i + 1 == steps;
  return c;
}

// Holds runs of "gated" until the test opens it. Single-threaded tests only: the runners and the
// test share the io_context's one thread.
struct gate {
  explicit gate(const asio::any_io_executor& ex) : timer(ex, asio::steady_timer::time_point::max()) {}
  // Wakes every waiting runner, and lets later ones through at once.
  void open() { timer.expires_at(asio::steady_timer::time_point::min()); }
  asio::steady_timer timer;
};

/// The streams of these tests, all on `provider` (the router's own when null):
/// - "chat" {message, delay_ms}: one chunk {"text": word} per word;
/// - "tick" {count, delay_ms}: chunks {"n": 0..count-1};
/// - "steps" {name, steps}: typed chunks with several fields;
/// - "warn": a chunk, a non-fatal error, a chunk;
/// - "fail": a chunk, then the runner throws;
/// - "fail_call": a chunk, then the runner calls `ctx.fail`;
/// - "gated" {count}: chunk 0, then waits for the gate, then chunks 1..count-1.
river::router e2e_router(std::shared_ptr<river::provider> provider = nullptr, std::shared_ptr<gate> g = nullptr) {
  using json_ctx = river::run_context<json, text_chunk>;
  river::router r = test_router(provider);
  r.add("steps", river::stream<step_input, step_chunk>().provider(provider).runner(
                     [](river::run_context<step_input, step_chunk>& ctx) -> asio::awaitable<void> {
                       for (int i = 0; i < ctx.input().steps; ++i) {
                         auto c = make_step(ctx.input().name, i, ctx.input().steps);
                         co_await ctx.append(c);
                       }
                     }));
  r.add("fail_call",
        river::stream<json, text_chunk>().provider(provider).runner([](json_ctx& ctx) -> asio::awaitable<void> {
          text_chunk c{"before"};
          co_await ctx.append(c);
          river::error e("quota exceeded", river::error_type::custom, {{"limit", 3}});
          co_await ctx.fail(e);
        }));
  if (g) {
    r.add("gated", river::stream<tick_input, tick_chunk>().provider(provider).runner(
                       [g](river::run_context<tick_input, tick_chunk>& ctx) -> asio::awaitable<void> {
                         tick_chunk first{0};
                         co_await ctx.append(first);
                         auto [ec] = co_await g->timer.async_wait(asio::as_tuple(asio::use_awaitable));
                         (void)ec;  // opened (operation_aborted) or expired: go on either way
                         for (int i = 1; i < ctx.input().count; ++i) {
                           tick_chunk c{i};
                           co_await ctx.append(c);
                         }
                       }));
  }
  return r;
}

// --- servers, clients, proxies ----------------------------------------------------------------

struct e2e_server {
  e2e_server(asio::io_context& io, river::router routes, river::http::server_options o = test_options())
      : srv(io.get_executor(), std::move(routes), std::move(o)) {
    auto ec = srv.start();
    REQUIRE_FALSE(ec);
    ep = srv.local_endpoint();
  }
  river::http::server srv;
  tcp::endpoint ep;

  std::string url(const std::string& scheme = "http", const std::string& host = "127.0.0.1") const {
    return scheme + "://" + host + ":" + std::to_string(ep.port()) + "/api/river";
  }
  asio::awaitable<void> stop() {
    auto r = co_await srv.shutdown(500ms);
    (void)r;
  }
};

// Quick retries, so that resumption takes milliseconds.
river::http::client_options fast_options() {
  river::http::client_options o;
  o.initial_backoff = 2ms;
  o.max_backoff = 20ms;
  o.connect_timeout = 10s;
  o.response_timeout = 10s;
  o.idle_timeout = 10s;
  return o;
}

std::string url_of(const tcp::endpoint& ep, const std::string& scheme = "http") {
  return scheme + "://127.0.0.1:" + std::to_string(ep.port()) + "/api/river";
}

/// A TCP proxy on loopback in front of River servers. Connection i goes to `upstreams[i]` (the
/// last one for the rest) and is cut, both ways, once `cuts[i]` bytes of the response went
/// through (never, beyond the list). It records what each client sent.
class cutting_proxy {
 public:
  static constexpr std::size_t no_cut = std::numeric_limits<std::size_t>::max();

  cutting_proxy(const asio::any_io_executor& ex, std::vector<tcp::endpoint> upstreams, std::vector<std::size_t> cuts)
      : st_(std::make_shared<state>(ex, std::move(upstreams), std::move(cuts))) {
    tcp::endpoint local(asio::ip::make_address("127.0.0.1"), 0);
    st_->acceptor.open(local.protocol());
    st_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    st_->acceptor.bind(local);
    st_->acceptor.listen();
    asio::co_spawn(ex, accept_loop(st_), asio::detached);
  }
  ~cutting_proxy() { stop(); }
  cutting_proxy(const cutting_proxy&) = delete;
  cutting_proxy& operator=(const cutting_proxy&) = delete;

  tcp::endpoint endpoint() const { return st_->acceptor.local_endpoint(); }
  std::string url(const std::string& scheme = "http") const { return url_of(endpoint(), scheme); }

  /// Connections accepted so far.
  std::size_t connections() const { return st_->sessions.size(); }
  /// The bytes client connection `i` sent (its request, as sent).
  const std::string& request(std::size_t i) const { return st_->sessions.at(i)->sent; }
  /// The response bytes that went through connection `i`.
  const std::string& answer(std::size_t i) const { return st_->sessions.at(i)->answer; }
  /// Whether connection `i` was cut by the proxy.
  bool was_cut(std::size_t i) const { return st_->sessions.at(i)->cut; }
  /// A header field of request `i` (exact name); empty when absent.
  std::string header(std::size_t i, const std::string& name) const {
    const auto& r = request(i);
    auto head = r.substr(0, r.find("\r\n\r\n"));
    auto at = head.find("\r\n" + name + ": ");
    if (at == std::string::npos) return {};
    at += name.size() + 4;
    return head.substr(at, head.find("\r\n", at) - at);
  }
  /// The request line of request `i`.
  std::string request_line(std::size_t i) const {
    const auto& r = request(i);
    return r.substr(0, r.find("\r\n"));
  }

  void stop() {
    error_code ec;
    st_->acceptor.close(ec);
    for (auto& s : st_->sessions) s->close();
  }

 private:
  struct session {
    session(const asio::any_io_executor& ex, tcp::socket c) : client(std::move(c)), server(ex) {}
    tcp::socket client;
    tcp::socket server;
    std::string sent;
    std::string answer;
    std::size_t budget = no_cut;  // response bytes left before the cut
    bool cut = false;
    void close() {
      error_code ec;
      client.close(ec);
      server.close(ec);
    }
  };
  struct state {
    state(const asio::any_io_executor& ex, std::vector<tcp::endpoint> u, std::vector<std::size_t> c)
        : acceptor(ex), upstreams(std::move(u)), cuts(std::move(c)) {}
    tcp::acceptor acceptor;
    std::vector<tcp::endpoint> upstreams;
    std::vector<std::size_t> cuts;
    std::vector<std::shared_ptr<session>> sessions;
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
      auto [ec, socket] = co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      const auto i = st->sessions.size();
      auto s = std::make_shared<session>(ex, std::move(socket));
      s->budget = i < st->cuts.size() ? st->cuts[i] : no_cut;
      st->sessions.push_back(s);
      asio::co_spawn(ex, forward(st, s, std::min(i, st->upstreams.size() - 1)), asio::detached);
    }
  }

  static asio::awaitable<void> forward(std::shared_ptr<state> st, std::shared_ptr<session> s, std::size_t upstream) {
    auto [ec] = co_await s->server.async_connect(st->upstreams[upstream], asio::as_tuple(asio::use_awaitable));
    if (ec) {
      s->close();
      co_return;
    }
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, upstream_pump(s), asio::detached);
    std::array<char, 4096> buf{};
    while (s->budget > 0) {
      auto [rec, n] = co_await s->server.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      const auto take = std::min(n, s->budget);
      s->budget -= take;
      if (take > 0) {
        if (s->answer.size() < 64 * 1024) s->answer.append(buf.data(), take);
        auto [wec, w] = co_await asio::async_write(s->client, asio::buffer(buf.data(), take),
                                                   asio::as_tuple(asio::use_awaitable));
        (void)w;
        if (wec) break;
      }
      if (s->budget == 0) s->cut = true;
      if (rec) break;
    }
    s->close();
  }

  static asio::awaitable<void> upstream_pump(std::shared_ptr<session> s) {
    std::array<char, 4096> buf{};
    for (;;) {
      auto [ec, n] = co_await s->client.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (s->sent.size() < 64 * 1024) s->sent.append(buf.data(), n);
      if (ec) break;
      auto [wec, w] =
          co_await asio::async_write(s->server, asio::buffer(buf.data(), n), asio::as_tuple(asio::use_awaitable));
      (void)w;
      if (wec) break;
    }
    s->close();
  }

  std::shared_ptr<state> st_;
};

// --- reading ------------------------------------------------------------------------------------

// Reads a stream to its end; a failure is returned with the events before it.
template <class Chunk>
struct read_outcome {
  std::vector<river::basic_event<Chunk>> events;
  std::optional<river::error> failure;
};

template <class Chunk>
asio::awaitable<read_outcome<Chunk>> read_all(river::http::basic_event_stream<Chunk>& s, std::size_t limit = 100000) {
  read_outcome<Chunk> out;
  while (out.events.size() < limit) {
    auto r = co_await s.try_next();
    if (!r) {
      out.failure = r.error();
      break;
    }
    if (!*r) break;
    out.events.push_back(std::move(**r));
  }
  co_return out;
}

// What the server's provider holds for a run, read in process.
asio::awaitable<std::vector<river::event>> stored_events(river::caller& c, std::string token,
                                                        std::optional<std::string> after = std::nullopt) {
  auto resumed = co_await c.resume(std::move(token), std::move(after));
  REQUIRE(resumed.has_value());
  auto events = co_await collect(*resumed);
  co_return events;
}

template <class Chunk>
std::vector<std::string> positions(const std::vector<river::basic_event<Chunk>>& evs) {
  std::vector<std::string> out;
  for (const auto& e : evs) out.push_back(e.position);
  return out;
}

std::vector<int> ticks_of(const std::vector<river::basic_event<tick_chunk>>& evs) {
  std::vector<int> out;
  for (const auto& e : evs)
    if (auto c = e.chunk()) out.push_back(c->n);
  return out;
}

// The ticks of a stream read in two parts (before and after a cut or a shutdown), in order.
std::vector<int> ticks_of(const std::vector<river::basic_event<tick_chunk>>& head,
                          const std::vector<river::basic_event<tick_chunk>>& rest) {
  auto out = ticks_of(head);
  auto more = ticks_of(rest);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

std::vector<int> iota(int n, int from = 0) {
  std::vector<int> out;
  for (int i = from; i < n; ++i) out.push_back(i);
  return out;
}

// What a callback run reported, in order.
template <class Chunk>
struct recorded {
  std::vector<std::string> calls;  // "start", "info", "chunk", "error", "fatal", "success", "abort"
  std::optional<events::start> info;
  std::vector<Chunk> chunks;
  std::vector<river::error> errors;
  std::optional<river::error> fatal;
  std::optional<events::end> end;
  bool indexes_in_order = true;
  std::function<void(recorded&)> after_chunk;  // a test's hook, run after each chunk
};

template <class Chunk>
river::http::stream_callbacks<Chunk> record(std::shared_ptr<recorded<Chunk>> r) {
  river::http::stream_callbacks<Chunk> cb;
  cb.on_start = [r] { r->calls.push_back("start"); };
  cb.on_info = [r](const events::start& s) {
    r->calls.push_back("info");
    r->info = s;
  };
  cb.on_chunk = [r](const Chunk& c, std::size_t index) {
    r->calls.push_back("chunk");
    if (index != r->chunks.size()) r->indexes_in_order = false;
    r->chunks.push_back(c);
    if (r->after_chunk) r->after_chunk(*r);
  };
  cb.on_error = [r](const river::error& e) {
    r->calls.push_back("error");
    r->errors.push_back(e);
  };
  cb.on_fatal_error = [r](const river::error& e) {
    r->calls.push_back("fatal");
    r->fatal = e;
  };
  cb.on_success = [r](const events::end& e) {
    r->calls.push_back("success");
    r->end = e;
  };
  cb.on_abort = [r] { r->calls.push_back("abort"); };
  return cb;
}

// The calls without repeated chunks: "start info chunk* error chunk* success".
template <class Chunk>
std::string shape(const recorded<Chunk>& r) {
  std::string out;
  for (const auto& c : r.calls) {
    if (c == "chunk" && out.size() >= 6 && out.compare(out.size() - 6, 6, "chunk*") == 0) continue;
    if (!out.empty()) out.push_back(' ');
    out.append(c == "chunk" ? "chunk*" : c);
  }
  return out;
}

// Waits until a callback run made its last call, within `limit`.
asio::awaitable<void> wait_finished(const river::http::run_handle& h, std::chrono::milliseconds limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!h.finished() && std::chrono::steady_clock::now() < deadline) co_await pause_ms(1);
  REQUIRE(h.finished());
}

// Waits until `done()` holds, within `limit`.
asio::awaitable<bool> wait_until(std::function<bool()> done, std::chrono::milliseconds limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    co_await pause_ms(1);
  }
  co_return true;
}


// --- TLS ------------------------------------------------------------------------------------------

// A directory of its own under the system's temporary directory, removed with its files.
struct temp_dir {
  temp_dir() {
    auto pattern = (std::filesystem::temp_directory_path() / "river-e2e-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    auto p = path / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  std::filesystem::path path;
};

// Server options for HTTPS with `id`'s certificate and key, written to `dir`.
river::http::server_options tls_options(const temp_dir& dir, const test_identity& id) {
  auto o = test_options();
  o.tls_certificate_file = dir.write("cert.pem", id.cert_pem);
  o.tls_private_key_file = dir.write("key.pem", id.key_pem);
  return o;
}

}  // namespace e2e_test

using namespace e2e_test;

// --- the tests ----------------------------------------------------------------------------------

TEST_CASE("end to end: a run's typed events reach the client as the server stored them", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());
    json input = {{"message", "alpha beta gamma"}, {"delay_ms", 2}};
    auto opened = co_await c.start<text_chunk>("chat", input);
    INFO((opened ? std::string() : opened.error().message));
    REQUIRE(opened.has_value());
    auto& stream = *opened;
    auto got = co_await read_all(stream);
    REQUIRE_FALSE(got.failure);
    const auto& evs = got.events;
    using k = event_kind;
    REQUIRE(river::test::kinds(evs) == std::vector<k>{k::start, k::chunk, k::chunk, k::chunk, k::end});
    CHECK(evs[1].chunk()->text == "alpha");
    CHECK(evs[2].chunk()->text == "beta");
    CHECK(evs[3].chunk()->text == "gamma");
    CHECK(evs[4].get_if<events::end>()->total_chunks == 3u);
    const auto* st = evs[0].get_if<events::start>();
    CHECK(stream.run_id() == st->run_id);
    CHECK(stream.resumption_token() == st->resumption_token);
    REQUIRE_FALSE(st->resumption_token.empty());

    // Event for event, position for position, what the server's provider holds.
    auto stored = co_await stored_events(s.srv.get_caller(), stream.resumption_token());
    CHECK(river::test::texts(evs) == river::test::texts(stored));
    CHECK(positions(evs) == positions(stored));
    CHECK(positions(evs) == std::vector<std::string>{"1", "2", "3", "4", "5"});
    CHECK(stream.position() == "5");
    CHECK(stream.reconnections() == 0u);
    CHECK_FALSE(stream.is_open());
    auto after_end = co_await stream.next();
    CHECK_FALSE(after_end.has_value());

    // The same through async_start and async_next with other completion tokens, untyped.
    json steps = {{"name", "s"}, {"steps", 2}};
    auto [ec, untyped] = co_await c.async_start("steps", steps, asio::as_tuple(asio::use_awaitable));
    REQUIRE_FALSE(ec);
    std::vector<river::event> untyped_events;
    for (;;) {
      auto [nec, ev] = co_await untyped.async_next(asio::as_tuple(asio::use_awaitable));
      REQUIRE_FALSE(nec);
      if (!ev) break;
      untyped_events.push_back(std::move(*ev));
    }
    REQUIRE(untyped_events.size() == 4u);
    CHECK(*untyped_events[1].chunk() == json(make_step("s", 0, 2)));
    CHECK(*untyped_events[2].chunk() == json(make_step("s", 1, 2)));
    co_await s.stop();
  });
}

TEST_CASE("end to end: typed chunks of several fields, and chunks that do not convert", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());
    json input = {{"name", "plan"}, {"steps", 4}};
    auto opened = co_await c.start<step_chunk>("steps", input);
    REQUIRE(opened.has_value());
    auto got = co_await read_all(*opened);
    REQUIRE_FALSE(got.failure);
    REQUIRE(got.events.size() == 6u);
    for (int i = 0; i < 4; ++i) {
      const auto* chunk = got.events[static_cast<std::size_t>(i) + 1].chunk();
      REQUIRE(chunk != nullptr);
      CHECK(*chunk == make_step("plan", i, 4));
    }

    // The same run read as text chunks: each chunk is an error event at its position, and the
    // callbacks report them as errors; nothing is skipped.
    auto as_text = co_await c.resume<text_chunk>(opened->resumption_token());
    REQUIRE(as_text.has_value());
    auto mismatched = co_await read_all(*as_text);
    REQUIRE_FALSE(mismatched.failure);
    using k = event_kind;
    CHECK(river::test::kinds(mismatched.events) ==
          std::vector<k>{k::start, k::error, k::error, k::error, k::error, k::end});
    CHECK(positions(mismatched.events) == positions(got.events));
    CHECK(mismatched.events[1].get_if<events::error>()->value.code == river::errc::malformed_event);

    auto rec = std::make_shared<recorded<text_chunk>>();
    auto h = c.resume(opened->resumption_token(), record(rec));
    co_await wait_finished(h);
    CHECK(shape(*rec) == "start info error error error error success");
    CHECK(rec->errors.size() == 4u);
    co_await s.stop();
  });
}

TEST_CASE("end to end: resume from the start and from a position, coroutines and callbacks", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());
    json input = {{"message", "one two three four"}};
    auto first = co_await c.start<text_chunk>("chat", input);
    REQUIRE(first.has_value());
    auto all = co_await read_all(*first);
    REQUIRE_FALSE(all.failure);
    REQUIRE(all.events.size() == 6u);
    const auto token = first->resumption_token();

    // From the start: the same events at the same positions.
    auto again = co_await c.resume<text_chunk>(token);
    REQUIRE(again.has_value());
    auto replay = co_await read_all(*again);
    CHECK(river::test::texts(replay.events) == river::test::texts(all.events));
    CHECK(positions(replay.events) == positions(all.events));

    // After position 3 (chunk "two"): "three", "four" and the end.
    auto later = co_await c.resume<text_chunk>(token, std::string("3"));
    REQUIRE(later.has_value());
    auto rest = co_await read_all(*later);
    REQUIRE(rest.events.size() == 3u);
    CHECK(rest.events[0].chunk()->text == "three");
    CHECK(rest.events[1].chunk()->text == "four");
    CHECK(rest.events[2].kind() == event_kind::end);
    CHECK(positions(rest.events) == std::vector<std::string>{"4", "5", "6"});

    // After the terminal event: nothing, the stream ends at once without reconnecting. On the
    // wire that is a 204 with no body, on a connection that stays open.
    auto at_end = co_await c.resume<text_chunk>(token, std::string("6"));
    REQUIRE(at_end.has_value());
    auto none = co_await read_all(*at_end);
    INFO((none.failure ? none.failure->message : std::string()));
    CHECK_FALSE(none.failure);
    CHECK(none.events.empty());
    CHECK(at_end->reconnections() == 0u);
    auto raw = co_await exchange(s.ep, get_request("/api/river", token, std::string("6")));
    CHECK(raw.status == 204u);
    CHECK(raw.body.empty());
    CHECK(raw.complete);
    CHECK(raw.keep_alive);

    // Callbacks: from the start (with on_info), and from a position (without it).
    auto from_start = std::make_shared<recorded<text_chunk>>();
    auto h1 = c.resume(token, record(from_start));
    auto from_two = std::make_shared<recorded<text_chunk>>();
    auto h2 = c.resume(token, std::string("2"), record(from_two));
    co_await wait_finished(h1);
    co_await wait_finished(h2);
    CHECK(shape(*from_start) == "start info chunk* success");
    CHECK(from_start->chunks.size() == 4u);
    REQUIRE(from_start->info);
    CHECK(from_start->info->run_id == first->run_id());
    CHECK(shape(*from_two) == "start chunk* success");
    REQUIRE(from_two->chunks.size() == 3u);
    CHECK(from_two->chunks[0].text == "two");
    CHECK(from_two->indexes_in_order);
    REQUIRE(from_two->end);
    CHECK(from_two->end->total_chunks == 4u);
    co_await s.stop();
  });
}

TEST_CASE("end to end: a live run resumed from a position, nothing lost or repeated", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());
    json input = {{"count", 30}, {"delay_ms", 3}};
    auto opened = co_await c.start<tick_chunk>("tick", input);
    REQUIRE(opened.has_value());
    auto head = co_await read_all(*opened, 5);  // the start and four chunks
    REQUIRE(head.events.size() == 5u);
    const auto token = opened->resumption_token();
    const auto position = opened->position();
    CHECK(position == "5");
    opened->close();  // the run goes on at the server

    auto rec = std::make_shared<recorded<tick_chunk>>();
    auto h = c.resume(token, position, record(rec));
    co_await wait_finished(h);
    CHECK(shape(*rec) == "start chunk* success");
    std::vector<int> ns = ticks_of(head.events);
    for (const auto& t : rec->chunks) ns.push_back(t.n);
    CHECK(ns == iota(30));
    co_await s.stop();
  });
}

TEST_CASE("end to end: cancel through the client ends the run with aborted", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());

    // Coroutines: a long run, cancelled after two chunks; the stream ends with `aborted`.
    json input = {{"count", 100000}, {"delay_ms", 5}};
    auto opened = co_await c.start<tick_chunk>("tick", input);
    REQUIRE(opened.has_value());
    auto head = co_await read_all(*opened, 3);
    REQUIRE(head.events.size() == 3u);
    const auto token = opened->resumption_token();
    auto cancelled = co_await c.cancel(token);
    INFO((cancelled ? std::string() : cancelled.error().message));
    REQUIRE(cancelled.has_value());
    auto tail = co_await read_all(*opened);
    REQUIRE_FALSE(tail.failure);
    REQUIRE_FALSE(tail.events.empty());
    CHECK(tail.events.back().kind() == event_kind::aborted);
    CHECK(tail.events.size() < 1000u);
    const auto ns = ticks_of(head.events, tail.events);
    CHECK(ns == iota(static_cast<int>(ns.size())));
    // Everything the client saw is the run's log, which ends there.
    auto stored = co_await stored_events(s.srv.get_caller(), token);
    auto seen = head.events;
    seen.insert(seen.end(), tail.events.begin(), tail.events.end());
    CHECK(river::test::texts(seen) == river::test::texts(stored));

    // A second cancel: the run is over (409, with the server's message).
    auto again = co_await c.cancel(token);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().code == river::http::make_status_error(409));
    CHECK(again.error().context.value("httpStatus", 0) == 409);
    CHECK_FALSE(again.error().message.empty());

    // Callbacks: cancelled from on_chunk with async_cancel and a completion handler; the
    // callbacks end with on_abort.
    auto rec = std::make_shared<recorded<tick_chunk>>();
    error_code cancel_ec = asio::error::would_block;
    bool cancel_done = false;
    rec->after_chunk = [&c, &cancel_ec, &cancel_done](recorded<tick_chunk>& r) {
      if (r.chunks.size() != 2 || !r.info) return;
      c.async_cancel(r.info->resumption_token, [&cancel_ec, &cancel_done](error_code ec) {
        cancel_ec = ec;
        cancel_done = true;
      });
    };
    auto h = c.start("tick", input, record(rec));
    co_await wait_finished(h);
    CHECK(shape(*rec) == "start info chunk* abort");
    CHECK(rec->chunks.size() < 1000u);
    CHECK(cancel_done);
    CHECK_FALSE(cancel_ec);
    CHECK(s.srv.get_caller().stats().runs_aborted == 2u);
    co_await s.stop();
  });
}

TEST_CASE("end to end: fatal errors, thrown or called, end the run and reach the client", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());
    const json nothing = json::object();
    using k = event_kind;

    // The runner throws: "Failed to run runner function", type "stream", the exception as cause.
    auto thrown = co_await c.start<text_chunk>("fail", nothing);
    REQUIRE(thrown.has_value());
    auto t = co_await read_all(*thrown);
    REQUIRE_FALSE(t.failure);
    REQUIRE(river::test::kinds(t.events) == std::vector<k>{k::start, k::chunk, k::fatal_error});
    const auto& boom = t.events[2].get_if<events::fatal_error>()->value;
    CHECK(boom.message == "Failed to run runner function");
    CHECK(boom.type == river::error_type::stream);
    CHECK(boom.cause == "boom");

    // The runner calls fail: its own error, context and all.
    auto called = co_await c.start<text_chunk>("fail_call", nothing);
    REQUIRE(called.has_value());
    auto f = co_await read_all(*called);
    REQUIRE_FALSE(f.failure);
    REQUIRE(river::test::kinds(f.events) == std::vector<k>{k::start, k::chunk, k::fatal_error});
    const auto& quota = f.events[2].get_if<events::fatal_error>()->value;
    CHECK(quota.message == "quota exceeded");
    CHECK(quota.type == river::error_type::custom);
    CHECK(quota.context == json{{"limit", 3}});
    auto stored = co_await stored_events(s.srv.get_caller(), called->resumption_token());
    CHECK(river::test::texts(f.events) == river::test::texts(stored));

    // Callbacks: on_fatal_error, never on_success.
    auto r1 = std::make_shared<recorded<text_chunk>>();
    auto r2 = std::make_shared<recorded<text_chunk>>();
    auto h1 = c.start("fail", nothing, record(r1));
    auto h2 = c.start("fail_call", nothing, record(r2));
    co_await wait_finished(h1);
    co_await wait_finished(h2);
    CHECK(shape(*r1) == "start info chunk* fatal");
    CHECK(shape(*r2) == "start info chunk* fatal");
    REQUIRE(r1->fatal);
    REQUIRE(r2->fatal);
    CHECK(*r1->fatal == boom);
    CHECK(*r2->fatal == quota);
    CHECK(r2->chunks == std::vector<text_chunk>{text_chunk{"before"}});
    co_await s.stop();
  });
}

TEST_CASE("end to end: a non-fatal error reaches the client and the run goes on", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());
    const json nothing = json::object();
    auto opened = co_await c.start<text_chunk>("warn", nothing);
    REQUIRE(opened.has_value());
    auto got = co_await read_all(*opened);
    REQUIRE_FALSE(got.failure);
    using k = event_kind;
    REQUIRE(river::test::kinds(got.events) == std::vector<k>{k::start, k::chunk, k::error, k::chunk, k::end});
    const auto& careful = got.events[2].get_if<events::error>()->value;
    CHECK(careful.message == "careful");
    CHECK(careful.type == river::error_type::custom);
    CHECK(careful.context == json{{"step", 1}});
    CHECK(got.events[4].get_if<events::end>()->total_chunks == 2u);

    auto rec = std::make_shared<recorded<text_chunk>>();
    auto h = c.start("warn", nothing, record(rec));
    co_await wait_finished(h);
    CHECK(rec->calls == std::vector<std::string>{"start", "info", "chunk", "error", "chunk", "success"});
    CHECK(rec->indexes_in_order);
    REQUIRE(rec->errors.size() == 1u);
    CHECK(rec->errors[0] == careful);
    co_await s.stop();
  });
}

TEST_CASE("end to end: the server's error statuses become clear river errors", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router());
    river::http::client c(io.get_executor(), s.url(), fast_options());
    const json nothing = json::object();

    // Unknown stream: 404, the server's message and context.
    auto unknown = co_await c.start("nope", nothing);
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().code == river::http::make_status_error(404));
    CHECK(unknown.error().message == "Stream not found");
    CHECK(unknown.error().context.value("routerStreamKey", "") == "nope");
    CHECK(unknown.error().context.value("httpStatus", 0) == 404);

    // Invalid input: 400, type "validation", the field named (mistyped, then missing).
    json mistyped = {{"message", 42}};
    auto bad = co_await c.start<text_chunk>("chat", mistyped);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == river::http::make_status_error(400));
    CHECK(bad.error().type == river::error_type::validation);
    CHECK(bad.error().context.value("field", "") == "message");
    CHECK(bad.error().context.value("httpStatus", 0) == 400);
    json missing = {{"steps", 1}};
    auto bad2 = co_await c.start<step_chunk>("steps", missing);
    REQUIRE_FALSE(bad2.has_value());
    CHECK(bad2.error().type == river::error_type::validation);
    CHECK(bad2.error().context.value("field", "") == "name");

    // Tokens: malformed (400), unknown run (404), a position past the run's end (400).
    auto malformed = co_await c.resume("not a token");
    REQUIRE_FALSE(malformed.has_value());
    CHECK(malformed.error().code == river::http::make_status_error(400));
    river::resumption_token t{"memory", "chat", "default", "no-such-run", ""};
    auto unknown_run = co_await c.resume(river::encode_token(t));
    REQUIRE_FALSE(unknown_run.has_value());
    CHECK(unknown_run.error().code == river::http::make_status_error(404));
    CHECK(unknown_run.error().message == "Run not found");
    auto cancel_unknown = co_await c.cancel(river::encode_token(t));
    REQUIRE_FALSE(cancel_unknown.has_value());
    CHECK(cancel_unknown.error().code == river::http::make_status_error(404));
    json two = {{"message", "a b"}};
    auto run = co_await c.start<text_chunk>("chat", two);
    REQUIRE(run.has_value());
    auto done = co_await read_all(*run);
    REQUIRE_FALSE(done.failure);
    auto past_end = co_await c.resume(run->resumption_token(), std::string("99"));
    REQUIRE_FALSE(past_end.has_value());
    CHECK(past_end.error().code == river::http::make_status_error(400));

    // Callbacks: the same error through on_fatal_error, after on_start.
    auto rec = std::make_shared<recorded<text_chunk>>();
    auto h = c.start("chat", mistyped, record(rec));
    co_await wait_finished(h);
    CHECK(shape(*rec) == "start fatal");
    REQUIRE(rec->fatal);
    CHECK(rec->fatal->code == river::http::make_status_error(400));
    CHECK(rec->fatal->context.value("field", "") == "message");
    co_await s.stop();
  });
}

TEST_CASE("end to end: signed tokens resume, tampered ones are refused with 403", "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto o = test_options();
    o.token_secret = "e2e secret";
    e2e_server s(io, e2e_router(), o);
    river::http::client c(io.get_executor(), s.url(), fast_options());
    json input = {{"message", "x y"}};
    auto opened = co_await c.start<text_chunk>("chat", input);
    REQUIRE(opened.has_value());
    auto all = co_await read_all(*opened);
    REQUIRE_FALSE(all.failure);
    const auto token = opened->resumption_token();
    auto decoded = river::decode_token(token);
    REQUIRE(decoded.has_value());
    CHECK_FALSE(decoded->signature.empty());

    // The signed token resumes (escaped in the query: base64 may hold '+', '/' and '=').
    auto again = co_await c.resume<text_chunk>(token);
    REQUIRE(again.has_value());
    auto replay = co_await read_all(*again);
    CHECK(river::test::texts(replay.events) == river::test::texts(all.events));

    const std::vector<std::string> tampered = {
        tamper(token, [](json& j) { j["streamStorageId"] = "other"; }),
        tamper(token, [](json& j) { j["streamRunId"] = "another-run"; }),
        tamper(token, [](json& j) { j.erase("sig"); }),
    };
    for (const auto& bad : tampered) {
      auto r = co_await c.resume(bad);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code == river::http::make_status_error(403));
      CHECK(r.error().context.value("httpStatus", 0) == 403);
      CHECK_FALSE(r.error().message.empty());
      auto d = co_await c.cancel(bad);
      REQUIRE_FALSE(d.has_value());
      CHECK(d.error().code == river::http::make_status_error(403));
      auto rec = std::make_shared<recorded<text_chunk>>();
      auto h = c.resume(bad, record(rec));
      co_await wait_finished(h);
      CHECK(shape(*rec) == "start fatal");
      REQUIRE(rec->fatal);
      CHECK(rec->fatal->code == river::http::make_status_error(403));
    }
    co_await s.stop();
  });
}

TEST_CASE("end to end: 500 clients read event streams at once", "[http][e2e][load]") {
  raise_fd_limit();
  rlimit l{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &l) == 0);
  INFO("the open-file limit (" << l.rlim_cur << ") must allow 500 clients and 500 server connections");
  REQUIRE(l.rlim_cur >= 1100);
  run_bounded(
      [](asio::io_context& io) -> asio::awaitable<void> {
        constexpr int clients = 500;
        constexpr int count = 20;
        auto g = std::make_shared<gate>(io.get_executor());
        e2e_server s(io, e2e_router(nullptr, g));
        river::http::client c(io.get_executor(), s.url(), fast_options());

        // Half read with coroutines, half with callbacks; each starts a run of its own.
        struct coroutine_client {
          bool started = false;  // chunk 0 arrived
          bool finished = false;
          std::vector<int> ns;
          std::optional<events::end> end;
          std::string failure;
          std::size_t reconnections = 0;
        };
        auto readers = std::make_shared<std::vector<coroutine_client>>(clients / 2);
        json input = {{"count", count}};
        for (std::size_t i = 0; i < readers->size(); ++i) {
          asio::co_spawn(
              io,
              [readers, i, &c, input]() -> asio::awaitable<void> {
                auto& me = (*readers)[i];
                auto opened = co_await c.start<tick_chunk>("gated", input);
                if (!opened) {
                  me.failure = opened.error().message;
                  me.finished = true;
                  co_return;
                }
                for (;;) {
                  auto r = co_await opened->try_next();
                  if (!r) {
                    me.failure = r.error().message;
                    break;
                  }
                  if (!*r) break;
                  if (auto t = (*r)->chunk()) {
                    me.ns.push_back(t->n);
                    me.started = true;
                  }
                  if (auto e = (*r)->get_if<events::end>()) me.end = *e;
                }
                me.reconnections = opened->reconnections();
                me.finished = true;
              },
              asio::detached);
        }
        std::vector<std::shared_ptr<recorded<tick_chunk>>> recs;
        std::vector<river::http::run_handle> handles;
        for (int i = 0; i < clients / 2; ++i) {
          recs.push_back(std::make_shared<recorded<tick_chunk>>());
          handles.push_back(c.start("gated", input, record(recs.back())));
        }

        // Every client holds its stream open at once: each has chunk 0, none has more.
        auto all_started = co_await wait_until(
            [&] {
              for (auto& r : *readers)
                if (!r.started && !r.finished) return false;
              for (auto& r : recs)
                if (r->chunks.empty() && !r->fatal) return false;
              return true;
            },
            60s);
        REQUIRE(all_started);
        CHECK(s.srv.get_handler().open_streams() == static_cast<std::size_t>(clients));
        CHECK(s.srv.open_connections() == static_cast<std::size_t>(clients));
        g->open();

        auto all_finished = co_await wait_until(
            [&] {
              for (auto& r : *readers)
                if (!r.finished) return false;
              for (auto& h : handles)
                if (!h.finished()) return false;
              return true;
            },
            60s);
        REQUIRE(all_finished);
        std::size_t good = 0;
        for (auto& r : *readers) {
          INFO(r.failure);
          const bool ok = r.failure.empty() && r.ns == iota(count) && r.end && r.end->total_chunks == count &&
                          r.reconnections == 0;
          CHECK(ok);
          good += ok ? 1 : 0;
        }
        for (auto& r : recs) {
          const bool ok = shape(*r) == "start info chunk* success" && r->chunks.size() == count &&
                          r->indexes_in_order && r->chunks.back().n == count - 1;
          CHECK(ok);
          good += ok ? 1 : 0;
        }
        CHECK(good == static_cast<std::size_t>(clients));
        CHECK(s.srv.get_caller().stats().runs_ended == static_cast<std::uint64_t>(clients));
        co_await s.stop();
      },
      120s);
}

TEST_CASE("end to end: the client resumes across connections cut at every byte of a response", "[http][e2e]") {
  run_bounded(
      [](asio::io_context& io) -> asio::awaitable<void> {
        e2e_server s(io, e2e_router());
        river::http::client direct(io.get_executor(), s.url(), fast_options());
        json input = {{"message", "cut me anywhere you like"}};
        auto opened = co_await direct.start<text_chunk>("chat", input);
        REQUIRE(opened.has_value());
        auto whole = co_await read_all(*opened);
        REQUIRE_FALSE(whole.failure);
        REQUIRE(whole.events.size() == 7u);
        const auto token = opened->resumption_token();

        // The whole response, as the proxy sees it.
        std::size_t total = 0;
        std::size_t head = 0;
        {
          cutting_proxy measure(io.get_executor(), {s.ep}, {});
          river::http::client c(io.get_executor(), measure.url(), fast_options());
          auto r = co_await c.resume<text_chunk>(token);
          REQUIRE(r.has_value());
          auto got = co_await read_all(*r);
          REQUIRE_FALSE(got.failure);
          REQUIRE(measure.connections() == 1u);
          const auto& answer = measure.answer(0);
          head = answer.find("\r\n\r\n") + 4;
          total = answer.size();
          REQUIRE(head > 4);
          REQUIRE(total > head);
        }

        // From the start, and from a position: the first response is cut after `cut` bytes (past
        // its header), the second goes through. The client delivers every event exactly once.
        for (const std::optional<std::string>& from : {std::optional<std::string>(), std::optional<std::string>("2")}) {
          const std::size_t skip = from ? 2 : 0;
          for (std::size_t cut = head; cut < total; ++cut) {
            INFO("cut after " << cut << " of " << total << " bytes, resumed from " << from.value_or("the start"));
            cutting_proxy proxy(io.get_executor(), {s.ep}, {cut});
            river::http::client c(io.get_executor(), proxy.url(), fast_options());
            auto r = co_await c.resume<text_chunk>(token, from);
            REQUIRE(r.has_value());
            auto got = co_await read_all(*r);
            INFO((got.failure ? got.failure->message : std::string()));
            REQUIRE_FALSE(got.failure);
            std::vector<river::basic_event<text_chunk>> want(whole.events.begin() + static_cast<long>(skip),
                                                             whole.events.end());
            REQUIRE(river::test::texts(got.events) == river::test::texts(want));
            // Positions: each event's own, except one whose position the cut took away.
            std::size_t unpositioned = 0;
            for (std::size_t i = 0; i < got.events.size(); ++i) {
              if (got.events[i].position.empty())
                ++unpositioned;
              else
                CHECK(got.events[i].position == want[i].position);
            }
            CHECK(unpositioned <= 1u);
            if (got.events.back().position.empty()) {
              // Cut between the terminal event and its id: the run is over, nothing to resume.
              CHECK(r->position().empty());
              CHECK(r->reconnections() == 0u);
            } else {
              CHECK(r->position() == "7");
            }
            CHECK(r->reconnections() <= 1u);
            if (r->reconnections() == 1) {
              REQUIRE(proxy.connections() == 2u);
              CHECK(proxy.was_cut(0));
              const auto last_id = proxy.header(1, "Last-Event-ID");
              if (last_id.empty()) {
                CHECK_FALSE(from);  // no position yet: a replay from the start
              } else {
                CHECK(std::stoi(last_id) >= (from ? 2 : 1));
              }
            }
          }
        }
        co_await s.stop();
      },
      120s);
}

TEST_CASE("end to end: a live run read through repeated cuts arrives whole, coroutines and callbacks",
          "[http][e2e]") {
  run_bounded(
      [](asio::io_context& io) -> asio::awaitable<void> {
        e2e_server s(io, e2e_router());
        // Each of the first 30 connections carries about ten events, then is cut.
        std::vector<std::size_t> cuts(30, 700);
        json input = {{"count", 60}, {"delay_ms", 2}};
        {
          cutting_proxy proxy(io.get_executor(), {s.ep}, cuts);
          river::http::client c(io.get_executor(), proxy.url(), fast_options());
          auto opened = co_await c.start<tick_chunk>("tick", input);
          REQUIRE(opened.has_value());
          auto got = co_await read_all(*opened);
          INFO((got.failure ? got.failure->message : std::string()));
          REQUIRE_FALSE(got.failure);
          CHECK(ticks_of(got.events) == iota(60));
          CHECK(got.events.front().kind() == event_kind::start);
          CHECK(got.events.back().kind() == event_kind::end);
          CHECK(opened->reconnections() >= 3u);
          CHECK(opened->reconnections() + 1 == proxy.connections());
          // The first request starts the run; every later one resumes it after a position that
          // grows from one request to the next.
          CHECK(proxy.request_line(0) == "POST /api/river HTTP/1.1");
          int last = 0;
          for (std::size_t i = 1; i < proxy.connections(); ++i) {
            CHECK(proxy.request_line(i).rfind("GET /api/river?resumeKey=", 0) == 0);
            const auto id = proxy.header(i, "Last-Event-ID");
            REQUIRE_FALSE(id.empty());
            CHECK(std::stoi(id) > last);
            last = std::stoi(id);
          }
          auto stored = co_await stored_events(s.srv.get_caller(), opened->resumption_token());
          CHECK(river::test::texts(got.events) == river::test::texts(stored));
        }
        {
          cutting_proxy proxy(io.get_executor(), {s.ep}, cuts);
          river::http::client c(io.get_executor(), proxy.url(), fast_options());
          auto rec = std::make_shared<recorded<tick_chunk>>();
          auto h = c.start("tick", input, record(rec));
          co_await wait_finished(h, 30s);
          CHECK(shape(*rec) == "start info chunk* success");
          std::vector<int> ns;
          for (const auto& t : rec->chunks) ns.push_back(t.n);
          CHECK(ns == iota(60));
          CHECK(rec->indexes_in_order);
          CHECK(proxy.connections() >= 4u);
        }
        co_await s.stop();
      },
      60s);
}

TEST_CASE("end to end: a stream the server closes is resumed on another server sharing the provider",
          "[http][e2e]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto shared = std::make_shared<river::memory::provider>();
    e2e_server a(io, e2e_router(shared));
    e2e_server b(io, e2e_router(shared));
    // The first connection goes to server a, the others to server b.
    cutting_proxy proxy(io.get_executor(), {a.ep, b.ep}, {});
    river::http::client c(io.get_executor(), proxy.url(), fast_options());
    json input = {{"count", 40}, {"delay_ms", 5}};
    auto opened = co_await c.start<tick_chunk>("tick", input);
    REQUIRE(opened.has_value());
    auto head = co_await read_all(*opened, 6);
    REQUIRE(head.events.size() == 6u);
    // Server a cuts its event streams (no last chunk): the client resumes; the run goes on there.
    a.srv.get_handler().close_streams();
    auto rest = co_await read_all(*opened);
    INFO((rest.failure ? rest.failure->message : std::string()));
    REQUIRE_FALSE(rest.failure);
    const auto ns = ticks_of(head.events, rest.events);
    CHECK(ns == iota(40));
    CHECK(rest.events.back().kind() == event_kind::end);
    CHECK(opened->reconnections() == 1u);
    REQUIRE(proxy.connections() == 2u);
    CHECK_FALSE(proxy.was_cut(0));
    CHECK(std::stoi(proxy.header(1, "Last-Event-ID")) >= 6);
    CHECK(a.srv.get_caller().stats().runs_ended == 1u);
    CHECK(b.srv.get_caller().stats().runs_started == 0u);
    co_await b.stop();
    co_await a.stop();
  });
}

TEST_CASE("end to end: a reader's server shuts down mid-run, the client resumes on the run's own server",
          "[http][e2e][shutdown]") {
  run_bounded([](asio::io_context& io) -> asio::awaitable<void> {
    auto shared = std::make_shared<river::memory::provider>();
    e2e_server reader_side(io, e2e_router(shared));
    e2e_server owner(io, e2e_router(shared));
    river::http::client direct(io.get_executor(), owner.url(), fast_options());
    json input = {{"count", 51}, {"delay_ms", 5}};
    auto started = co_await direct.start<tick_chunk>("tick", input);
    REQUIRE(started.has_value());
    auto first = co_await read_all(*started, 1);  // the start event, which carries the token
    REQUIRE(first.events.size() == 1u);
    const auto token = started->resumption_token();
    REQUIRE_FALSE(token.empty());
    // The reader's first connection goes to the server that shuts down, the others to the owner.
    cutting_proxy proxy(io.get_executor(), {reader_side.ep, owner.ep}, {});
    river::http::client c(io.get_executor(), proxy.url(), fast_options());
    auto opened = co_await c.resume<tick_chunk>(token);
    INFO((opened ? std::string() : opened.error().message));
    REQUIRE(opened.has_value());
    auto head = co_await read_all(*opened, 7);
    REQUIRE(head.events.size() == 7u);
    co_await reader_side.stop();
    auto rest = co_await read_all(*opened);
    INFO((rest.failure ? rest.failure->message : std::string()));
    REQUIRE_FALSE(rest.failure);
    const auto ns = ticks_of(head.events, rest.events);
    CHECK(ns == iota(51));
    CHECK(rest.events.back().kind() == event_kind::end);
    CHECK(opened->reconnections() == 1u);
    REQUIRE(proxy.connections() == 2u);
    CHECK(owner.srv.get_caller().stats().runs_ended == 1u);
    auto all = co_await read_all(*started);
    CHECK_FALSE(all.failure);
    co_await owner.stop();
  });
}

TEST_CASE("end to end: https with a certificate made at run time, resumed across a cut", "[http][e2e][tls]") {
  auto ca = make_test_ca();
  auto id = make_test_server(ca, "IP:127.0.0.1,DNS:localhost");
  temp_dir dir;
  run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
    e2e_server s(io, e2e_router(), tls_options(dir, id));
    REQUIRE(s.srv.tls());
    auto o = fast_options();
    o.tls_context = trusting(ca);
    for (const std::string host : {"127.0.0.1", "localhost"}) {
      INFO(host);
      river::http::client c(io.get_executor(), s.url("https", host), o);
      json input = {{"message", "over tls"}};
      auto opened = co_await c.start<text_chunk>("chat", input);
      INFO((opened ? std::string() : opened.error().message));
      REQUIRE(opened.has_value());
      auto got = co_await read_all(*opened);
      REQUIRE_FALSE(got.failure);
      REQUIRE(got.events.size() == 4u);
      CHECK(got.events[2].chunk()->text == "tls");
      auto stored = co_await stored_events(s.srv.get_caller(), opened->resumption_token());
      CHECK(river::test::texts(got.events) == river::test::texts(stored));
      CHECK(positions(got.events) == positions(stored));
    }

    // A live run whose TLS connections are cut mid-stream: resumed, whole, over TLS.
    cutting_proxy proxy(io.get_executor(), {s.ep}, std::vector<std::size_t>(20, 2500));
    river::http::client c(io.get_executor(), proxy.url("https"), o);
    json input = {{"count", 60}, {"delay_ms", 2}};
    auto opened = co_await c.start<tick_chunk>("tick", input);
    REQUIRE(opened.has_value());
    auto got = co_await read_all(*opened);
    INFO((got.failure ? got.failure->message : std::string()));
    REQUIRE_FALSE(got.failure);
    CHECK(ticks_of(got.events) == iota(60));
    CHECK(opened->reconnections() >= 1u);

    // Callbacks over TLS.
    river::http::client direct(io.get_executor(), s.url("https"), o);
    auto rec = std::make_shared<recorded<text_chunk>>();
    json warn = json::object();
    auto h = direct.start("warn", warn, record(rec));
    co_await wait_finished(h);
    CHECK(shape(*rec) == "start info chunk* error chunk* success");
    co_await s.stop();
  });
}

TEST_CASE("end to end: https refuses a server certificate that does not verify", "[http][e2e][tls]") {
  auto ca = make_test_ca();
  for (auto& v : unverifiable_servers(ca)) {
    INFO(v.name);
    temp_dir dir;
    run_bounded([&](asio::io_context& io) -> asio::awaitable<void> {
      e2e_server s(io, e2e_router(), tls_options(dir, v.server));
      auto o = fast_options();
      o.tls_context = v.client;
      river::http::client c(io.get_executor(), s.url("https", v.host), o);
      const auto expected = "TLS handshake with " + v.host + ":" + std::to_string(s.ep.port()) + " failed (" +
                            v.reason + "): certificate verify failed";
      json input = {{"message", "secret"}};
      auto r = co_await c.start<text_chunk>("chat", input);
      REQUIRE_FALSE(r.has_value());
      INFO(r.error().message);
      CHECK(r.error().code.category() == asio::error::get_ssl_category());
      CHECK(r.error().type == river::error_type::network);
      CHECK(r.error().message.rfind(expected, 0) == 0);

      auto rec = std::make_shared<recorded<text_chunk>>();
      auto h = c.start("chat", input, record(rec));
      co_await wait_finished(h);
      CHECK(shape(*rec) == "start fatal");
      REQUIRE(rec->fatal);
      CHECK(rec->fatal->message.rfind(expected, 0) == 0);

      // Nothing reached the server's endpoint: no run started.
      CHECK(s.srv.get_caller().stats().runs_started == 0u);
      co_await s.stop();
    });
  }
}
