#pragma once

// Small pieces shared by the handler and the server's connections.

#include <boost/beast/http/status.hpp>

#include <string>
#include <string_view>

namespace river::http::detail {

/// ASCII case-insensitive equality, for header values and media types.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

/// `HTTP/1.1 STATUS REASON\r\n`.
inline std::string status_line(unsigned status) {
  std::string out("HTTP/1.1 ");
  out.append(std::to_string(status));
  out.push_back(' ');
  const auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  return out;
}

}  // namespace river::http::detail
