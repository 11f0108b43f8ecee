#include <river/redis/detail/multiplexer.hpp>

#include <river/redis/error.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace redis = river::redis;
using redis::detail::multiplexer;
using redis::detail::mux_entry;
using event = multiplexer::event;

namespace {

redis::request command(std::initializer_list<std::string_view> args) {
  redis::request r;
  r.push(args);
  return r;
}

// The bytes of one write, its pieces joined.
std::string written(multiplexer& m) {
  std::string bytes;
  for (auto piece : m.prepare_write()) bytes += piece;
  return bytes;
}

// Feeds `wire` split at `cut` and collects every event, in order, as text.
std::vector<std::string> run(multiplexer& m, const std::string& wire, std::size_t cut,
                             const std::vector<mux_entry*>& entries) {
  std::vector<std::string> out;
  auto drain = [&] {
    for (;;) {
      event ev;
      REQUIRE(!m.next(ev));
      if (ev.type == event::kind::none) break;
      if (ev.type == event::kind::push) {
        out.push_back("push " + redis::to_string(ev.message));
        continue;
      }
      std::string text = "done " + std::to_string(std::find(entries.begin(), entries.end(), ev.entry) - entries.begin());
      for (const auto& v : ev.entry->replies) text += " " + redis::to_string(v);
      out.push_back(text);
    }
  };
  REQUIRE(!m.feed(wire.data(), cut));
  drain();
  REQUIRE(!m.feed(wire.data() + cut, wire.size() - cut));
  drain();
  return out;
}

}  // namespace

TEST_CASE("multiplexer: requests leave in one write, in order, and move to in flight") {
  multiplexer m;
  mux_entry a, b, c;
  CHECK_FALSE(m.has_pending_write());
  REQUIRE(m.add(command({"SET", "k", "v"}), a));
  redis::request two;
  two.push({"INCR", "n"});
  two.push({"GET", "k"});
  REQUIRE(m.add(two, b));
  CHECK(b.expected == 2);
  CHECK(m.waiting() == 2);
  const auto pieces = m.prepare_write();
  REQUIRE(pieces.size() == 1);  // copied requests lie next to each other: one piece
  CHECK(pieces[0] == command({"SET", "k", "v"}).payload() + two.payload());
  CHECK(m.waiting() == 0);
  CHECK(m.in_flight() == 2);
  CHECK(m.oldest_in_flight() == &a);
  REQUIRE(m.add(command({"PING"}), c));
  CHECK(written(m) == command({"PING"}).payload());
  // A request with no command expects nothing and is not queued.
  mux_entry none;
  CHECK_FALSE(m.add(redis::request{}, none));
}

TEST_CASE("multiplexer: replies are matched to requests in order, whatever the split of the bytes") {
  const std::string wire = "+OK\r\n:7\r\n$1\r\nv\r\n*2\r\n$5\r\nsmess\r\n:1\r\n-ERR no\r\n";
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    INFO("cut at " << cut);
    multiplexer m;
    mux_entry a, b, c, d;
    redis::request two;
    two.push({"INCR", "n"});
    two.push({"GET", "k"});
    m.add(command({"SET", "k", "v"}), a);
    m.add(two, b);
    m.add(command({"LRANGE", "l", "0", "1"}), c);
    m.add(command({"BAD"}), d);
    (void)m.prepare_write();
    auto events = run(m, wire, cut, {&a, &b, &c, &d});
    CHECK(events == std::vector<std::string>{"done 0 \"OK\"", "done 1 7 \"v\"", "done 2 [\"smess\", 1]",
                                             "done 3 (error) ERR no"});
    CHECK(m.in_flight() == 0);
  }
}

TEST_CASE("multiplexer: on a subscriber, pushed messages are told from replies, at any split") {
  const std::string wire =
      "*3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n"
      "*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$1\r\n1\r\n"
      "*3\r\n$10\r\nssubscribe\r\n$2\r\nc2\r\n:2\r\n"
      "*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\ny\r\n"
      "*2\r\n$4\r\npong\r\n$0\r\n\r\n";
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    INFO("cut at " << cut);
    multiplexer m;
    m.detect_pushes(true);
    mux_entry sub, ping;
    m.add(command({"SSUBSCRIBE", "ch", "c2"}), sub);
    CHECK(sub.expected == 2);
    m.add(command({"PING"}), ping);
    (void)m.prepare_write();
    auto events = run(m, wire, cut, {&sub, &ping});
    CHECK(events == std::vector<std::string>{
                        "push [\"smessage\", \"ch\", \"1\"]",
                        "done 0 [\"ssubscribe\", \"ch\", 1] [\"ssubscribe\", \"c2\", 2]",
                        "push [\"message\", \"x\", \"y\"]",
                        "done 1 [\"pong\", \"\"]"});
  }
}

