#pragma once

// The bytes of an event stream (docs/protocol.md section 4), with no I/O: what the handler writes
// and what the tests compare byte for byte.

#include <cstring>
#include <string>
#include <string_view>

namespace river::http::detail {

/// The heartbeat comment of an idle event stream.
inline constexpr std::string_view sse_keep_alive = ": keep-alive\n\n";

/// Appends one stored event: its JSON in a `data:` message, then its position in an id-only
/// message (never both in one message: the TypeScript client would fail to parse the JSON).
///
/// Stored events are compact JSON, which has no line breaks; a provider that stored some anyway
/// gets them replaced by spaces, which is the same JSON (a raw line break can only be whitespace
/// between tokens) and keeps the message one line.
inline void append_sse_event(std::string& out, std::string_view position, std::string_view json) {
  out.append("data: ");
  const auto start = out.size();
  out.append(json);
  if (std::memchr(json.data(), '\n', json.size()) || std::memchr(json.data(), '\r', json.size())) {
    for (auto i = start; i < out.size(); ++i)
      if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
  }
  out.append("\n\nid: ");
  out.append(position);
  out.append("\n\n");
}

/// Appends the size line of an HTTP/1.1 chunk (`HEX\r\n`).
inline void append_chunk_size(std::string& out, std::size_t size) {
  char digits[2 * sizeof(std::size_t)];
  std::size_t n = 0;
  do {
    digits[n++] = "0123456789abcdef"[size & 15u];
    size >>= 4;
  } while (size != 0);
  while (n > 0) out.push_back(digits[--n]);
  out.append("\r\n");
}

}  // namespace river::http::detail
