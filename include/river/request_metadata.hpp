#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace river {

/// What a runner may know about the request that started its run: the HTTP headers, and the
/// peer's address. Empty for runs started in process.
struct request_metadata {
  using header_list = std::vector<std::pair<std::string, std::string>>;

  // Declared constructors keep this from being an aggregate: GCC 12 destroys aggregate
  // temporaries twice when they appear in a co_await expression (a default argument included).
  request_metadata() noexcept {}
  explicit request_metadata(header_list h, std::string remote = {})
      : headers(std::move(h)), remote_address(std::move(remote)) {}

  header_list headers;
  std::string remote_address;

  /// The first header of that name, compared without regard to ASCII case.
  std::optional<std::string_view> header(std::string_view name) const {
    auto same = [&](const std::string& h) {
      return std::equal(h.begin(), h.end(), name.begin(), name.end(), [](char a, char b) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        return lower(a) == lower(b);
      });
    };
    for (const auto& [k, v] : headers)
      if (same(k)) return std::string_view(v);
    return std::nullopt;
  }
};

}  // namespace river
