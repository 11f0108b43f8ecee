#pragma once

// What the Redis provider's writers, readers and background work share: its connections, the
// runs this instance owns, the feeds its readers follow, and the work that keeps them: notices
// and fetches (live reads), lease renewals and checks (producer lost), cancel requests.

#include "client.hpp"
#include "keys.hpp"
#include "run_feed.hpp"

#include <river/redis/config.hpp>
#include <river/redis/connection.hpp>
#include <river/redis/provider.hpp>
#include <river/detail/watch_counts.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace river::redis::detail {

inline constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
using clock_type = std::chrono::steady_clock;

inline river::error storage_error(std::string message, nlohmann::json ctx = nlohmann::json::object()) {
  return river::error::from_code(errc::storage_failure, std::move(message), std::move(ctx));
}

/// Redis did not answer a request (`ec`): a client may try again later (HTTP 503 with Retry-After).
inline river::error unreachable_error(const error_code& ec, const client& c) {
  auto detail = ec.message();
  if (!c.last_error().empty()) detail += " (" + c.last_error() + ")";
  return river::error::from_code(errc::storage_unavailable, "Redis is unreachable: " + detail, {{"storage", "redis"}});
}

inline std::string ms_text(std::chrono::milliseconds d) { return std::to_string(std::max<std::int64_t>(1, d.count())); }

/// A `stream_fatal_error` event with a storage message.
inline std::string fatal_event(const std::string& message, nlohmann::json context = nlohmann::json::object()) {
  return river::detail::event_text([&](std::string& out) {
    river::detail::append_error_event(out, true, river::error(message, error_type::stream, std::move(context)));
  });
}

/// What a reader or a writer that finds the entry it read or stored last gone from Redis says:
/// Redis acknowledged events it no longer holds, and nothing after them can be served as the run.
inline constexpr std::string_view history_lost_text =
    "Redis lost events of this run after it had acknowledged them (a failover to a replica that had not received "
    "them, or a restart without persistence)";

/// Why a run of this instance was stopped.
enum class stop_cause {
  none,
  lease_lost,  ///< its lease lapsed and someone closed the run ("producer lost")
  outage,      ///< Redis stayed unreachable past the outage limit
  foreign,     ///< its key was replaced by a value of another type
  history_lost,  ///< Redis lost events it had acknowledged (a failover, a restart without persistence)
  unreplicated,  ///< the replicas `wait_replicas` asks for did not answer within the outage limit
};

/// A run this instance owns.
struct local_run {
  explicit local_run(run_keys k) : keys(std::move(k)) {}
  const run_keys keys;
  std::string run_id;
  std::shared_ptr<run_feed> feed;       // its acknowledged appends, for readers here
  std::function<void()> on_cancel;      // guarded by the state's mutex
  std::atomic<bool> closed{false};      // the last record was handed to Redis: appends are refused
  std::atomic<bool> terminated{false};  // the last record is stored
  std::atomic<bool> lost{false};        // stopped (`cause`): appends are refused
  std::atomic<stop_cause> cause{stop_cause::none};
  bool first = true;                    // the next append is the first (the writer's order of calls)
  std::atomic<bool> followed{false};    // another instance reads it: appends publish notices
  // When Redis first failed this run in the current outage (ms since the clock's epoch; 0: none).
  std::atomic<std::int64_t> failing_since{0};
};

struct provider_state : std::enable_shared_from_this<provider_state> {
  provider_state(executor e, config c);

  executor ex;
  const config cfg;
  const std::string instance;
  std::chrono::milliseconds lease{}, check_every{};
  executor strand;       // a strand, for the background work
  client cmd;            // commands: appends, reads, scripts
  client sub;            // sharded pub/sub: notices of followed runs, requests to owned runs
  asio::steady_timer maintenance;