TEST_CASE("multiplexer: on a subscriber, an sunsubscribe nobody asked for is a push, at any split") {
  // A cluster node drops channel `moved` (its slot left the node) while the subscriber waits for
  // a PING and then for its own SUNSUBSCRIBE of `mine`: the first and the third are the node's.
  const std::string wire =
      "*3\r\n$12\r\nsunsubscribe\r\n$5\r\nmoved\r\n:3\r\n"
      "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
      "*3\r\n$12\r\nsunsubscribe\r\n$6\r\nother1\r\n:2\r\n"
      "*3\r\n$12\r\nsunsubscribe\r\n$4\r\nmine\r\n:1\r\n";
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    INFO("cut at " << cut);
    multiplexer m;
    m.detect_pushes(true);
    mux_entry ping, unsub;
    m.add(command({"PING"}), ping);
    m.add(command({"SUNSUBSCRIBE", "mine"}), unsub);
    CHECK(unsub.unsubscribing == std::vector<std::string>{"mine"});
    (void)m.prepare_write();
    auto events = run(m, wire, cut, {&ping, &unsub});
    CHECK(events == std::vector<std::string>{
                        "push [\"sunsubscribe\", \"moved\", 3]",
                        "done 0 [\"pong\", \"\"]",
                        "push [\"sunsubscribe\", \"other1\", 2]",
                        "done 1 [\"sunsubscribe\", \"mine\", 1]"});
  }
}

TEST_CASE("multiplexer: without push detection an sunsubscribe is a reply like any other") {
  multiplexer m;
  mux_entry unsub;
  m.add(command({"SUNSUBSCRIBE", "a"}), unsub);
  CHECK(unsub.unsubscribing.empty());
  (void)m.prepare_write();
  auto events = run(m, "*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:0\r\n", 3, {&unsub});
  CHECK(events == std::vector<std::string>{"done 0 [\"sunsubscribe\", \"a\", 0]"});
}

TEST_CASE("multiplexer: a reply that nobody waits for, or bytes that are not RESP, break it") {
  {
    multiplexer m;
    REQUIRE(!m.feed("+OK\r\n", 5));
    event ev;
    CHECK(m.next(ev) == redis::error::protocol_error);
  }
  {
    multiplexer m;
    mux_entry a;
    m.add(command({"PING"}), a);
    (void)m.prepare_write();
    REQUIRE(!m.feed("?x\r\n", 4));
    event ev;
    CHECK(m.next(ev) == redis::error::protocol_error);
  }
  {
    multiplexer m(8);
    CHECK(m.feed("$100\r\nxxxxxxxxxx", 16) == redis::error::read_buffer_exceeded);
  }
}

TEST_CASE("multiplexer: a lost connection hands back what was in flight and what waits, and starts over") {
  multiplexer m;
  mux_entry a, b, c;
  m.add(command({"GET", "a"}), a);
  m.add(command({"GET", "b"}), b);
  (void)m.prepare_write();
  m.add(command({"GET", "c"}), c);
  REQUIRE(!m.feed("$1\r\n", 4));  // half a reply
  auto flying = m.reset_in_flight();
  CHECK(flying == std::deque<mux_entry*>{&a, &b});
  CHECK(m.waiting() == 1);
  // The next connection writes what waits, and parses from scratch.
  CHECK(written(m) == command({"GET", "c"}).payload());
  REQUIRE(!m.feed("$1\r\nc\r\n", 7));
  event ev;
  REQUIRE(!m.next(ev));
  CHECK(ev.type == event::kind::done);
  CHECK(ev.entry == &c);
  auto queued = m.reset_waiting();
  CHECK(queued.empty());
}

TEST_CASE("multiplexer: referenced requests are written from where they are, in order with copied ones") {
  multiplexer m;
  using bytes = multiplexer::bytes;
  const auto a = command({"SET", "a", "1"}), b = command({"XADD", "k", "1-1", "item", "{}"}), c = command({"GET", "a"}),
             d = command({"GET", "b"}), e = command({"PING"});
  mux_entry ea, eb, ec, ed, ee;
  m.add(a, ea);
  m.add(b, eb, multiplexer::clock::now(), bytes::referenced);
  m.add(c, ec);
  m.add(d, ed);
  m.add(e, ee, multiplexer::clock::now(), bytes::referenced);
  const auto pieces = m.prepare_write();
  REQUIRE(pieces.size() == 4);
  CHECK(pieces[0] == a.payload());
  CHECK(pieces[1].data() == b.payload().data());  // not a copy
  CHECK(pieces[1] == b.payload());
  CHECK(pieces[2] == c.payload() + d.payload());  // copied ones next to each other join
  CHECK(pieces[3].data() == e.payload().data());
  CHECK(m.in_flight() == 5);
  CHECK(m.oldest_in_flight() == &ea);

  // Expiring waiting requests drops their copied bytes only; what stays is written in order.
  const auto later = multiplexer::clock::now() + std::chrono::seconds(1);
  mux_entry fa, fb, fc;
  m.add(a, fa, multiplexer::clock::now());
  m.add(b, fb, multiplexer::clock::now(), bytes::referenced);
  m.add(c, fc, later);
  CHECK(m.expire_waiting(later) == std::deque<mux_entry*>{&fa, &fb});
  CHECK(m.oldest_waiting() == &fc);
  CHECK(written(m) == c.payload());

  // A lost connection hands back waiting referenced requests like copied ones.
  mux_entry ga;
  m.add(b, ga, multiplexer::clock::now(), bytes::referenced);
  CHECK(m.reset_waiting() == std::deque<mux_entry*>{&ga});
  CHECK_FALSE(m.has_pending_write());
}
