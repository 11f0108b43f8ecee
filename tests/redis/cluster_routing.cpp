// The sans-I/O parts of the Redis Cluster client: key slots, a request read back into routable
// units, the layout and the redirects read from replies, cluster URLs.

#include <river/redis/config.hpp>
#include <river/redis/detail/cluster_topology.hpp>
#include <river/redis/detail/command_units.hpp>
#include <river/redis/detail/hash_slot.hpp>
#include <river/redis/request.hpp>

#include <catch2/catch.hpp>

namespace redis = river::redis;
using redis::detail::hash_slot;

namespace {

redis::value int_reply(std::int64_t n) {
  redis::value v;
  v.type = redis::value::kind::integer;
  v.integer = n;
  return v;
}

redis::value text_reply(std::string s) {
  redis::value v;
  v.type = redis::value::kind::string;
  v.text = std::move(s);
  return v;
}

redis::value array_reply(std::vector<redis::value> elements) {
  redis::value v;
  v.type = redis::value::kind::array;
  v.elements = std::move(elements);
  return v;
}

redis::value error_reply(std::string s) {
  redis::value v;
  v.type = redis::value::kind::error;
  v.text = std::move(s);
  return v;
}

}  // namespace

TEST_CASE("cluster routing: key slots are Redis Cluster's, hash tags included") {
  // The values `CLUSTER KEYSLOT` gives (the cluster tests compare with a live one too).
  CHECK(hash_slot("123456789") == 12739);  // CRC16/XMODEM's check value 0x31C3
  CHECK(hash_slot("foo") == 12182);
  CHECK(hash_slot("bar") == 5061);
  CHECK(hash_slot("{user1000}.following") == hash_slot("user1000"));
  CHECK(hash_slot("foo{bar}{zap}") == hash_slot("bar"));
  CHECK(hash_slot("foo{{bar}}zap") == hash_slot("{bar"));
  CHECK(hash_slot("foo{}{bar}") == redis::detail::crc16("foo{}{bar}") % 16384);  // an empty tag: the whole key
  CHECK(hash_slot("foo{bar") == redis::detail::crc16("foo{bar") % 16384);        // no closing brace
  CHECK(hash_slot("river-lease:{stream-s-r}") == hash_slot("stream-s-r"));
}

TEST_CASE("cluster routing: a request splits into commands and transactions, each with its key's slot") {
  redis::request req;
  req.push({"XADD", "stream-s-a", "1-1", "item", "{}"});
  req.push({"MULTI"});
  req.push({"XADD", "stream-s-b", "2-1", "end", "STREAM_END"});
  req.push({"DEL", "river-lease:{stream-s-b}"});
  req.push({"EXEC"});
  req.push({"PING"});
  req.push({"SSUBSCRIBE", "river-notice:{stream-s-c}"});
  req.push({"EVAL", "return 1", "2", "river-lease:{stream-s-d}", "x"});
  req.push({"EVAL", "return 1", "0"});
  req.push({"XREAD", "COUNT", "1", "STREAMS", "stream-s-e", "0"});
  std::vector<redis::detail::command_unit> units;
  REQUIRE(redis::detail::split_units(req.payload(), units));
  REQUIRE(units.size() == 7);
  const std::vector<int> slots = {hash_slot("stream-s-a"), hash_slot("stream-s-b"), -1, hash_slot("stream-s-c"),
                                  hash_slot("stream-s-d"), -1, hash_slot("stream-s-e")};
  const std::vector<std::size_t> commands = {1, 4, 1, 1, 1, 1, 1}, first_reply = {0, 1, 5, 6, 7, 8, 9};
  std::size_t end = 0;
  for (std::size_t i = 0; i < units.size(); ++i) {
    INFO("unit " << i);
    CHECK(units[i].slot == slots[i]);
    CHECK(units[i].commands == commands[i]);
    CHECK(units[i].replies == commands[i]);
    CHECK(units[i].first_reply == first_reply[i]);
    CHECK(units[i].offset == end);  // the units cover the payload, in order
    end += units[i].size;
  }
  CHECK(end == req.payload().size());

  redis::request open;
  open.push({"MULTI"});
  open.push({"DEL", "k"});
  CHECK_FALSE(redis::detail::split_units(open.payload(), units));
  CHECK_FALSE(redis::detail::split_units("*1\r\n$4\r\nPIN", units));
  CHECK_FALSE(redis::detail::split_units("PING\r\n", units));
}