  mutable std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<local_run>> runs;   // by run id
  std::unordered_map<std::string, std::shared_ptr<run_feed>> feeds;  // by stream key: followed here
  std::unordered_map<std::string, std::shared_ptr<run_feed>> by_notice_channel;
  std::unordered_map<std::string, std::shared_ptr<local_run>> by_control_channel;
  bool closed = false;
  std::atomic<std::uint64_t> appends{0}, producers_lost{0}, notices{0}, fetches{0};
  // Reaching Redis: the maintenance loop watches the command connection.
  std::atomic<std::int64_t> down_since{0};  // ms since the clock's epoch; 0: reachable
  std::atomic<std::uint64_t> outages{0};
  std::atomic<std::int64_t> outage_ms_total{0};

  /// How long Redis has been unreachable (0 when it is reachable).
  std::chrono::milliseconds unreachable_for() const;
  /// Waits up to `limit` for the command connection; false if it did not come.
  asio::awaitable<bool> wait_connected(std::chrono::milliseconds limit);

  void start();
  void close();
  bool is_closed() const;

  // ---- feeds: what readers follow -------------------------------------------------------------

  /// The feed of a run for a reader at `from`: the owner's own feed for a run of this instance,
  /// otherwise a feed of this instance (made, subscribed to and fetched on first use). `from_epoch`:
  /// the client's epoch in which the reader read `from` in Redis.
  std::shared_ptr<run_feed> follow(const run_keys& keys, entry_id from, std::uint64_t from_epoch);
  /// The owner's own feed, when this instance runs the run (and the feed did not fail), else null.
  std::shared_ptr<run_feed> follow_own(const run_keys& keys);
  /// A reader lets go of a feed.
  void unfollow(const std::shared_ptr<run_feed>& f);
  /// Reads what follows a remote feed's newest entry (after a notice, a subscription, a reconnect).
  void fetch(const std::shared_ptr<run_feed>& f);

  // ---- runs of this instance ---------------------------------------------------------------------

  void add_run(const std::shared_ptr<local_run>& run);
  /// The runs this instance runs now.
  std::size_t running_runs() const;
  void remove_run(const std::shared_ptr<local_run>& run);
  /// Records that Redis failed a run; past the outage limit the run is stopped.
  void note_failure(local_run& r);
  /// Stops a run whose lease was lost or whose Redis stayed away too long.
  void lose(local_run& r, stop_cause cause);

  // ---- readers' presence (presence.cpp) ---------------------------------------------------------

  /// Readers here of runs whose streams cancel unwatched runs, by stream key (made in `start`).
  std::shared_ptr<river::detail::watch_counts> watchers;
  /// Counts a reader here; the first one of a run another instance owns is marked in Redis.
  run_watch watch(const run_keys& keys);
  /// Whether the run has a reader here or, by the marks in Redis, on another instance.
  asio::awaitable<result<bool>> watched(const run_keys& keys);
  /// Renews the marks of the runs read here (the maintenance loop's, every third of their ttl),
  /// without waiting for the replies.
  void renew_presence();

  /// Closes the log of a run whose writer went away before its last record, retrying while
  /// Redis is away, for at most the outage limit plus ten seconds.
  static asio::awaitable<void> close_abandoned(std::shared_ptr<provider_state> self, std::shared_ptr<local_run> run,
                                               std::string fatal);

 private:
  static connection_config connection_for(const config& c, std::string name);
  void on_push(value message);
  /// The feed of a run this instance runs, unless it failed; under `mutex`.
  std::shared_ptr<run_feed> own_feed_locked(const run_keys& keys) const;
  void on_subscriber_connected();
  void subscribe(std::string channel);
  void unsubscribe(std::string channel);
  /// Asks a followed run's owner for notices, and reads what the feed lacks.
  void announce(const std::shared_ptr<run_feed>& f);
  static asio::awaitable<void> fetch_loop(std::shared_ptr<provider_state> self, std::shared_ptr<run_feed> f);
  static asio::awaitable<void> maintenance_loop(std::shared_ptr<provider_state> self);
  /// Marks (or unmarks) in Redis that a run has readers here; posted on the strand, in order.
  void tell_presence(const std::string& stream_key, bool present);
  bool owned_here(const std::string& stream_key) const;
  asio::awaitable<void> renew_leases();
  asio::awaitable<void> check_leases();
  void watch_reachability();
};

}  // namespace river::redis::detail
