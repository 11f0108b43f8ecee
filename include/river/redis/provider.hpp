#pragma once

#include <river/provider.hpp>
#include <river/redis/config.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace river::redis {

namespace detail {
struct provider_state;
}

/// The Redis Streams provider: run logs that any number of server instances share, in the
/// layout of the TypeScript River Redis provider (protocol.md, section 7).
///
/// A run lives under `stream-STORAGEID-RUNID`; each event is one `XADD` with the field `item`,
/// the terminal event is followed by the entry `end STREAM_END`, and entry ids are positions.
/// Appends of all runs share one pipelined connection, so appends made while others are on the
/// wire travel together; `append` completes when Redis acknowledged the entry.
///
/// Readers on the instance that runs a run are fed from its acknowledged appends, in Redis's
/// order and with Redis's ids. Readers elsewhere follow the run through small notices the owner
/// publishes on the run's sharded pub/sub channel; one instance-wide subscriber connection reads
/// them, and each notice brings one `XRANGE` from the newest entry held: the work per event does
/// not grow with the number of runs followed. Each entry is checked and framed once per
/// instance, and every reader there writes the same bytes.
///
/// Besides the run's stream, the owner keeps a lease (`river-lease:{stream-S-R}`, renewed while
/// it runs) and listens on the run's control channel for cancel requests from any instance.
/// When a lease lapses before the run's end, readers close the run's log with a
/// `stream_fatal_error` ("producer lost"), exactly once. docs/protocol.md lists every key.
///
/// Thread safety: all operations may be called from any thread. The provider's own work runs on
/// strands of the executor it was given; it starts no thread.
///
/// Lifetime: destroying the provider (or `close`) closes its connections; writers and readers
/// still held then fail their operations with a storage error.
class provider final : public river::provider {
 public:
  /// What the provider does now.
  struct stats {
    std::size_t connections = 0;       ///< Redis connections open (commands + subscriber)
    std::size_t running = 0;           ///< runs of this instance in progress
    std::size_t followed = 0;          ///< runs of other instances that readers here follow
    std::uint64_t appends = 0;         ///< events acknowledged by Redis
    std::uint64_t writes = 0;          ///< socket writes of the command connection
    std::uint64_t producers_lost = 0;  ///< runs this process closed as "producer lost"
    std::uint64_t notices = 0;         ///< notices of new entries received for followed runs
    std::uint64_t fetches = 0;         ///< XRANGE reads of followed runs after notices
  };

  /// Connects (in the background) to `cfg.url`. Throws `std::invalid_argument` for a bad URL.
  provider(executor ex, config cfg);
  ~provider() override;
  provider(const provider&) = delete;
  provider& operator=(const provider&) = delete;

  std::string_view id() const noexcept override { return "redis"; }
  std::string_view storage_id() const noexcept override;
  bool resumable() const noexcept override { return true; }

  /// Errors: `errc::storage_failure` when Redis cannot be reached or the run id is taken.
  asio::awaitable<result<new_log>> create_log(std::string run_id,
                                              std::function<void()> on_cancel_request) override;

  /// Errors: `errc::run_not_found` (no such key: never existed or expired),
  /// `errc::invalid_position` (not an entry id of this run), `errc::storage_failure`.
  /// A key of another type gives a reader that yields one `stream_fatal_error`.
  asio::awaitable<result<std::unique_ptr<log_reader>>> open_log(std::string storage_id, std::string run_id,
                                                                read_from from) override;

  /// Reaches the run's instance through its control channel. Errors: `errc::run_not_found`,
  /// `errc::run_already_finished`, `errc::storage_failure` (Redis unreachable, or a run without
  /// a lease, such as one written by the TypeScript provider).
  asio::awaitable<result<void>> request_cancel(std::string storage_id, std::string run_id) override;

  /// Counts a reader of the run here, and marks in Redis (`river-readers:{stream-S-R}`, renewed
  /// every third of `config::presence_ttl`) that this instance has readers of it, unless it runs
  /// the run itself.
  run_watch watch(std::string_view storage_id, std::string_view run_id) override;

  /// Readers here, or marks of other instances that have not expired. Errors: `errc::storage_failure`
  /// when Redis does not answer (River then keeps the run going).
  asio::awaitable<result<bool>> watched(std::string storage_id, std::string run_id) override;

  /// Reachable while the command connection is up; otherwise since when and why.
  storage_health health() const override;

  /// This instance's random id (the value of the leases it holds).
  std::string_view instance_id() const noexcept;

  stats get_stats() const;

  /// Closes the connections and stops renewing leases (idempotent). The destructor does the same.
  asio::awaitable<void> close() override;

 private:
  std::shared_ptr<detail::provider_state> state_;
};

}  // namespace river::redis
