#pragma once

// A JSON validator that builds nothing: RFC 8259 grammar, strings checked as UTF-8. It checks
// chunks given as JSON text and records read back from storage once, at the speed of a scan,
// where a parser would build a value only to throw it away.

#include <river/detail/json_writer.hpp>

#include <cstddef>
#include <string_view>

namespace river::detail {

class json_validator {
 public:
  /// Most nested arrays and objects accepted.
  static constexpr int max_depth = 512;

  /// True when `text` is one JSON value, optionally surrounded by whitespace.
  static bool valid(std::string_view text) noexcept {
    json_validator v(text);
    v.skip_ws();
    if (!v.value(0)) return false;
    v.skip_ws();
    return v.p_ == v.end_;
  }

 private:
  explicit json_validator(std::string_view text) noexcept
      : p_(reinterpret_cast<const unsigned char*>(text.data())), end_(p_ + text.size()) {}

  void skip_ws() noexcept {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool literal(std::string_view word) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < word.size()) return false;
    for (char c : word)
      if (*p_++ != static_cast<unsigned char>(c)) return false;
    return true;
  }

  static bool digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }
  static bool hex(unsigned char c) noexcept {
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool digits() noexcept {
    if (p_ == end_ || !digit(*p_)) return false;
    while (p_ < end_ && digit(*p_)) ++p_;
    return true;
  }

  bool number() noexcept {
    if (*p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0')
      ++p_;
    else if (!digits())
      return false;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
    }
    return true;
  }

  bool string() noexcept {
    ++p_;  // the opening quote
    for (;;) {
      p_ += plain_ascii_prefix(p_, end_);
      if (p_ == end_) return false;
      const unsigned char c = *p_;
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (++p_ == end_) return false;
        switch (*p_) {
          case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': ++p_; break;
          case 'u':
            if (end_ - p_ < 5 || !hex(p_[1]) || !hex(p_[2]) || !hex(p_[3]) || !hex(p_[4])) return false;
            p_ += 5;
            break;
          default: return false;
        }
        continue;
      }
      if (c < 0x20) return false;
      const auto n = utf8_sequence_length(p_, end_);
      if (n == 0) return false;
      p_ += n;
    }
  }

  bool value(int depth) noexcept {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return (*p_ == '-' || digit(*p_)) && number();
    }
  }

  bool array(int depth) noexcept {
    if (depth > max_depth) return false;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == ']') return ++p_, true;
    for (;;) {
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ']') return ++p_, true;
      if (*p_++ != ',') return false;
    }
  }

  bool object(int depth) noexcept {
    if (depth > max_depth) return false;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == '}') return ++p_, true;
    for (;;) {
      skip_ws();
      if (p_ == end_ || *p_ != '"' || !string()) return false;
      skip_ws();
      if (p_ == end_ || *p_++ != ':') return false;
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == '}') return ++p_, true;
      if (*p_++ != ',') return false;
    }
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

/// True when `text` is one valid JSON value (see `json_validator`).
inline bool is_valid_json(std::string_view text) noexcept { return json_validator::valid(text); }

}  // namespace river::detail
