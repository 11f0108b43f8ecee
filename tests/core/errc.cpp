#include <river/errc.hpp>
#include <river/error.hpp>
#include <river/http/status.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>

TEST_CASE("every river error code has its own message in the river category") {
  std::set<std::string> messages;
  for (int v = static_cast<int>(river::errc::invalid_token); v <= static_cast<int>(river::errc::client_limit_exceeded); ++v) {
    river::error_code ec = static_cast<river::errc>(v);
    CHECK(ec.category().name() == std::string("river"));
    CHECK(ec.message() != "unknown river error");
    CHECK(messages.insert(ec.message()).second);
    CHECK(ec);
  }
  CHECK(river::error_code(static_cast<river::errc>(999)).message() == "unknown river error");
}

TEST_CASE("river codes compare with errc values") {
  river::error_code ec = river::errc::run_not_found;
  CHECK(ec == river::errc::run_not_found);
  CHECK(ec != river::errc::invalid_token);
}

TEST_CASE("every river code a client caused is a validation error, the rest are not") {
  for (int v = static_cast<int>(river::errc::invalid_token); v <= static_cast<int>(river::errc::client_limit_exceeded); ++v) {
    const auto code = static_cast<river::errc>(v);
    const auto status = river::http::status_of(code);
    INFO(river::error_code(code).message() << ": " << status);
    CHECK((river::error_type_of(code) == river::error_type::validation) == (status >= 400 && status < 500));
  }
}
