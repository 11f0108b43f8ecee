// River's JSON validator against nlohmann_json's parser, on any bytes: they must agree on what is
// JSON. The differences, each checked to be the only reason when they disagree:
// - nesting: River accepts at most 512 arrays and objects deep (`json_validator::max_depth`),
//   nlohmann_json has no bound;
// - \u escapes: River takes any four hex digits, nlohmann_json refuses a surrogate that is not
//   half of a pair;
// - numbers: River checks the grammar only, nlohmann_json refuses one too large for a double
//   ("number overflow");
// - a NUL byte: nlohmann_json takes it for the end of the input (its lexer's convention for C
//   strings), River refuses it, as JSON has no NUL outside strings and none unescaped inside;
// - a leading UTF-8 byte order mark: nlohmann_json skips it, River refuses it (RFC 8259 8.1).
// Both check UTF-8 inside strings.

#include <river/detail/json_validator.hpp>

#include "support/check.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

// nlohmann_json's verdict, with why it refused and how deep the input went.
struct verdict : nlohmann::json_sax<nlohmann::json> {
  bool accepted = false;
  int error_id = 0;
  std::string error;
  int depth = 0, max_depth = 0;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) override {
    error_id = e.id;
    error = e.what();
    return false;
  }

  bool open() {
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool close() {
    --depth;
    return true;
  }
};

verdict nlohmann_verdict(std::string_view text) {
  verdict v;
  v.accepted = nlohmann::json::sax_parse(text.begin(), text.end(), &v);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  const bool river = river::detail::is_valid_json(text);
  if (text.find('\0') != std::string_view::npos || text.starts_with("\xEF\xBB\xBF")) {
    RIVER_FUZZ_CHECK(!river);
    return 0;
  }
  const auto reference = nlohmann_verdict(text);
  if (river == reference.accepted) return 0;
  if (river) {
    const bool surrogate = reference.error_id == 101 && reference.error.find("surrogate") != std::string::npos;
    const bool overflow = reference.error_id == 406;
    if (!surrogate && !overflow) std::fprintf(stderr, "nlohmann_json refused: %s\n", reference.error.c_str());
    RIVER_FUZZ_CHECK(surrogate || overflow);
  } else {
    RIVER_FUZZ_CHECK(reference.max_depth > river::detail::json_validator::max_depth);
  }
  return 0;
}
