#pragma once

// A run's feed: the window of its newest entries that this instance's readers share. The owner's
// feed is filled by its writer with each acknowledged append (the XADD reply is the entry's id,
// hence its position); another instance's feed is filled by XRANGE after each notice the owner
// publishes. Either way each entry is checked and framed once here, and every reader of the run
// on this instance writes the same frames.

#include "keys.hpp"

#include <river/detail/event_writer.hpp>
#include <river/detail/json_validator.hpp>
#include <river/detail/record_log.hpp>
#include <river/redis/detail/stream_entry.hpp>
#include <river/redis/value.hpp>

#include <deque>
#include <iterator>
#include <optional>
#include <string>

namespace river::redis::detail {

/// A stored entry as readers see it.
struct entry_meaning {
  enum class kind { item, end, bad } type = kind::bad;
  std::string_view data;  ///< item: the event JSON
  std::string bad_event;  ///< bad: a `stream_error` event that says what is wrong
};

/// What entry `id` of `key`, whose first field is `field` with `text`, means to readers: an
/// event (its JSON is valid), the end, or a bad entry turned into a `stream_error` event.
inline entry_meaning decode_entry(std::string_view id, std::string_view key, std::string_view field,
                                  std::string_view text, bool has_field) {
  entry_meaning m;
  auto error_event = [&](const char* message, nlohmann::json context) {
    return river::detail::event_text([&](std::string& out) {
      river::detail::append_error_event(out, false, river::error(message, error_type::stream, std::move(context)));
    });
  };
  if (has_field && field == "item") {
    if (river::detail::is_valid_json(text)) {
      m.type = entry_meaning::kind::item;
      m.data = text;
    } else {
      m.bad_event = error_event("A stored entry of this run is not valid JSON",
                                {{"position", std::string(id)}, {"key", std::string(key)}});
    }
    return m;
  }
  if (has_field && field == "end") {
    m.type = entry_meaning::kind::end;
    return m;
  }
  m.bad_event = error_event("A stored entry of this run is not a River event",
                            {{"position", std::string(id)}, {"key", std::string(key)}, {"field", std::string(field)}});
  return m;
}

/// The meaning of one entry of an XRANGE reply (`[id, [field, value, ...]]`); false when the
/// reply does not have that shape.
inline bool decode_range_entry(const value& v, entry_id& id, std::string_view& id_text, entry_meaning& m,
                               std::string_view key) {
  if (!v.is_array() || v.elements.size() != 2 || !v.elements[0].is_text()) return false;
  id_text = v.elements[0].text;
  auto parsed = entry_id::parse(id_text);
  if (!parsed) return false;
  id = *parsed;
  const auto& fields = v.elements[1];
  if (fields.is_nil() || (fields.is_array() && fields.elements.empty())) {
    m = decode_entry(id_text, key, {}, {}, false);
    return true;
  }
  if (!fields.is_array() || fields.elements.size() % 2 != 0 || !fields.elements[0].is_text() ||
      !fields.elements[1].is_text())
    return false;
  m = decode_entry(id_text, key, fields.elements[0].text, fields.elements[1].text, true);
  return true;
}

// A feed is a window whose pages come and go as it moves, and as runs come and go: kept below
// malloc's mmap threshold (128 KiB), they are recycled from its heap, where bigger ones are mapped
// for each run and unmapped after it (a page fault per fresh OS page, a TLB flush per unmap).
inline constexpr std::size_t feed_page_bytes = 64 * 1024;

struct run_feed {
  run_feed(run_keys k, entry_id from, bool is_local, std::uint64_t from_epoch = 0)
      : keys(std::move(k)), local(is_local), covered_from(from), last(from), epoch(from_epoch) {}

  const run_keys keys;
  const bool local;  ///< filled by this instance's writer

  // Guarded by `log.mutex`.
  river::detail::record_log log{feed_page_bytes};
  std::deque<entry_id> ids;           ///< the id of each record kept, from `log.begin_locked()` on
  entry_id covered_from;              ///< every entry after this one, up to `last`, is here (or trimmed)
  entry_id last;                      ///< the newest entry read (or acknowledged)
  std::uint64_t epoch;                ///< remote: the client's epoch in which `last` was last read
  bool ended = false;                 ///< the end entry was read: nothing follows
  std::optional<std::string> fatal;   ///< the key cannot be read as a run: readers get this event
  bool leased = true;                 ///< false once known to be written without a lease
  bool fetching = false;              ///< remote: an XRANGE is on its way
  bool fetch_again = false;           ///< remote: a notice came while it was

  // Guarded by the provider's mutex.
  std::size_t readers = 0;

  /// Adds an entry that follows `last`; keeps at most about `window` records. Entries read from
  /// Redis reach the owner's feed only once its writer is gone, when nothing is staged.
  void add_locked(entry_id id, std::string_view id_text, const entry_meaning& m, std::size_t window) {
    if (id <= last) return;
    last = id;
    if (m.type == entry_meaning::kind::end) {
      ended = true;
      log.wake_all_locked();
      return;
    }
    log.append_locked(id_text, m.type == entry_meaning::kind::item ? m.data : std::string_view(m.bad_event));
    ids.push_back(id);
    keep_window_locked(window);
  }

  /// The owner's writer frames each event as it is appended (`log.stage_locked`); once Redis
  /// stored a batch, its oldest staged records (`id_of` gives each one's id) are shown to readers
  /// at once.
  template <class Records, class IdOf>
  void publish_locked(const Records& stored, IdOf id_of, std::size_t window) {
    for (const auto& r : stored) {
      last = id_of(r);
      ids.push_back(last);
    }
    log.publish_locked(std::size(stored));
    keep_window_locked(window);
  }

  /// Ends the readers with `event` (a `stream_fatal_error`).
  void fail_locked(std::string event) {
    if (fatal || ended) return;
    fatal = std::move(event);
    log.wake_all_locked();
  }

  // Keeps between one and two windows of records: trims whole pages past two.
  void keep_window_locked(std::size_t window) {
    if (ids.size() <= 2 * window) return;
    log.trim_locked(window);
    const auto dropped = ids.size() - (log.end_locked() - log.begin_locked());
    if (dropped > 0) {
      covered_from = ids[dropped - 1];
      ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(dropped));
    }
  }

  /// The index of the first record kept whose id is after `pos`.
  std::size_t after_locked(entry_id pos) const {
    auto it = std::upper_bound(ids.begin(), ids.end(), pos);
    return log.begin_locked() + static_cast<std::size_t>(it - ids.begin());
  }
};

}  // namespace river::redis::detail
