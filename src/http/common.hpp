#pragma once

// The status line, shared by the handler and the server's connections.

#include <boost/beast/http/status.hpp>

#include <string>
#include <string_view>

namespace river::http::detail {

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
