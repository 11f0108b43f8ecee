// The request framing checks of RFC 9112 sections 3.2, 5.2 and 6.

#include "request_framing.hpp"

#include <boost/beast/core/string.hpp>

namespace river::http::detail {

namespace {

namespace beast_http = boost::beast::http;

// Optional whitespace around list elements (RFC 9110 section 5.6.1).
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the Transfer-Encoding field lines, together, list exactly one coding: chunked.
// Empty list elements (", chunked") count as nothing, as the list syntax allows.
bool only_chunked(const beast_http::request_header<>& head) {
  std::size_t codings = 0;
  bool chunked = false;
  // Every field line in turn: Beast's equal_range spans whatever lies between repeated lines.
  for (const auto& f : head) {
    if (f.name() != beast_http::field::transfer_encoding) continue;
    std::string_view list(f.value().data(), f.value().size());
    while (!list.empty()) {
      const auto comma = list.find(',');
      const auto element = trim(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (element.empty()) continue;
      ++codings;
      chunked = boost::beast::iequals(element, "chunked");
    }
  }
  return codings == 1 && chunked;
}

}  // namespace

std::optional<std::string_view> framing_problem(std::string_view raw_head,
                                                const beast_http::request_header<>& head) {
  // A field line that begins with a space or a tab continues the one before (obs-fold). The
  // request line never does, so any such line after the first is one.
  const auto body_of_head = raw_head.substr(0, raw_head.size() >= 2 ? raw_head.size() - 2 : 0);
  if (body_of_head.find("\n ") != std::string_view::npos || body_of_head.find("\n\t") != std::string_view::npos)
    return "A header field line is folded (obs-fold); send each field on one line";

  const auto te = head.count(beast_http::field::transfer_encoding);
  if (te > 0) {
    if (head.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    if (head.count(beast_http::field::content_length) > 0)
      return "Both Transfer-Encoding and Content-Length: the body's length is ambiguous";
    if (!only_chunked(head)) return "Transfer-Encoding must be exactly \"chunked\"";
  }
  if (head.version() >= 11) {
    const auto hosts = head.count(beast_http::field::host);
    if (hosts == 0) return "An HTTP/1.1 request must have a Host field";
    if (hosts > 1) return "More than one Host field";
  }
  return std::nullopt;
}

}  // namespace river::http::detail
