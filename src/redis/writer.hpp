#pragma once

// The writer of a run this instance owns. It writes behind: an append is queued in call order
// and completes at once while fewer than `config::write_window` appends (or bytes) of the run
// wait for Redis; past that it waits for room, and the last record waits until it is stored.
// A drain sends what is queued as one batch of pipelined XADDs (batches of every run share the
// command connection and travel together), one batch of a run in flight at a time; the last
// record, its end entry, the retention and the lease's release go in one MULTI/EXEC. An
// acknowledged batch goes into the run's own feed, in Redis's order and with Redis's ids, for
// the readers of this instance, and one notice per batch on the run's channel tells readers
// elsewhere. Readers anywhere see an event only once Redis holds it.
//
// Short outages are a delay: a batch that cannot reach Redis waits for the connection and is
// sent again, until the outage limit. Each entry's id is chosen here (time-based, strictly
// increasing), so a batch sent again after a connection dropped under it is stored at most
// once: Redis refuses an id that is not past the stream's last (the entries the first attempt
// stored), and when it refuses the batch's final one the writer checks that the stream's last
// entry is its own. A batch that fails stops the run: the appends after it fail.
//
// Failovers: Redis replicates asynchronously, so a replica that takes its master's place may
// lack the last batches the master acknowledged. When the client's epoch changes (a reconnect,
// a slot moved), the last entry stored before must still be there before readers see anything
// more; if it is gone the run is stopped ("history lost"). With `wait_replicas`, each batch
// ends with a `WAIT` and reaches readers only once the replicas hold it.

#include "provider_state.hpp"

#include <optional>
#include <vector>

namespace river::redis::detail {

class writer final : public log_writer, public std::enable_shared_from_this<writer> {
 public:
  writer(std::shared_ptr<provider_state> st, std::shared_ptr<local_run> run)
      : st_(std::move(st)), run_(std::move(run)), epoch_(st_->cmd.epoch()) {}
  ~writer() override;

  asio::awaitable<result<std::string>> append(std::string_view data, bool last) override;

 private:
  struct pending {
    std::string_view event;  // in its frame, staged in the run's feed
    entry_id id;
    entry_id_text id_text;
  };

  // Sends the queue a batch at a time until it is empty or a batch fails. It holds the writer:
  // once called, an append is stored or fails as a whole, whatever happens to its caller.
  static asio::awaitable<void> drain(std::shared_ptr<writer> self);
  // Stores `batch_`; the error that stops the run when it cannot.
  asio::awaitable<std::optional<river::error>> store_batch();
  // The batch's commands into `req_`, with its notice when `with_notice` and one is due.
  void encode_batch(bool with_notice);
  // Whether the batch in `batch_` is announced to readers elsewhere.
  bool wants_notice() const;
  // The notice of a batch sent without it, once the batch is settled.
  void publish_notice();
  // Sends `req` until Redis answers it or the outage limit passes: a short outage is a delay.
  // The batch (`req_`) is sent again without its notice.
  asio::awaitable<result<response>> until_answered(const request& req);
  // What a stored batch still needs before readers see it: the replicas `wait_replicas` asks
  // for, and the history before it kept across an epoch change. `wait_reply`: the batch's WAIT.
  asio::awaitable<std::optional<river::error>> settle_batch(const value* wait_reply);
  // The common case of `settle_batch`, without a coroutine: replicated as asked, same epoch.
  // False when `settle_batch` has work to do.
  bool settled_at_once(const value* wait_reply);
  // A batch is settled: the history is whole up to it, and readers elsewhere may learn of it.
  void settled();
  // When the client's epoch changed: whether the last entry stored before is still in Redis.
  asio::awaitable<std::optional<river::error>> check_history();
  // Asks for `wait_replicas` replicas again, until the outage limit.
  asio::awaitable<std::optional<river::error>> replicate();
  // Stops the run: Redis failed it for `cause`.
  river::error stop(stop_cause cause, std::string message);
  // Hands a stored batch to this instance's readers.
  void feed_batch();
  // The next entry id: past the last, from this host's clock.
  entry_id next_id();
  // After Redis refused an id as not past the stream's last: whether the last is `id` (ours,
  // stored by an earlier attempt), or `end_id` for the last record (its end entry).
  asio::awaitable<bool> stored_already(const entry_id& id, const std::optional<entry_id>& end_id);
  // Waits, out of reach of its caller's cancellation, until a batch was stored or failed.
  asio::awaitable<void> wait_for_batch();
  bool window_full() const;
  river::error stopped_error() const;
  river::error failed(error_code ec);

  std::shared_ptr<provider_state> st_;
  std::shared_ptr<local_run> run_;
  request req_;  // reused: its bytes are copied when the command is queued
  entry_id last_id_;
  std::vector<pending> queue_;  // appended, not sent yet, in call order
  std::vector<pending> batch_;  // sent, not acknowledged yet
  std::vector<const value*> answers_;  // each XADD's reply in a batch's replies; reused
  std::size_t pending_bytes_ = 0;   // of the events in `queue_` and `batch_`
  bool last_queued_ = false, last_in_batch_ = false;
  entry_id end_id_;  // of the end entry, once the last record is queued
  // The client's epoch when the history was last known whole, and the last entry stored then.
  std::uint64_t epoch_ = 0;
  std::optional<entry_id> checkpoint_;
  bool draining_ = false;
  bool notice_inline_ = false;  // the batch's request carries its notice
  // Set once a batch failed: the appends still queued and those that follow fail with it.
  std::optional<river::error> failure_;
  // The last record's outcome, once its batch is done.
  std::optional<result<void>> last_outcome_;
  // Appends that wait for room or for the last record: woken (cancelled) after every batch.
  std::optional<asio::steady_timer> batch_done_;
};

}  // namespace river::redis::detail
