#pragma once

// How a fuzz input is split into the bytes under test and the pieces they are fed in. The first
// byte's low four bits say how many piece lengths follow (one byte each), its high four bits are
// options of the target; the rest is the data, fed in pieces of those lengths, the last piece
// taking what is left. A seed that starts with a zero byte is fed whole, without options.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace river::fuzz {

struct pieces {
  unsigned options = 0;            // 0 to 15
  std::string_view data;           // the bytes under test
  std::vector<std::size_t> cuts;   // where pieces end, ascending, each within `data`

  static pieces of(const std::uint8_t* bytes, std::size_t size) {
    pieces p;
    if (size == 0) return p;
    const unsigned count = bytes[0] & 0x0Fu;
    p.options = bytes[0] >> 4;
    std::size_t i = 1;
    std::vector<std::size_t> lengths;
    for (; i < size && lengths.size() < count; ++i) lengths.push_back(bytes[i]);
    p.data = std::string_view(reinterpret_cast<const char*>(bytes + i), size - i);
    std::size_t at = 0;
    for (auto n : lengths) {
      at = std::min(at + n, p.data.size());
      p.cuts.push_back(at);
    }
    return p;
  }

  /// The pieces themselves, in order; together they are `data`.
  std::vector<std::string_view> split() const {
    std::vector<std::string_view> out;
    std::size_t from = 0;
    for (auto cut : cuts) {
      out.push_back(data.substr(from, cut - from));
      from = cut;
    }
    out.push_back(data.substr(from));
    return out;
  }
};

}  // namespace river::fuzz
