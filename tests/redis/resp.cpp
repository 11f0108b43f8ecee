#include <river/redis/detail/resp.hpp>
#include <river/redis/detail/stream_entry.hpp>
#include <river/redis/config.hpp>
#include <river/redis/request.hpp>

#include <catch2/catch.hpp>

using river::redis::value;
using river::redis::detail::reply_parser;
namespace redis = river::redis;

namespace {

value str(std::string s) {
  value v;
  v.type = value::kind::string;
  v.text = std::move(s);
  return v;
}
value arr(std::vector<value> e) {
  value v;
  v.type = value::kind::array;
  v.elements = std::move(e);
  return v;
}
value integer(std::int64_t i) {
  value v;
  v.type = value::kind::integer;
  v.integer = i;
  return v;
}

// Parses `wire` fed in two pieces split at `split`, returning every reply.
std::vector<value> parse_split(const std::string& wire, std::size_t split) {
  reply_parser p;
  std::vector<value> out;
  auto drain = [&] {
    for (;;) {
      std::optional<value> v;
      REQUIRE(!p.next(v));
      if (!v) break;
      out.push_back(std::move(*v));
    }
  };
  REQUIRE(!p.feed(wire.data(), split));
  drain();
  REQUIRE(!p.feed(wire.data() + split, wire.size() - split));
  drain();
  CHECK(p.buffered() == 0);
  return out;
}

}  // namespace

