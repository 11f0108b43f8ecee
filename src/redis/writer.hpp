#pragma once

// The writer of a run this instance owns: each event one pipelined XADD (appends of every run
// share the command connection and travel together), the last one with the end entry, the
// retention and the lease's release in one MULTI/EXEC. An acknowledged append goes into the
// run's own feed, in Redis's order and with Redis's id, for the readers of this instance; a
// notice on the run's channel tells readers elsewhere, at most one in flight per run.
//
// Short outages are a delay: an append that cannot reach Redis waits for the connection and is
// sent again, until the outage limit. Each entry's id is chosen here (time-based, strictly
// increasing), so an append sent again after a connection dropped under it is stored at most
// once: Redis refuses an id that is not past the stream's last, and the writer then checks that
// the last is its own. Appends of a run go out one at a time, in call order, so a retry is
// never overtaken.

#include "provider_state.hpp"

#include <deque>

namespace river::redis::detail {

class writer final : public log_writer {
 public:
  writer(std::shared_ptr<provider_state> st, std::shared_ptr<local_run> run) : st_(std::move(st)), run_(std::move(run)) {}
  ~writer() override;

  asio::awaitable<result<std::string>> append(std::string_view data, bool last) override;

 private:
  // The append itself, in call order (its turn), as one operation.
  asio::awaitable<result<std::string>> store(std::string event, bool last);
  // Sends the request until Redis answers it or the outage limit passes.
  asio::awaitable<result<response>> send();
  // The next entry id: past the last, from this host's clock.
  entry_id next_id();
  // After Redis refused an id as not past the stream's last: whether the last is `id` (ours,
  // stored by an earlier attempt), or `end_id` for the last record (its end entry).
  asio::awaitable<bool> stored_already(const entry_id& id, const std::optional<entry_id>& end_id);
  asio::awaitable<void> take_turn();
  void pass_turn();
  river::error stopped_error() const;
  river::error failed(error_code ec);

  std::shared_ptr<provider_state> st_;
  std::shared_ptr<local_run> run_;
  request req_;  // reused: its bytes are copied when the command is queued
  entry_id last_id_;
  // The events of appends in flight, kept for the run's feed until Redis acknowledges them
  // (the caller's buffer is reused as soon as the append is queued). Reused too.
  std::vector<std::string> spare_;
  // One append at a time: the others wait here, in call order (all on the run's strand).
  bool busy_ = false;
  std::deque<std::shared_ptr<asio::steady_timer>> waiting_;
};

}  // namespace river::redis::detail
