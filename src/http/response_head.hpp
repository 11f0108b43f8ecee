#pragma once

// The head of every response River writes (the handler's answers and event streams, the server's
// own pages and refusals): one writer, so the fields, their order and their framing are the same
// everywhere.

#include <boost/beast/http/status.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace river::http::detail {

struct response_head {
  unsigned status = 200;
  std::string_view content_type;              ///< omitted when empty
  std::optional<std::size_t> content_length;  ///< omitted when unknown (streams) or not allowed (204)
  std::string_view fields;                    ///< further fields, each `Name: value\r\n`
  bool chunked = false;                       ///< `Transfer-Encoding: chunked`
  bool close = false;                         ///< `Connection: close`
};

/// `HTTP/1.1 STATUS REASON`, the fields of `h`, and the blank line that ends the head.
inline std::string write_head(const response_head& h) {
  std::string out("HTTP/1.1 ");
  out.append(std::to_string(h.status));
  out.push_back(' ');
  const auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(h.status));
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  if (!h.content_type.empty()) out.append("Content-Type: ").append(h.content_type).append("\r\n");
  if (h.content_length) out.append("Content-Length: ").append(std::to_string(*h.content_length)).append("\r\n");
  out.append(h.fields);
  if (h.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (h.close) out.append("Connection: close\r\n");
  out.append("\r\n");
  return out;
}

}  // namespace river::http::detail