TEST_CASE("cluster routing: the layout is read from CLUSTER SLOTS and other shapes are refused") {
  auto master = [](std::string host, std::int64_t port) { return array_reply({text_reply(std::move(host)), int_reply(port), text_reply("id")}); };
  const auto reply = array_reply({array_reply({int_reply(0), int_reply(5460), master("10.0.0.1", 7000), master("10.0.0.4", 7003)}),
                            array_reply({int_reply(5461), int_reply(16383), master("", 7001)})});
  auto ranges = redis::detail::parse_cluster_slots(reply, "10.0.0.9");
  REQUIRE(ranges.has_value());
  REQUIRE(ranges->size() == 2);
  CHECK((*ranges)[0] == redis::detail::slot_range{0, 5460, {"10.0.0.1", 7000}});
  CHECK((*ranges)[1] == redis::detail::slot_range{5461, 16383, {"10.0.0.9", 7001}});  // no host: the node asked

  CHECK_FALSE(redis::detail::parse_cluster_slots(text_reply("x"), "h").has_value());
  CHECK_FALSE(redis::detail::parse_cluster_slots(array_reply({array_reply({int_reply(0), int_reply(16384), master("h", 1)})}), "h").has_value());
  CHECK_FALSE(redis::detail::parse_cluster_slots(array_reply({array_reply({int_reply(9), int_reply(3), master("h", 1)})}), "h").has_value());
  CHECK_FALSE(redis::detail::parse_cluster_slots(array_reply({array_reply({int_reply(0), int_reply(3), master("h", 0)})}), "h").has_value());
  CHECK_FALSE(redis::detail::parse_cluster_slots(array_reply({array_reply({int_reply(0), int_reply(3)})}), "h").has_value());
}

TEST_CASE("cluster routing: MOVED and ASK name the slot and the node, other errors are no redirect") {
  auto moved = redis::detail::parse_redirect(error_reply("MOVED 3999 127.0.0.1:6381"), "h");
  REQUIRE(moved);
  CHECK(moved->type == redis::detail::redirect::kind::moved);
  CHECK(moved->slot == 3999);
  CHECK(moved->to == redis::detail::node_endpoint{"127.0.0.1", 6381});
  auto ask = redis::detail::parse_redirect(error_reply("ASK 12 :7000"), "10.1.1.1");
  REQUIRE(ask);
  CHECK(ask->type == redis::detail::redirect::kind::ask);
  CHECK(ask->to == redis::detail::node_endpoint{"10.1.1.1", 7000});
  auto v6 = redis::detail::parse_redirect(error_reply("MOVED 1 ::1:7000"), "h");
  REQUIRE(v6);
  CHECK(v6->to.host == "::1");
  CHECK_FALSE(redis::detail::parse_redirect(error_reply("ERR unknown command"), "h"));
  CHECK_FALSE(redis::detail::parse_redirect(error_reply("MOVED 16384 h:1"), "h"));
  CHECK_FALSE(redis::detail::parse_redirect(error_reply("MOVED 1 h"), "h"));
  CHECK_FALSE(redis::detail::parse_redirect(text_reply("MOVED 1 h:1"), "h"));  // not an error reply
  CHECK(redis::detail::is_transient_cluster_error(error_reply("TRYAGAIN Multiple keys request during rehashing of slot")));
  CHECK(redis::detail::is_transient_cluster_error(error_reply("CLUSTERDOWN The cluster is down")));
  CHECK_FALSE(redis::detail::is_transient_cluster_error(error_reply("ERR no")));
}

TEST_CASE("cluster routing: cluster URLs name seed nodes that share one login") {
  auto seeds = redis::parse_cluster_url("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002");
  REQUIRE(seeds.has_value());
  REQUIRE(seeds->size() == 3);
  CHECK((*seeds)[0].host == "10.0.0.1");
  CHECK((*seeds)[0].port == 7000);
  CHECK((*seeds)[1].port == 6379);
  CHECK((*seeds)[2].host == "::1");
  for (const auto& s : *seeds) {
    CHECK(s.user == "u");
    CHECK(s.password == "p@ss");
  }
  CHECK(redis::is_cluster_url("redis+cluster://h:1"));
  CHECK_FALSE(redis::is_cluster_url("redis://h:1"));
  for (const char* bad : {"redis+cluster://", "redis+cluster://h:1,", "redis+cluster://h:1/2", "redis+cluster://,h:1",
                          "redis://h:1", "redis+cluster://h:0"}) {
    INFO(bad);
    CHECK(redis::parse_cluster_url(bad).error() == redis::error::invalid_url);
  }
}
