#pragma once

// Writers for the exact JSON text of the protocol. nlohmann::json sorts object keys, while the
// protocol fixes their order (and TypeScript clients print what they get), so River writes its own
// envelopes and lets nlohmann write only the values inside them.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace river {
struct error;
}

namespace river::detail {

/// Length of the valid UTF-8 sequence at `p` (1 to 4), or 0 when it is invalid (overlong forms,
/// surrogates and code points past U+10FFFF included).
inline std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned char c = p[0];
  std::size_t n;
  std::uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1Fu; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0Fu; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07u; }
  else return 0;
  if (static_cast<std::size_t>(end - p) < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return n;
}

/// Appends `s` as a JSON string literal, escaped as JSON.stringify does; bytes that are not valid
/// UTF-8 become U+FFFD, so the output is always valid JSON.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  const auto end = p + s.size();
  while (p < end) {
    auto run = p;
    while (run < end && *run >= 0x20 && *run != '"' && *run != '\\' && *run < 0x80) ++run;
    out.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(run - p));
    p = run;
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      if (auto n = utf8_sequence_length(p, end)) {
        out.append(reinterpret_cast<const char*>(p), n);
        p += n;
      } else {
        out.append("\xEF\xBF\xBD");
        ++p;
      }
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        out.append("\\u00");
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
    ++p;
  }
  out.push_back('"');
}

/// Appends any JSON value compactly; invalid UTF-8 inside it becomes U+FFFD.
inline void append_json_value(std::string& out, const nlohmann::json& j) {
  // Strings are the common chunk; writing them directly avoids a temporary.
  if (j.is_string()) {
    append_json_string(out, j.get_ref<const std::string&>());
    return;
  }
  out.append(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void append_error_json(std::string& out, const river::error& e);

}  // namespace river::detail
