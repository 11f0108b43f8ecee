#pragma once

// The bytes of an event stream (docs/protocol.md section 4) besides the records' own frames
// (river/detail/record_frame.hpp), with no I/O: what the handler writes and what the tests compare
// byte for byte.

#include <string>
#include <string_view>

namespace river::http::detail {

/// The heartbeat comment of an idle event stream.
inline constexpr std::string_view sse_keep_alive = ": keep-alive\n\n";

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
