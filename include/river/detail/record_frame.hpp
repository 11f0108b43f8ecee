#pragma once

// A record's frame: its bytes on an event stream (docs/protocol.md section 4), a `data:` message
// with the record's data and an id-only message with its position:
//
//   data: DATA\n\nid: POSITION\n\n
//
// Providers write each record's frame once, when it is stored, and keep it; every reader, live
// or replaying, then writes those same bytes. The data and the position are views into the frame.

#include <river/provider.hpp>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace river::detail {

inline constexpr std::string_view frame_data_prefix = "data: ";
inline constexpr std::string_view frame_id_prefix = "\n\nid: ";
inline constexpr std::string_view frame_suffix = "\n\n";

/// The size of the frame of a record.
constexpr std::size_t frame_size(std::size_t data_size, std::size_t position_size) noexcept {
  return frame_data_prefix.size() + data_size + frame_id_prefix.size() + position_size + frame_suffix.size();
}

/// The index of the first '\n' or '\r' in `s`, or its size. Sixteen bytes at a time with SSE2.
inline std::size_t first_line_break(std::string_view s) noexcept {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)))))
      return i + static_cast<std::size_t>(__builtin_ctz(mask));
  }
#endif
  for (; i < s.size(); ++i)
    if (s[i] == '\n' || s[i] == '\r') return i;
  return s.size();
}

/// Writes the frame of a record at `out` (`frame_size` bytes) and returns the record's views into
/// it. Stored data is compact JSON, which has no line breaks; a line break in `data` would end the
/// `data:` line early, so each becomes a space, which is the same JSON (a raw line break can only
/// be whitespace between tokens).
inline record_view write_frame(char* out, std::string_view position, std::string_view data) noexcept {
  char* p = out;
  std::memcpy(p, frame_data_prefix.data(), frame_data_prefix.size());
  p += frame_data_prefix.size();
  char* const data_at = p;
  if (!data.empty()) std::memcpy(p, data.data(), data.size());
  for (auto i = first_line_break(data); i < data.size(); ++i)
    if (data_at[i] == '\n' || data_at[i] == '\r') data_at[i] = ' ';
  p += data.size();
  std::memcpy(p, frame_id_prefix.data(), frame_id_prefix.size());
  p += frame_id_prefix.size();
  char* const position_at = p;
  std::memcpy(p, position.data(), position.size());
  p += position.size();
  std::memcpy(p, frame_suffix.data(), frame_suffix.size());
  p += frame_suffix.size();
  return record_view{std::string_view(position_at, position.size()), std::string_view(data_at, data.size()),
                     std::string_view(out, static_cast<std::size_t>(p - out))};
}

/// Appends the frame of a record to `out`.
inline void append_frame(std::string& out, std::string_view position, std::string_view data) {
  const auto at = out.size();
  out.resize(at + frame_size(data.size(), position.size()));
  write_frame(out.data() + at, position, data);
}

}  // namespace river::detail