TEST_CASE("redis request: commands are encoded as RESP arrays of bulk strings, binary safe") {
  redis::request r;
  CHECK(r.empty());
  r.push({"SET", "k", std::string_view("a\0b\r\n", 5)});
  r.push({"PING"});
  CHECK(r.commands() == 2);
  CHECK(r.expected_replies() == 2);
  CHECK(r.payload() == std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0b\r\n\r\n*1\r\n$4\r\nPING\r\n", 45));
  r.clear();
  CHECK(r.commands() == 0);
  CHECK(r.payload().empty());
  CHECK_THROWS_AS(r.push(std::span<const std::string_view>()), std::invalid_argument);
  // Pub/sub commands answer once per channel.
  r.push({"SSUBSCRIBE", "a", "b", "c"});
  r.push({"sunsubscribe", "a"});
  CHECK(r.commands() == 2);
  CHECK(r.expected_replies() == 4);
}

TEST_CASE("redis reply parser: every reply type, whatever the split of the input") {
  const std::string wire =
      "+OK\r\n-WRONGTYPE Operation against a key\r\n:42\r\n:-7\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n$0\r\n\r\n"
      "*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$4\r\nitem\r\n$2\r\n{}\r\n:1\r\n*0\r\n";
  value ok;
  ok.type = value::kind::status;
  ok.text = "OK";
  value err;
  err.type = value::kind::error;
  err.text = "WRONGTYPE Operation against a key";
  const std::vector<value> expected = {
      ok, err, integer(42), integer(-7), str("he\r\no"), value{}, value{}, str(""),
      arr({arr({str("1-1"), arr({str("item"), str("{}")})}), integer(1)}), arr({})};
  for (std::size_t split = 0; split <= wire.size(); ++split) {
    INFO("split at " << split);
    auto got = parse_split(wire, split);
    REQUIRE(got == expected);
  }
  CHECK(redis::to_string(expected[8]) == R"([["1-1", ["item", "{}"]], 1])");
  CHECK(redis::to_string(expected[1]) == "(error) WRONGTYPE Operation against a key");
  CHECK(redis::to_string(expected[5]) == "(nil)");
}

TEST_CASE("redis reply parser: bytes that are not RESP break the parser for good") {
  reply_parser p;
  const std::string junk = "?what\r\n";
  REQUIRE(!p.feed(junk.data(), junk.size()));
  std::optional<value> v;
  CHECK(p.next(v) == redis::error::protocol_error);
  CHECK(!v);
  CHECK(!p.last_error().empty());
  CHECK(p.next(v) == redis::error::protocol_error);
  CHECK(p.feed("+OK\r\n", 5) == redis::error::protocol_error);
}

TEST_CASE("redis reply parser: a reply larger than the buffer limit is refused") {
  reply_parser p(16);
  const std::string big = "$100\r\n" + std::string(20, 'x');
  CHECK(p.feed(big.data(), 10) == river::error_code{});
  CHECK(p.feed(big.data() + 10, 10) == redis::error::read_buffer_exceeded);
}

TEST_CASE("redis reply parser: an array's announced length costs nothing until its elements arrive") {
  // Two billion elements announced, two sent: the parser holds two.
  reply_parser p;
  const std::string wire = "*2000000000\r\n:1\r\n*3\r\n$1\r\na\r\n";
  REQUIRE(!p.feed(wire.data(), wire.size()));
  std::optional<value> v;
  CHECK(!p.next(v));
  CHECK(!v);
  CHECK(p.buffered() == 0);

  // Arrays longer than what is reserved up front grow as their elements come.
  std::string many = "*100\r\n";
  std::vector<value> expected;
  for (int i = 0; i < 100; ++i) {
    many += "*2\r\n:" + std::to_string(i) + "\r\n*0\r\n";
    expected.push_back(arr({integer(i), arr({})}));
  }
  for (std::size_t split : {std::size_t{0}, std::size_t{7}, many.size() / 2, many.size()})
    CHECK(parse_split(many, split) == std::vector<value>{arr(expected)});
}

TEST_CASE("redis URL: TCP, credentials, database, unix sockets") {
  auto a = redis::parse_url("redis://localhost").value();
  CHECK(a.kind == redis::address::transport::tcp);
  CHECK(a.host == "localhost");
  CHECK(a.port == 6379);
  CHECK(a.database == 0);
  CHECK(a.user.empty());
  CHECK(a.password.empty());

  a = redis::parse_url("redis://alice:p%40ss%3Aword@10.0.0.1:6380/3").value();
  CHECK(a.host == "10.0.0.1");
  CHECK(a.port == 6380);
  CHECK(a.user == "alice");
  CHECK(a.password == "p@ss:word");
  CHECK(a.database == 3);

  a = redis::parse_url("redis://:secret@h:1/").value();
  CHECK(a.user.empty());
  CHECK(a.password == "secret");
  CHECK(a.port == 1);

  a = redis::parse_url("redis://secret@h").value();
  CHECK(a.password == "secret");

  a = redis::parse_url("redis://[::1]:7000/2").value();
  CHECK(a.host == "::1");
  CHECK(a.port == 7000);
  CHECK(a.database == 2);

  a = redis::parse_url("unix:///run/redis/redis.sock").value();
  CHECK(a.kind == redis::address::transport::unix_socket);
  CHECK(a.path == "/run/redis/redis.sock");
  a = redis::parse_url("unix:///tmp/r.sock?db=5").value();
  CHECK(a.path == "/tmp/r.sock");
  CHECK(a.database == 5);

  const std::vector<std::string> bad = {
      "", "localhost:6379", "http://h", "redis://", "redis://h:", "redis://h:0", "redis://h:65536",
      "redis://h:x", "redis://h/x", "redis://h/-1", "redis://[::1", "redis://[::1]x", "redis://u:%zz@h",
      "redis://u:%4@h", "unix://", "unix://relative", "unix:///s?db=x", "redis://:pw@"};
  for (const auto& url : bad) {
    INFO(url);
    auto r = redis::parse_url(url);
    REQUIRE(r.has_error());
    CHECK(r.error() == redis::error::invalid_url);
  }
}

TEST_CASE("redis entry ids parse strictly and compare numerically") {
  using redis::detail::entry_id;
  auto a = entry_id::parse("1732450000000-3").value();
  CHECK(a.ms == 1732450000000u);
  CHECK(a.seq == 3);
  CHECK(a.to_string() == "1732450000000-3");
  CHECK(entry_id::parse("9-1").value() < entry_id::parse("10-0").value());
  CHECK(entry_id::parse("10-2").value() > entry_id::parse("10-1").value());
  CHECK(entry_id::parse("18446744073709551615-18446744073709551615").has_value());
  // The text of the largest id fills the fixed buffer exactly; the smallest is "0-0".
  const std::string largest = "18446744073709551615-18446744073709551615";
  CHECK(redis::detail::entry_id_text(entry_id::parse(largest).value()).view() == largest);
  CHECK(redis::detail::entry_id_text(entry_id{}).view() == "0-0");
  CHECK(redis::detail::entry_id_text(a).view() == "1732450000000-3");
  const std::vector<std::string> bad = {"", "1", "1-", "-1", "a-1", "1-1-1", "+1-1", "1- 1",
                                        "18446744073709551616-0"};
  for (const auto& b : bad) {
    INFO(b);
    CHECK(!entry_id::parse(b));
  }
}

TEST_CASE("redis stream replies: XRANGE shapes decode, others are refused") {
  using namespace redis::detail;
  auto entry = [](std::string id, std::vector<std::string> fv) {
    std::vector<value> f;
    for (auto& s : fv) f.push_back(str(s));
    return arr({str(std::move(id)), arr(std::move(f))});
  };
  auto range = decode_range(arr({entry("1-0", {"item", "a"}), entry("1-1", {"end", "STREAM_END", "x", "y"})})).value();
  REQUIRE(range.size() == 2);
  CHECK(range[0] == stream_entry{"1-0", {{"item", "a"}}});
  CHECK(range[1] == stream_entry{"1-1", {{"end", "STREAM_END"}, {"x", "y"}}});
  CHECK(decode_range(arr({})).value().empty());

  // A read that starts at an entry read before finds it first, or finds it gone.
  const auto both = arr({entry("1-0", {"item", "a"}), entry("1-1", {"item", "b"})});
  CHECK(range_starts_at(both, entry_id{1, 0}));
  CHECK_FALSE(range_starts_at(both, entry_id{1, 1}));
  CHECK_FALSE(range_starts_at(arr({}), entry_id{1, 0}));
  CHECK_FALSE(range_starts_at(integer(1), entry_id{1, 0}));
  CHECK_FALSE(range_starts_at(arr({arr({integer(1), arr({})})}), entry_id{1, 0}));

  value err;
  err.type = value::kind::error;
  err.text = "WRONGTYPE Operation against a key holding the wrong kind of value";
  CHECK(decode_range(err).error() == redis::error::server_error);
  CHECK(decode_range(integer(1)).error() == redis::error::unexpected_reply);
  CHECK(decode_range(arr({str("1-0")})).error() == redis::error::unexpected_reply);
  CHECK(decode_range(arr({entry("1-0", {"odd"})})).error() == redis::error::unexpected_reply);
  CHECK(decode_range(arr({arr({integer(1), arr({})})})).error() == redis::error::unexpected_reply);
}

TEST_CASE("redis errors have their own category and readable messages") {
  river::error_code ec = redis::error::connection_lost;
  CHECK(std::string(ec.category().name()) == "river.redis");
  CHECK(ec.message() == "connection to Redis lost");
  for (int i = 1; i <= static_cast<int>(redis::error::queue_full); ++i)
    CHECK(river::error_code(i, redis::redis_category()).message() != "unknown Redis error");
}
