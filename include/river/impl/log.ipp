#pragma once

#include <algorithm>
#include <cstdio>

namespace river {

namespace detail {

// A logfmt value: bare when it is a plain word, else quoted with `"` and `\` escaped and
// control characters written as \n, \t or \u00XX, so a record is always one line.
inline void append_logfmt_value(std::string& out, std::string_view v) {
  const bool bare = !v.empty() && v.find_first_of(" =\"\\") == std::string_view::npos &&
                    std::none_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (bare) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (u < 0x20) {
      static constexpr char hex[] = "0123456789abcdef";
      out.append("\\u00");
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace detail

inline std::string to_logfmt(const log_record& r) {
  std::string out = "river";
  auto field = [&](std::string_view key, std::string_view value) {
    if (value.empty()) return;
    out.push_back(' ');
    out.append(key);
    out.push_back('=');
    detail::append_logfmt_value(out, value);
  };
  field("event", r.event);
  field("stream", r.stream);
  field("run", r.run_id);
  field("storage", r.storage_id);
  field("outcome", r.outcome);
  field("cause", r.cause);
  return out;
}

inline log_function log_to_stderr() {
  return [](const log_record& r) {
    auto line = to_logfmt(r);
    line.push_back('\n');
    // One call per line: stdio locks the stream for it, so lines of several threads stay whole.
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
}

}  // namespace river
