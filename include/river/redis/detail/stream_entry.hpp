#pragma once

// Stream entry ids and the decoding of XRANGE replies: pure functions over `value`.

#include <river/redis/error.hpp>
#include <river/redis/value.hpp>

#include <boost/system/result.hpp>

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace river::redis::detail {

/// A stream entry id, `MS-SEQ`, compared numerically.
struct entry_id {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;

  /// Parses `MS-SEQ` (both parts decimal as Redis writes them: no sign, spaces or leading
  /// zeros); `MS` alone is not an entry id.
  static std::optional<entry_id> parse(std::string_view text) noexcept;
  std::string to_string() const;

  friend auto operator<=>(const entry_id&, const entry_id&) = default;
  friend bool operator==(const entry_id&, const entry_id&) = default;
};

/// An entry id as text (`MS-SEQ`) in a buffer of its own: no allocation, for ids written per event.
class entry_id_text {
 public:
  explicit entry_id_text(const entry_id& id = {}) noexcept;
  std::string_view view() const noexcept { return {chars_, size_}; }

 private:
  char chars_[41]{};  // two 20-digit numbers and the dash
  std::uint8_t size_ = 0;
};

/// One stream entry: its id and its field/value pairs in stored order.
struct stream_entry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;

  friend bool operator==(const stream_entry&, const stream_entry&) = default;
};

/// Decodes an XRANGE / XREVRANGE reply (an array of `[id, [field, value, ...]]`).
/// An error reply gives `error::server_error`, any other shape `error::unexpected_reply`.
boost::system::result<std::vector<stream_entry>> decode_range(const value& reply);

/// Whether an XRANGE reply's first entry is `id`: a read that starts at an entry read before
/// finds it still there.
bool range_starts_at(const value& reply, const entry_id& id);

}  // namespace river::redis::detail
