#include <river/detail/input.hpp>

#include <boost/describe/class.hpp>
#include <catch2/catch.hpp>

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
