#pragma once

// Redis Cluster's key-to-slot function: CRC16 (XMODEM) of the key modulo 16384, where a key with
// a hash tag (the part between the first `{` and the next `}`, when not empty) hashes by the tag
// alone. River's run keys carry the stream's name as their tag (src/redis/keys.hpp).

#include <array>
#include <cstdint>
#include <string_view>

namespace river::redis::detail {

inline constexpr std::uint16_t cluster_slot_count = 16384;

inline constexpr auto crc16_table = [] {
  std::array<std::uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    unsigned crc = byte << 8;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
    table[byte] = static_cast<std::uint16_t>(crc);
  }
  return table;
}();

constexpr std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (char c : bytes)
    crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
  return crc;
}

/// The part of `key` that Redis Cluster hashes.
constexpr std::string_view hashed_part(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

/// The cluster slot of `key` (what `CLUSTER KEYSLOT key` answers).
constexpr std::uint16_t hash_slot(std::string_view key) noexcept {
  return static_cast<std::uint16_t>(crc16(hashed_part(key)) & (cluster_slot_count - 1));
}

}  // namespace river::redis::detail
