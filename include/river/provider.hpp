#pragma once

#include <river/detail/watch_counts.hpp>
#include <river/error.hpp>
#include <river/read_from.hpp>
#include <river/run_watch.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace river {

/// A provider stores the logs of runs and reads them back.
///
/// A run log is an append-only sequence of records, each an opaque text (River stores the JSON
/// of one event) at a position, closed by its last record. Nothing here knows River's events,
/// so the same log can carry other encodings.
///
/// River ships two providers: `river::memory::provider` (the embedded default) and
/// `river::redis::provider`. Writing a third means implementing `provider`, `log_writer` and
/// `log_reader`; `tests/core/provider_contract.hpp` in River's sources holds the behaviour they
/// must show, as tests a provider's own test suite instantiates with `RIVER_PROVIDER_CONTRACT`
/// (both of River's providers run them).
///
/// All operations are coroutines that River awaits on its own executors; a provider must be safe
/// to use from several threads at once. Expected failures (an unknown run, a bad position, full
/// storage) are returned as `result` errors, never thrown.

/// One stored record as a reader sees it. The views stay valid until the reader's next `read`
/// or its destruction.
struct record_view {
  std::string_view position;
  std::string_view data;
  /// The record's bytes on an event stream, `data: DATA\n\nid: POSITION\n\n`, when the provider
  /// keeps them (River's providers write each record's frame once, when it is stored, with
  /// `detail::write_frame`; `position` and `data` then view into it). Adapters write frames as
  /// they are, and consecutive frames that are adjacent in memory in one piece. Empty when the
  /// provider keeps no frames: adapters then format the record themselves.
  std::string_view frame;
};

/// What a `log_reader::read` found.
enum class read_status {
  records,  ///< at least one record was added to the output
  idle,     ///< the deadline passed with nothing new
  end,      ///< the log is closed and every record was read
};

/// Appends the records of one run, in order. Obtained from `provider::create_log`. River calls
/// a writer from one strand (its run's), never from two threads at once; a writer may run work
/// of its own on the executor of its caller.
class log_writer {
 public:
  virtual ~log_writer() = default;

  /// Appends one record and completes when it is stored, with its position; or, for a provider
  /// that writes behind (the Redis provider within its `write_window`), as soon as it is queued
  /// to be stored in call order, its position chosen. Readers see a record only once it is
  /// stored. A queued record that the storage then fails stops the log: later appends fail.
  ///
  /// `last` marks the closing record: afterwards the log refuses appends (`errc::run_closed`)
  /// and readers end after reading it. Records are stored in the order of the calls: a call is
  /// made when the returned awaitable starts, so River never needs to wait for one append before
  /// making the next. `data` is valid until the operation first suspends (River reuses its
  /// buffer): a provider copies what it keeps before its first `co_await`. A writer destroyed
  /// before its last record must close the log so that readers do not wait forever (the memory
  /// provider appends a fatal error). Once called, an append is stored or fails as a whole: the
  /// cancellation of the coroutine that awaits it (a cancelled run's runner) must not stop it
  /// half way, where the storage holds a record its readers never get.
  virtual asio::awaitable<result<std::string>> append(std::string_view data, bool last) = 0;
};

/// Reads one run log from a position onwards. One reader has one user at a time.
class log_reader {
 public:
  virtual ~log_reader() = default;

  /// Adds to `out` at most `max` records that follow this reader's position and moves past them.
  ///
  /// Waits until a record is there, the log is closed and fully read (`read_status::end`) or
  /// `deadline` passes (`read_status::idle`). Per-operation cancellation (terminal, partial,
  /// total) completes it with `asio::error::operation_aborted` and moves past nothing.
  virtual asio::awaitable<result<read_status>> read(std::vector<record_view>& out, std::size_t max,
                                                    std::chrono::steady_clock::time_point deadline) = 0;

  /// `read` without waiting: adds at most `max` records that are ready now and returns
  /// `read_status::records`, `read_status::end`, or `read_status::idle` when `read` would wait.
  /// It never fails (failures are `read`'s to report) and costs no coroutine, so an adapter that
  /// forwards records as they come polls first and reads only to wait. The default finds
  /// nothing ready, which sends every caller to `read`.
  virtual read_status poll(std::vector<record_view>& out, std::size_t max) {
    (void)out;
    (void)max;
    return read_status::idle;
  }

