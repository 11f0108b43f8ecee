#pragma once

// A reader of a run in Redis: it replays with XRANGE on the command connection until it has
// caught up, then reads from the run's feed on this instance (the owner's own, or one filled
// after the owner's notices), which it shares with every other reader of the run here. A reader
// of a run this instance runs reads its feed from the start, replaying only what lies before
// the feed's window. Both
// reads are "entries after my position", so nothing is lost or repeated between them; a reader
// that falls behind the feed's window replays again. Its replays, and the feed's reads, are
// `range_after` reads: if Redis lost the entry it read last, it ends with a fatal error instead
// of reading past the hole.

#include "provider_state.hpp"

#include <river/detail/record_log.hpp>

namespace river::redis::detail {

class reader final : public log_reader {
 public:
  /// A reader after `from`, an entry read in the client's epoch `from_epoch` (or the start).
  reader(std::shared_ptr<provider_state> st, run_keys keys, entry_id from, std::uint64_t from_epoch, const executor& ex,
         std::optional<std::string> fatal = std::nullopt);
  ~reader() override;

  asio::awaitable<result<read_status>> read(std::vector<record_view>& out, std::size_t max,
                                            clock_type::time_point deadline) override;
  read_status poll(std::vector<record_view>& out, std::size_t max) override;
  bool finished() const override { return ended_; }

 private:
  enum class step { records, wait, replay, again };

  // Takes what the feed holds after the position; registers to be woken when `sleep`.
  step from_feed(std::vector<record_view>& out, std::size_t max, bool sleep);
  // One XRANGE after the position: the records (framed here), or the end.
  asio::awaitable<result<bool>> replay(std::vector<record_view>& out, std::size_t max);
  void emit_fatal(std::vector<record_view>& out);

  std::shared_ptr<provider_state> st_;
  const run_keys keys_;
  entry_id pos_;
  std::uint64_t epoch_;  // the client's epoch in which `pos_` was last known to be in Redis
  river::detail::log_sleeper sleeper_;
  std::optional<std::string> fatal_;
  std::shared_ptr<run_feed> feed_;
  river::detail::page_pins pins_;  // the feed's pages that the last records handed out lie in
  std::string owned_;              // frames read by replay, or the fatal error
  request req_;
  bool ended_ = false;
};

}  // namespace river::redis::detail
