#pragma once

// River's one JSON writer. The protocol fixes the order of an event's keys (and TypeScript clients
// print what they get), while nlohmann::json sorts them, so River writes its envelopes itself, and
// writes chunks straight into the event's buffer: strings, numbers, optionals, ranges and types
// described with Boost.Describe without building a JSON value first. Anything else goes through
// its nlohmann_json conversion.

#include <river/json_text.hpp>

#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/// The length of the prefix of [p, end) made of printable ASCII other than '"' and '\\': bytes
/// that JSON strings carry as they are. Sixteen bytes at a time where SSE2 is there (every
/// x86-64), eight otherwise.
inline std::size_t plain_ascii_prefix(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned char* q = p;
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  while (end - q >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    // Signed: bytes from 0x80 up are negative, so "less than a space" also finds non-ASCII.
    const __m128i special = _mm_or_si128(_mm_cmplt_epi8(v, space),
                                         _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special)))
      return static_cast<std::size_t>(q - p) + static_cast<std::size_t>(__builtin_ctz(mask));
    q += 16;
  }
#else
  constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  while (end - q >= 8) {
    std::uint64_t w;
    std::memcpy(&w, q, 8);
    const auto zero_byte = [&](std::uint64_t v) { return (v - ones) & ~v & highs; };
    const std::uint64_t special = ((w - ones * 0x20) & ~w) | zero_byte(w ^ (ones * '"')) |
                                  zero_byte(w ^ (ones * '\\')) | w;
    if (special & highs) break;
    q += 8;
  }
#endif
  while (q < end && *q >= 0x20 && *q != '"' && *q != '\\' && *q < 0x80) ++q;
  return static_cast<std::size_t>(q - p);
}

/// Appends `s` as a JSON string literal, escaped as JSON.stringify does; bytes that are not valid
/// UTF-8 become U+FFFD, so the output is always valid JSON.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  auto p = reinterpret_cast<const unsigned char*>(s.data());
  const auto end = p + s.size();
  while (p < end) {
    const auto run = plain_ascii_prefix(p, end);
    out.append(reinterpret_cast<const char*>(p), run);
    p += run;
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

template <class T>
void write_json(std::string& out, const T& value);

template <class T>
concept json_string_like = std::is_convertible_v<const T&, std::string_view>;

template <class T>
concept json_described = std::is_class_v<T> && boost::describe::has_describe_members<T>::value;

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
concept json_object_range = std::ranges::input_range<const T> && requires(const T& m) {
  typename T::key_type;
  typename T::mapped_type;
  requires std::is_convertible_v<const typename T::key_type&, std::string_view>;
};

template <class T>
concept json_array_range = std::ranges::input_range<const T> && !json_string_like<T> && !json_object_range<T> &&
                           !std::is_same_v<T, nlohmann::json>;

/// Appends the decimal digits of `v`, two at a time.
inline void append_decimal(std::string& out, std::uint64_t v) {
  static constexpr char pairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  char buf[20];
  char* p = buf + sizeof buf;
  while (v >= 100) {
    const auto i = static_cast<std::size_t>(v % 100) * 2;
    v /= 100;
    *--p = pairs[i + 1];
    *--p = pairs[i];
  }
  if (v >= 10) {
    const auto i = static_cast<std::size_t>(v) * 2;
    *--p = pairs[i + 1];
    *--p = pairs[i];
  } else {
    *--p = static_cast<char>('0' + v);
  }
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

template <class T>
void write_json_number(std::string& out, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      out.append("null");  // as nlohmann_json and JSON.stringify write them
      return;
    }
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    out.append(buf, end);
    // nlohmann_json keeps a floating-point value recognisable as one: 1.0, not 1.
    if (std::memchr(buf, '.', static_cast<std::size_t>(end - buf)) == nullptr &&
        std::memchr(buf, 'e', static_cast<std::size_t>(end - buf)) == nullptr)
      out.append(".0");
  } else if constexpr (std::is_signed_v<T>) {
    if (v < 0) {
      out.push_back('-');
      append_decimal(out, static_cast<std::uint64_t>(-(static_cast<std::int64_t>(v) + 1)) + 1);
    } else {
      append_decimal(out, static_cast<std::uint64_t>(v));
    }
  } else {
    append_decimal(out, static_cast<std::uint64_t>(v));
  }
}

/// Appends `value` as compact JSON:
/// - `json_text` as it is (its validity is the caller's to check), `nlohmann::json` as dumped;
/// - strings escaped (invalid UTF-8 becomes U+FFFD), booleans, integers, floating-point numbers
///   (non-finite ones as `null`);
/// - `std::optional` as `null` or its value; maps with string keys as objects; other ranges as
///   arrays;
/// - types described with `BOOST_DESCRIBE_STRUCT` as objects of their public members, in
///   declaration order;
/// - anything else through its nlohmann_json `to_json` (objects with sorted keys).
template <class T>
void write_json(std::string& out, const T& value) {
  if constexpr (std::is_same_v<T, json_text>) {
    out.append(value.text());
  } else if constexpr (std::is_same_v<T, nlohmann::json>) {
    append_json_value(out, value);
  } else if constexpr (std::is_same_v<T, bool>) {
    out.append(value ? "true" : "false");
  } else if constexpr (std::is_same_v<T, std::nullptr_t>) {
    out.append("null");
  } else if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, char>) {
    write_json_number(out, value);
  } else if constexpr (json_string_like<T>) {
    append_json_string(out, std::string_view(value));
  } else if constexpr (is_optional<T>::value) {
    if (value)
      write_json(out, *value);
    else
      out.append("null");
  } else if constexpr (json_described<T>) {
    bool first = true;
    boost::mp11::mp_for_each<
        boost::describe::describe_members<T, boost::describe::mod_public | boost::describe::mod_inherited>>(
        [&](auto member) {
          // A described member's name is a C++ identifier: nothing in it needs escaping.
          static constexpr std::string_view name = member.name;
          out.append(first ? "{\"" : ",\"", 2);
          first = false;
          out.append(name.data(), name.size());
          out.append("\":", 2);
          write_json(out, value.*member.pointer);
        });
    out.append(first ? "{}" : "}", first ? 2 : 1);
  } else if constexpr (json_object_range<T>) {
    out.push_back('{');
    bool first = true;
    for (const auto& [k, v] : value) {
      if (!first) out.push_back(',');
      first = false;
      append_json_string(out, std::string_view(k));
      out.push_back(':');
      write_json(out, v);
    }
    out.push_back('}');
  } else if constexpr (json_array_range<T>) {
    out.push_back('[');
    bool first = true;
    for (const auto& v : value) {
      if (!first) out.push_back(',');
      first = false;
      write_json(out, v);
    }
    out.push_back(']');
  } else {
    append_json_value(out, nlohmann::json(value));
  }
}

void append_error_json(std::string& out, const river::error& e);

}  // namespace river::detail