  /// Whether this reader has read the log's last record: its next `read` returns
  /// `read_status::end`. A hint that lets a caller end a response with its last records rather
  /// than in a write of its own; the default says no.
  virtual bool finished() const { return false; }
};

/// Whether a provider reaches its storage, for health checks and metrics.
struct storage_health {
  bool reachable = true;                     ///< the storage answers (always, for memory)
  std::string storage;                       ///< what it is, for people: "redis 127.0.0.1:6379"
  std::string detail;                        ///< why it is not reachable
  std::chrono::milliseconds down_for{0};     ///< how long it has not been
  std::uint64_t outages = 0;                 ///< outages so far
  std::chrono::milliseconds down_total{0};   ///< time spent in outages so far (ended ones)
};

/// The writer of a new run log, and a reader of it from its start (for whoever started the run,
/// which works even where the provider cannot resume).
struct new_log {
  std::shared_ptr<log_writer> writer;
  std::unique_ptr<log_reader> reader;
};

class provider {
 public:
  virtual ~provider() = default;

  /// The provider's id in resumption tokens ("memory", "redis").
  virtual std::string_view id() const noexcept = 0;
  /// The storage namespace of the runs this provider creates (a token's "streamStorageId").
  virtual std::string_view storage_id() const noexcept = 0;
  /// Whether a run can be read again after its start, by id.
  virtual bool resumable() const noexcept = 0;

  /// Creates the log of a new run.
  ///
  /// `on_cancel_request` is called, from any thread, when `request_cancel` names this run from
  /// anywhere the provider reaches (another server instance included). It may be called more
  /// than once, and must not be called after the log is closed and its writer destroyed.
  virtual asio::awaitable<result<new_log>> create_log(std::string run_id,
                                                      std::function<void()> on_cancel_request) = 0;

  /// Opens a reader of an existing run log: from its start, after a position, or its last N
  /// records (`read_from`). Errors: `errc::run_not_found` (unknown or expired),
  /// `errc::invalid_position` (not a position of this run, as this provider writes them; `0` is
  /// the place before the first record), `errc::not_resumable`.
  virtual asio::awaitable<result<std::unique_ptr<log_reader>>> open_log(std::string storage_id, std::string run_id,
                                                                        read_from from) = 0;

  /// Asks a run to stop, wherever it executes. Errors: `errc::run_not_found`,
  /// `errc::run_already_finished`.
  virtual asio::awaitable<result<void>> request_cancel(std::string storage_id, std::string run_id) = 0;

  /// Counts one reader of a run until the returned watch is destroyed, for streams whose
  /// `disconnect_policy` cancels unwatched runs (River calls it for each of their readers).
  /// Cheap and never waits. The default counts the readers of this process; a provider whose runs
  /// are read from several processes also makes them known to the others (the Redis provider
  /// keeps a presence entry per instance in Redis).
  virtual run_watch watch(std::string_view storage_id, std::string_view run_id) {
    return local_watches_->watch(watch_key(storage_id, run_id));
  }

  /// Whether a run of this provider has a reader now, anywhere the provider knows of. A provider
  /// that cannot tell (its storage unreachable) answers `true`: no run is cancelled on a doubt.
  virtual asio::awaitable<result<bool>> watched(std::string storage_id, std::string run_id) {
    co_return local_watches_->count(watch_key(storage_id, run_id)) > 0;
  }

  /// Whether the provider reaches its storage now. Cheap: a server asks at every `/healthz`.
  /// The default (a provider with no remote storage) is always reachable.
  virtual storage_health health() const { return storage_health{true, std::string(id()), {}, {}, 0, {}}; }

  /// Releases what the provider holds open (connections, background work), at shutdown: a server
  /// calls it for every provider of its router once its streams have ended, while its executor
  /// still runs. Afterwards operations may fail. The default does nothing.
  virtual asio::awaitable<void> close() { co_return; }

 private:
  static std::string watch_key(std::string_view storage_id, std::string_view run_id) {
    std::string key(storage_id);
    key.append("-").append(run_id);
    return key;
  }

  std::shared_ptr<detail::watch_counts> local_watches_ = detail::watch_counts::make();
};

}  // namespace river
