// Redis URLs from any bytes: parsing fails only with `invalid_url`, and an address that parses
// is written back as a URL that parses to the same address.

#include <river/redis/config.hpp>
#include <river/redis/error.hpp>

#include "support/check.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace {

namespace redis = river::redis;

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(hex[b >> 4]);
      out.push_back(hex[b & 15]);
    }
  }
  return out;
}

// The address as a URL, every part explicit.
std::string url_of(const redis::address& a) {
  if (a.kind == redis::address::transport::unix_socket) {
    auto url = "unix://" + a.path;
    if (a.database != 0) url += "?db=" + std::to_string(a.database);
    return url;
  }
  std::string url = "redis://";
  if (!a.user.empty() || !a.password.empty()) url += percent_encode(a.user) + ":" + percent_encode(a.password) + "@";
  // Brackets where the host needs them and can have them: a host with ']' is only ever written bare.
  const bool brackets = a.host.find(']') == std::string::npos &&
                        (a.host.find(':') != std::string::npos || a.host.front() == '[');
  url += brackets ? "[" + a.host + "]" : a.host;
  url += ":" + std::to_string(a.port);
  if (a.database != 0) url += "/" + std::to_string(a.database);
  return url;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(bytes), size);
  auto parsed = redis::parse_url(url);
  if (!parsed) {
    RIVER_FUZZ_CHECK(parsed.error() == redis::error::invalid_url);
    return 0;
  }
  const auto& a = *parsed;
  RIVER_FUZZ_CHECK(a.database >= 0);
  if (a.kind == redis::address::transport::unix_socket) {
    RIVER_FUZZ_CHECK(!a.path.empty() && a.path.front() == '/' && a.host.empty());
  } else {
    RIVER_FUZZ_CHECK(!a.host.empty() && a.port != 0 && a.path.empty());
  }
  const auto again = redis::parse_url(url_of(a));
  RIVER_FUZZ_CHECK(again.has_value());
  RIVER_FUZZ_CHECK(*again == a);
  return 0;
}
