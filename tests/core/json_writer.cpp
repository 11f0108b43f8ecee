#include <river/detail/json_writer.hpp>

#include <river/detail/json_validator.hpp>

#include <boost/describe/class.hpp>
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

using river::detail::append_json_string;
using river::detail::is_valid_json;
using river::detail::write_json;
using json = nlohmann::json;

namespace json_writer_test {

struct point {
  int x = 0;
  int y = 0;
};
BOOST_DESCRIBE_STRUCT(point, (), (x, y))

struct shape {
  std::string name;
  std::vector<point> points;
  std::optional<double> area;
  bool closed = false;
  std::map<std::string, int> tags;
};
BOOST_DESCRIBE_STRUCT(shape, (), (name, points, area, closed, tags))

// Not described: written through its nlohmann_json conversion.
struct legacy {
  int b = 2;
  int a = 1;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(legacy, b, a)

template <class T>
std::string written(const T& v) {
  std::string out;
  write_json(out, v);
  return out;
}

}  // namespace json_writer_test

using namespace json_writer_test;

TEST_CASE("json writer: described types are written member by member, in declaration order") {
  shape s{"tri", {{0, 0}, {3, 4}}, 6.0, true, {{"b", 2}, {"a", 1}}};
  CHECK(written(s) == R"({"name":"tri","points":[{"x":0,"y":0},{"x":3,"y":4}],"area":6.0,"closed":true,"tags":{"a":1,"b":2}})");
  shape empty;
  CHECK(written(empty) == R"({"name":"","points":[],"area":null,"closed":false,"tags":{}})");
  // Whatever the order, the same value as nlohmann_json reads it.
  CHECK(json::parse(written(s)) == json::parse(R"({"tags":{"a":1,"b":2},"closed":true,"area":6.0,"name":"tri","points":[{"x":0,"y":0},{"x":3,"y":4}]})"));
}

TEST_CASE("json writer: other types go through nlohmann_json, as before") {
  CHECK(written(legacy{}) == R"({"a":1,"b":2})");
  CHECK(written(json{{"k", {1, "two", nullptr}}}) == R"({"k":[1,"two",null]})");
  CHECK(written(std::string("plain")) == R"("plain")");
  CHECK(written(river::json_text(R"({"as":"is"})")) == R"({"as":"is"})");
}

TEST_CASE("json writer: numbers as nlohmann_json writes them") {
  CHECK(written(0) == "0");
  CHECK(written(-1) == "-1");
  CHECK(written(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808");
  CHECK(written(std::numeric_limits<std::int64_t>::max()) == "9223372036854775807");
  CHECK(written(std::numeric_limits<std::uint64_t>::max()) == "18446744073709551615");
  for (std::uint64_t v : {std::uint64_t{9}, std::uint64_t{10}, std::uint64_t{99}, std::uint64_t{100},
                          std::uint64_t{1796147432192352}})
    CHECK(written(v) == std::to_string(v));
  CHECK(written(true) == "true");
  CHECK(written(1.0) == json(1.0).dump());
  CHECK(written(0.1) == json(0.1).dump());
  CHECK(written(-2.5e-300) == json(-2.5e-300).dump());
  CHECK(written(std::numeric_limits<double>::infinity()) == "null");
  CHECK(written(std::nan("")) == "null");
}

TEST_CASE("json writer: strings are escaped as JSON.stringify escapes them, at any offset") {
  const std::string specials = std::string("\"\\\b\f\n\r\t") + '\x01' + '\x1f';
  const std::string escaped = R"(\"\\\b\f\n\r\t\u0001\u001f)";
  // Every position of a special character relative to the 16-byte blocks of the scan.
  for (std::size_t pad = 0; pad < 40; ++pad) {
    for (std::size_t i = 0; i < specials.size(); ++i) {
      const std::string in = std::string(pad, 'a') + specials[i] + std::string(pad % 7, 'b');
      std::string out;
      append_json_string(out, in);
      CHECK(json::parse(out) == in);
      CHECK(out == json(in).dump());
    }
  }
  std::string out;
  append_json_string(out, specials);
  CHECK(out == "\"" + escaped + "\"");
}

TEST_CASE("json writer: valid UTF-8 passes as it is, invalid bytes become U+FFFD") {
  const std::string valid = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";  // é € 😀
  for (std::size_t pad = 0; pad < 20; ++pad) {
    const std::string in = std::string(pad, 'x') + valid;
    std::string out;
    append_json_string(out, in);
    CHECK(out == "\"" + in + "\"");
  }
  const std::vector<std::string> invalid = {"\xC0\xAF", "\xED\xA0\x80", "\xF5\x80\x80\x80", "\xE2\x82", "\x80", "\xFF"};
  for (const auto& bad : invalid) {
    std::string out;
    append_json_string(out, std::string(18, 'x') + bad);
    INFO(out);
    CHECK(out.find("\xEF\xBF\xBD") != std::string::npos);
    CHECK(is_valid_json(out));
  }
}

TEST_CASE("json validator: accepts JSON and nothing else") {
  const std::vector<std::string> good = {
      "0", "-0", "1.5e10", "-1.25E-3", "true", "false", "null", R"("")", R"("a\"b\\c\/\b\f\n\r\t\u00e9")",
      "[]", "{}", " [1, 2 ,3] ", R"({"a":{"b":[null,{"c":"d"}]}})", "\"h\xC3\xA9\"", "\n{\"k\"\r\n:\t1}\n"};
  for (const auto& g : good) {
    INFO(g);
    CHECK(is_valid_json(g));
    CHECK(json::accept(g));
  }
  const std::vector<std::string> bad = {
      "", " ", "01", "1.", ".5", "1e", "+1", "-", "tru", "nul", "[1,]", "[,1]", "{\"a\":}", "{\"a\" 1}", "{a:1}",
      "[1 2]", "\"unterminated", "\"bad \\x escape\"", "\"\\u12g4\"", std::string("\"ctl \x01\""), "\"\xC0\xAF\"",
      "\"\xED\xA0\x80\"", "[1]]", "{}{}", "nulll", "[\"a\",]", "1 2"};
  for (const auto& b : bad) {
    INFO(b);
    CHECK_FALSE(is_valid_json(b));
  }
}

TEST_CASE("json validator: nesting is bounded") {
  const int depth = river::detail::json_validator::max_depth;
  CHECK(is_valid_json(std::string(static_cast<std::size_t>(depth), '[') + std::string(static_cast<std::size_t>(depth), ']')));
  CHECK_FALSE(is_valid_json(std::string(static_cast<std::size_t>(depth) + 1, '[') +
                            std::string(static_cast<std::size_t>(depth) + 1, ']')));
  CHECK_FALSE(is_valid_json(std::string(100000, '[')));
}
