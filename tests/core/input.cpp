#include <river/detail/input.hpp>

#include <boost/describe/class.hpp>
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

using river::detail::decode_input;
using nlohmann::json;

namespace input_test {

struct options {
  double temperature = 1.0;
  bool stream = true;
};
BOOST_DESCRIBE_STRUCT(options, (), (temperature, stream))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(options, temperature, stream)

struct chat_input {
  std::string message;
  int max_tokens = 0;
  options opts;
};
BOOST_DESCRIBE_STRUCT(chat_input, (), (message, max_tokens, opts))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(chat_input, message, max_tokens, opts)

// Not described: nlohmann_json alone.
struct plain_input {
  std::string message;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(plain_input, message)

struct checked_input {
  std::string message;
};
void from_json(const json& j, checked_input& in) {
  j.at("message").get_to(in.message);
  if (in.message.empty()) throw std::invalid_argument("message must not be empty");
}

// Integers of every width: a number out of their range is refused, never cast.
struct limits_options {
  int reasoning = 0;
  std::optional<std::int64_t> seed;
  std::vector<unsigned> stops;
};
BOOST_DESCRIBE_STRUCT(limits_options, (), (reasoning, seed, stops))
void from_json(const json& j, limits_options& o) {
  o.reasoning = j.value("reasoning", 0);
  if (j.contains("seed") && !j["seed"].is_null()) o.seed = j["seed"].get<std::int64_t>();
  if (j.contains("stops")) j["stops"].get_to(o.stops);
}
void to_json(json& j, const limits_options& o) {
  j = {{"reasoning", o.reasoning}, {"stops", o.stops}};
  if (o.seed) j["seed"] = *o.seed;
}

struct limits_input {
  limits_options opts;
  std::uint8_t level = 0;
};
BOOST_DESCRIBE_STRUCT(limits_input, (), (opts, level))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(limits_input, opts, level)

template <class T>
void check_invalid(const river::result<T>& r, const std::string& field, const std::string& reason_part) {
  REQUIRE(r.has_error());
  const auto& e = r.error();
  CHECK(e.code == river::errc::invalid_input);
  CHECK(e.type == river::error_type::validation);
  CHECK(e.context["field"] == field);
  INFO(e.message);
  CHECK(e.context["reason"].template get<std::string>().find(reason_part) != std::string::npos);
  CHECK(e.message.find(reason_part) != std::string::npos);
}

}  // namespace input_test

using namespace input_test;

TEST_CASE("valid input decodes into the input type") {
  auto r = decode_input<chat_input>(
      json::parse(R"({"message":"hi","max_tokens":5,"opts":{"temperature":0.5,"stream":false}})"));
  REQUIRE(r.has_value());
  CHECK(r->message == "hi");
  CHECK(r->max_tokens == 5);
  CHECK(r->opts.temperature == 0.5);
  CHECK_FALSE(r->opts.stream);
}

TEST_CASE("extra fields in the input are allowed") {
  auto r = decode_input<plain_input>(json::parse(R"({"message":"hi","unexpected":[1,2],"more":{}})"));
  REQUIRE(r.has_value());
  CHECK(r->message == "hi");
}

TEST_CASE("a missing field is named") {
  check_invalid(decode_input<plain_input>(json::parse(R"({"msg":"hi"})")), "message", "is missing");
  check_invalid(decode_input<chat_input>(json::parse(R"({"message":"hi","opts":{}})")), "max_tokens", "is missing");
}

TEST_CASE("a field of the wrong type is named") {
  check_invalid(decode_input<chat_input>(json::parse(R"({"message":5,"max_tokens":1,"opts":{}})")), "message",
                "type must be string, but is number");
  check_invalid(decode_input<chat_input>(json::parse(R"({"message":"m","max_tokens":"many","opts":{}})")),
                "max_tokens", "type must be number, but is string");
}

TEST_CASE("a nested field of the wrong type is named by its path") {
  check_invalid(decode_input<chat_input>(json::parse(R"({"message":"m","max_tokens":1,"opts":{"stream":"yes"}})")),
                "opts.stream", "type must be boolean, but is string");
  check_invalid(decode_input<chat_input>(json::parse(R"({"message":"m","max_tokens":1,"opts":[]})")), "opts",
                "must be an object, but is array");
}

TEST_CASE("input that is not an object is refused") {
  for (auto text : {R"("hello")", "42", "[]", "null", "true"}) {
    INFO(text);
    check_invalid(decode_input<chat_input>(json::parse(text)), "", "must be an object, but is");
    check_invalid(decode_input<plain_input>(json::parse(text)), "", "must be a JSON object, but is");
  }
}

TEST_CASE("a from_json that throws its own exception is a validation error") {
  check_invalid(decode_input<checked_input>(json::parse(R"({"message":""})")), "", "message must not be empty");
  CHECK(decode_input<checked_input>(json::parse(R"({"message":"x"})")).has_value());
}

TEST_CASE("untyped input accepts any JSON") {
  for (auto text : {R"("hello")", "42", "[]", "null", R"({"a":1})"}) CHECK(decode_input<json>(json::parse(text)).has_value());
}

TEST_CASE("a number out of an integer member's range is refused, not cast") {
  // Floats beyond the range were cast by nlohmann_json, which is undefined behaviour; integers
  // beyond it wrapped around.
  check_invalid(decode_input<limits_input>(json::parse(R"({"opts":{"reasoning":101844674407370955115}})")),
                "opts.reasoning", "must be a number from -2147483648 to 2147483647, but is 1.0184467440737095e+20");
  check_invalid(decode_input<limits_input>(json::parse(R"({"opts":{"seed":4e52}})")), "opts.seed",
                "must be a number from -9223372036854775808 to 9223372036854775807, but is 4e+52");
  check_invalid(decode_input<limits_input>(json::parse(R"({"opts":{"reasoning":2147483648}})")), "opts.reasoning",
                "but is 2147483648");
  check_invalid(decode_input<limits_input>(json::parse(R"({"opts":{"reasoning":-2147483649}})")), "opts.reasoning",
                "but is -2147483649");
  check_invalid(decode_input<limits_input>(json::parse(R"({"opts":{"seed":9223372036854775808}})")), "opts.seed",
                "but is 9223372036854775808");
  check_invalid(decode_input<limits_input>(json::parse(R"({"opts":{"stops":[1,-1]}})")), "opts.stops",
                "must be a number from 0 to 4294967295, but is -1");
  check_invalid(decode_input<limits_input>(json::parse(R"({"opts":{"stops":[4294967296.0]}})")), "opts.stops",
                "but is 4294967296.0");
  check_invalid(decode_input<limits_input>(json::parse(R"({"level":256})")), "level", "from 0 to 255, but is 256");
  check_invalid(decode_input<int>(json::parse("1e10")), "", "must be a number from -2147483648 to 2147483647");

  // The extremes of each range decode, and a float truncates as before.
  auto r = decode_input<limits_input>(json::parse(
      R"({"opts":{"reasoning":-2147483648,"seed":-9223372036854775808,"stops":[0,4294967295,4294967295.5]},"level":255.9})"));
  REQUIRE(r.has_value());
  CHECK(r->opts.reasoning == std::numeric_limits<int>::min());
  CHECK(r->opts.seed == std::numeric_limits<std::int64_t>::min());
  CHECK(r->opts.stops == std::vector<unsigned>{0, 4294967295u, 4294967295u});
  CHECK(r->level == 255);
  CHECK(decode_input<limits_input>(json::parse(R"({"opts":{"seed":null,"reasoning":2147483647}})")).has_value());
  CHECK(decode_input<int>(json::parse("-7")).value() == -7);
}
