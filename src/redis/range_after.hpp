#pragma once

// A read of a run's entries after one a reader already has. From a server reached in another
// client epoch than that entry was read in (a reconnect, a failover), the read starts at the
// entry itself, one entry more, and goes on only if it is still first: Redis may have lost it (a
// replica promoted without it, a restart without persistence), and what follows it now would be
// read past a hole. A reply that came while the epoch changed proves nothing: read again.

#include "provider_state.hpp"

#include <optional>

namespace river::redis::detail {

class range_after {
 public:
  enum class outcome {
    entries,  ///< the entries after `last` (the reply's first `skipped()` are not)
    lost,     ///< `last` is gone from Redis
    stale,    ///< answered in an epoch not checked yet: read again
  };

  /// After `last`, read in the client's epoch `read_in`; none: no check (the owner's own feed,
  /// whose writer checks instead).
  range_after(const client& c, entry_id last, std::optional<std::uint64_t> read_in)
      : epoch_(c.epoch()), last_(last), check_(read_in && *read_in != epoch_ && last != entry_id{}) {}

  /// `XRANGE key (last + COUNT count`, or from `last` itself with one more when it checks.
  void push(request& req, std::string_view key, std::size_t count) const {
    const entry_id_text id(last_);
    char exclusive[sizeof(id) + 1] = {'('};
    std::copy(id.view().begin(), id.view().end(), exclusive + 1);
    const auto from = check_ ? id.view() : std::string_view(exclusive, id.view().size() + 1);
    const auto n = std::to_string(count + skipped());
    req.push({"XRANGE", key, from, "+", "COUNT", n});
  }

  /// What a reply to that read (an array) means.
  outcome judge(const client& c, const value& reply) const {
    if (c.epoch() != epoch_) return outcome::stale;
    if (check_ && !range_starts_at(reply, last_)) return outcome::lost;
    return outcome::entries;
  }

  /// Entries of the reply that are `last` itself.
  std::size_t skipped() const noexcept { return check_ ? 1 : 0; }
  /// The epoch the read was made in: what it returns was read in it.
  std::uint64_t epoch() const noexcept { return epoch_; }

  /// The `stream_fatal_error` a reader ends with when `last` is gone.
  std::string lost_event(const std::string& key) const {
    return fatal_event(std::string(history_lost_text), {{"key", key}, {"position", last_.to_string()}});
  }

 private:
  std::uint64_t epoch_;
  entry_id last_;
  bool check_;
};

}  // namespace river::redis::detail
