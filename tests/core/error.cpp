#include <river/error.hpp>

#include <catch2/catch.hpp>

using river::error;
using river::error_type;

TEST_CASE("an error's JSON is the protocol's, byte for byte") {
  CHECK(river::to_json_text(error("boom", error_type::custom)) ==
        R"({"__name__":"RiverError","message":"boom","type":"custom","cause":null,"context":{}})");
}

TEST_CASE("every error type has its wire name") {
  const std::pair<error_type, const char*> names[] = {
      {error_type::custom, "custom"},     {error_type::stream, "stream"},   {error_type::network, "network"},
      {error_type::storage, "storage"},   {error_type::unknown, "unknown"}, {error_type::internal, "internal"},
      {error_type::validation, "validation"}};
  for (auto [type, name] : names) {
    CHECK(river::to_string(type) == name);
    CHECK(river::parse_error_type(name) == type);
    CHECK(river::to_json_text(error("m", type)) ==
          std::string(R"({"__name__":"RiverError","message":"m","type":")") + name +
              R"(","cause":null,"context":{}})");
  }
  CHECK_FALSE(river::parse_error_type("Custom").has_value());
}

TEST_CASE("an error's cause and context are written as JSON values") {
  error e("bad field", error_type::validation, {{"field", "message"}});
  e.cause = "it was a number";
  CHECK(river::to_json_text(e) ==
        R"({"__name__":"RiverError","message":"bad field","type":"validation","cause":"it was a number","context":{"field":"message"}})");
}

TEST_CASE("error messages are escaped as JSON.stringify escapes them") {
  error e("q\"b\\n\n\t\x01\x1f\x7f\xc3\xa9", error_type::internal);
  CHECK(river::to_json_text(e) ==
        "{\"__name__\":\"RiverError\",\"message\":\"q\\\"b\\\\n\\n\\t\\u0001\\u001f\x7f\xc3\xa9\","
        "\"type\":\"internal\",\"cause\":null,\"context\":{}}");
}

TEST_CASE("invalid UTF-8 in an error message becomes U+FFFD, keeping the JSON valid") {
  error e(std::string("a\xff" "b\xc3", 4), error_type::internal);
  const auto text = river::to_json_text(e);
  CHECK(text.find("a\xEF\xBF\xBD" "b\xEF\xBF\xBD") != std::string::npos);
  CHECK_NOTHROW(nlohmann::json::parse(text));
}

TEST_CASE("errors are read leniently, as the TypeScript client reads them") {
  SECTION("a full error") {
    auto e = river::error_from_json(nlohmann::json::parse(
        R"({"__name__":"RiverError","message":"m","type":"storage","cause":{"x":1},"context":{"k":"v"}})"));
    CHECK(e.message == "m");
    CHECK(e.type == error_type::storage);
    CHECK(e.cause == nlohmann::json{{"x", 1}});
    CHECK(e.context == nlohmann::json{{"k", "v"}});
  }
  SECTION("anything that is not a RiverError object is an unknown error") {
    for (auto text : {R"(null)", R"("text")", R"(42)", R"([])", R"({"message":"m"})", R"({"__name__":"Error"})"}) {
      auto e = river::error_from_json(nlohmann::json::parse(text));
      CHECK(e.message == "Unknown error");
      CHECK(e.type == error_type::unknown);
    }
  }
  SECTION("missing or unknown parts take their defaults") {
    auto e = river::error_from_json(nlohmann::json::parse(R"({"__name__":"RiverError","type":"weird"})"));
    CHECK(e.message == "Unknown error");
    CHECK(e.type == error_type::unknown);
    CHECK(e.cause.is_null());
    CHECK(e.context == nlohmann::json::object());
  }
}

TEST_CASE("errors made from river codes carry the code and a matching type") {
  auto e = error::from_code(river::errc::invalid_input, "bad");
  CHECK(e.code == river::errc::invalid_input);
  CHECK(e.type == error_type::validation);
  CHECK(error::from_code(river::errc::storage_failure, "x").type == error_type::storage);
  CHECK(error::from_code(river::errc::run_not_found, "x").type == error_type::validation);
  CHECK(error::from_code(river::errc::malformed_event, "x").type == error_type::stream);
}

TEST_CASE("result<T>::value() throws a system_error with the error's code and message") {
  river::result<int> r = error::from_code(river::errc::run_not_found, "Run not found");
  try {
    (void)r.value();
    FAIL("value() did not throw");
  } catch (const boost::system::system_error& e) {
    CHECK(e.code() == river::errc::run_not_found);
    CHECK(std::string(e.what()).find("Run not found") != std::string::npos);
  }
}
