#pragma once

// Base64 for resumption tokens: encodes the standard alphabet with padding, decodes the standard
// and the URL-safe alphabets, padded or not, and nothing else.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace river::detail {

inline std::string base64_encode(std::string_view in, bool url_safe = false, bool pad = true) {
  const char* alphabet = url_safe
                             ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  // Sized once and written through a pointer: a token is encoded for every run started.
  const std::size_t rest = in.size() % 3;
  const std::size_t tail = rest == 0 ? 0 : (pad ? 4 : rest + 1);
  std::string out(in.size() / 3 * 4 + tail, '\0');
  char* to = out.data();
  auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])); };
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    *to++ = alphabet[(v >> 18) & 63];
    *to++ = alphabet[(v >> 12) & 63];
    *to++ = alphabet[(v >> 6) & 63];
    *to++ = alphabet[v & 63];
  }
  if (rest != 0) {
    std::uint32_t v = byte(i) << 16;
    if (rest == 2) v |= byte(i + 1) << 8;
    *to++ = alphabet[(v >> 18) & 63];
    *to++ = alphabet[(v >> 12) & 63];
    if (rest == 2) *to++ = alphabet[(v >> 6) & 63];
    if (pad) *to++ = '=';
    if (pad && rest == 1) *to++ = '=';
  }
  return out;
}

/// Why a base64 text did not decode.
struct base64_failure {
  std::string reason;
};

/// Decodes standard or URL-safe base64, with or without padding. Mixing the two alphabets,
/// whitespace, misplaced or excess padding and impossible lengths are refused.
inline bool base64_decode(std::string_view in, std::string& out, base64_failure& why) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::size_t padding = 0;
  while (padding < in.size() && in[in.size() - 1 - padding] == '=') ++padding;
  const std::string_view body = in.substr(0, in.size() - padding);
  if (padding > 2) {
    why.reason = "too much padding";
    return false;
  }
  if (padding != 0 && in.size() % 4 != 0) {
    why.reason = "padded length is not a multiple of 4";
    return false;
  }
  if (body.size() % 4 == 1) {
    why.reason = "impossible length";
    return false;
  }
  if (padding != 0 && (body.size() + padding) % 4 != 0) {
    why.reason = "wrong amount of padding";
    return false;
  }
  bool standard = false, url_safe = false;
  out.clear();
  out.reserve(body.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    const int v = value_of(c);
    if (v < 0) {
      why.reason = c == '=' ? "padding in the middle" : "invalid character at offset " + std::to_string(i);
      return false;
    }
    standard |= (c == '+' || c == '/');
    url_safe |= (c == '-' || c == '_');
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (standard && url_safe) {
    why.reason = "mixes the standard and URL-safe alphabets";
    return false;
  }
  return true;
}

}  // namespace river::detail
