#pragma once

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace river {

/// Where a reader of a run begins: at the start, after a position, or at the tail (the last
/// `n` events stored when it opens, then live ones: a dashboard that joins a long run without
/// replaying it).
///
/// Converts from what a position used to be: `std::nullopt` (the start) and a position string.
class read_from {
 public:
  enum class kind {
    start,  ///< every event of the run
    after,  ///< the events strictly after `position()`
    last,   ///< the last `count()` events stored now, then live ones
  };

  /// The start.
  read_from() = default;
  read_from(std::nullopt_t) noexcept {}
  /// After `position` (the start without one).
  read_from(std::optional<std::string> position) {
    if (position) {
      kind_ = kind::after;
      position_ = std::move(*position);
    }
  }
  read_from(std::string position) : kind_(kind::after), position_(std::move(position)) {}
  read_from(const char* position) : kind_(kind::after), position_(position) {}

  /// The last `n` events stored when the reader opens (0: only those that come next).
  static read_from last(std::size_t n) {
    read_from r;
    r.kind_ = kind::last;
    r.count_ = n;
    return r;
  }

  /// Reads the wire form (docs/protocol.md section 3): `now` is `last(0)`, `-N` is `last(N)`,
  /// anything else a position (providers refuse it if it is not theirs). Positions never start
  /// with `-` and are never `now`.
  static read_from parse(std::string_view text) {
    if (text == "now") return last(0);
    if (text.size() > 1 && text.front() == '-') {
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(text.data() + 1, text.data() + text.size(), n);
      if (ec == std::errc() && end == text.data() + text.size() && text[1] != '0') return last(n);
    }
    return read_from(std::string(text));
  }

  kind type() const noexcept { return kind_; }
  /// The position, for `kind::after`.
  const std::string& position() const noexcept { return position_; }
  /// The number of events, for `kind::last`.
  std::size_t count() const noexcept { return count_; }

 private:
  kind kind_ = kind::start;
  std::string position_;
  std::size_t count_ = 0;
};

}  // namespace river
