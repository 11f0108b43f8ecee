// River's JSON string writer on any bytes: the output is always one valid JSON string, valid
// UTF-8 comes back unchanged (written byte for byte as nlohmann_json, and JSON.stringify, write
// it), and each byte that does not begin a well-formed UTF-8 sequence comes back as U+FFFD.

#include <river/detail/json_validator.hpp>
#include <river/detail/json_writer.hpp>

#include "support/check.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace {

// The length of the well-formed UTF-8 sequence at `i` (Unicode table 3-7), or 0.
std::size_t well_formed(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100u; };
  auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  const unsigned b0 = at(0);
  if (b0 < 0x80) return 1;
  if (in(b0, 0xC2, 0xDF)) return in(at(1), 0x80, 0xBF) ? 2 : 0;
  unsigned lo = 0x80, hi = 0xBF;
  std::size_t n = 0;
  if (b0 == 0xE0) lo = 0xA0, n = 3;
  else if (in(b0, 0xE1, 0xEC) || in(b0, 0xEE, 0xEF)) n = 3;
  else if (b0 == 0xED) hi = 0x9F, n = 3;
  else if (b0 == 0xF0) lo = 0x90, n = 4;
  else if (in(b0, 0xF1, 0xF3)) n = 4;
  else if (b0 == 0xF4) hi = 0x8F, n = 4;
  else return 0;
  if (!in(at(1), lo, hi)) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (!in(at(k), 0x80, 0xBF)) return 0;
  return n;
}

// `s` with every byte that does not begin a well-formed sequence replaced by U+FFFD.
std::string replaced(std::string_view s, bool& was_valid) {
  std::string out;
  was_valid = true;
  for (std::size_t i = 0; i < s.size();) {
    if (auto n = well_formed(s, i)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      was_valid = false;
      ++i;
    }
  }
  return out;
}

}  // namespace

// The first byte's low four bits place the string at that offset in its buffer, so that the
// writer's sixteen-byte loads meet every alignment; the rest is the string.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t offset = bytes[0] & 15u;
  std::string buffer(offset + size - 1, '\0');
  std::memcpy(buffer.data() + offset, bytes + 1, size - 1);
  const std::string_view s(buffer.data() + offset, size - 1);

  std::string out = "[";  // appended to what is there
  river::detail::append_json_string(out, s);
  RIVER_FUZZ_CHECK(out.starts_with("[\""));
  const std::string_view written = std::string_view(out).substr(1);
  RIVER_FUZZ_CHECK(river::detail::is_valid_json(written));
  auto parsed = nlohmann::json::parse(written, nullptr, false);
  RIVER_FUZZ_CHECK(parsed.is_string());

  bool valid_utf8 = false;
  const auto expected = replaced(s, valid_utf8);
  RIVER_FUZZ_CHECK(parsed.get_ref<const std::string&>() == expected);
  if (valid_utf8) RIVER_FUZZ_CHECK(written == nlohmann::json(std::string(s)).dump());
  return 0;
}
