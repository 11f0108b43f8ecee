#pragma once

#include <river/config.hpp>
#include <river/redis/error.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace river::redis {

/// Where a Redis server is and how to log in, as parsed from a URL.
struct address {
  enum class transport { tcp, unix_socket };
  transport kind = transport::tcp;
  std::string host = "127.0.0.1";  ///< TCP only; IPv6 literals without brackets
  std::uint16_t port = 6379;       ///< TCP only
  std::string path;                ///< unix socket only
  std::string user;                ///< empty: `AUTH password` (or no AUTH when the password is empty too)
  std::string password;
  int database = 0;                ///< `SELECT`ed when not 0

  friend bool operator==(const address&, const address&) = default;
};

/// Parses `redis://[[user]:password@]host[:port][/db]` and `unix:///path[?db=N]`.
/// User and password may be percent-encoded. Fails with `error::invalid_url`.
boost::system::result<address> parse_url(std::string_view url);

/// Whether `url` names a Redis Cluster: `redis+cluster://...`.
bool is_cluster_url(std::string_view url) noexcept;

/// Parses `redis+cluster://[[user]:password@]host[:port][,host[:port]...]`: the seed nodes a
/// cluster client asks for the cluster's layout, each with the login (every node shares it).
/// A cluster has database 0 only: a `/db` fails. Fails with `error::invalid_url`.
boost::system::result<std::vector<address>> parse_cluster_url(std::string_view url);

/// Whether `url` is one that `parse_url`, or `parse_cluster_url` for a cluster, accepts.
bool valid_url(std::string_view url) noexcept;

/// Settings of one `connection` (its server is the URL it is made with).
struct connection_config {
  /// Sent as `CLIENT SETNAME` after connecting, when not empty.
  std::string client_name;
  /// Bound on resolving, connecting and the handshake together.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  /// Bound on waiting for a reply once a request was written. Past it the server or the network
  /// is taken for dead although the socket is open: what was in flight fails with
  /// `error::response_timeout` and the connection reconnects. 0 waits forever. The provider
  /// raises it above its longest blocking read on the connections that carry one.
  std::chrono::milliseconds response_timeout = std::chrono::seconds(10);
  /// Wait before the first reconnect attempt; doubled after each failure up to `reconnect_max`.
  std::chrono::milliseconds reconnect_min = std::chrono::milliseconds(50);
  std::chrono::milliseconds reconnect_max = std::chrono::seconds(2);
  /// Most unparsed bytes held while a reply arrives; a larger reply breaks the connection
  /// with `error::read_buffer_exceeded`.
  std::size_t max_read_buffer = std::size_t{64} << 20;
  /// Most requests waiting or in flight; more fail with `error::queue_full`.
  std::size_t max_requests = 1'000'000;
  /// How long a request made while the connection is down waits for it to come back before it
  /// fails with `error::not_connected`. 0: it fails at once. Requests in flight when the
  /// connection drops fail regardless (`error::connection_lost`): they may have run.
  std::chrono::milliseconds wait_for_connection{0};
};

/// Settings of the Redis provider. Durations in tests are short; the defaults suit production.
struct config {
  /// The Redis server (see `parse_url`), or the seed nodes of a Redis Cluster
  /// (`redis+cluster://host:port,host:port`, see `parse_cluster_url`): the provider then routes
  /// each run's commands to the master that serves its slot (`redis::cluster`).
  std::string url = "redis://127.0.0.1:6379";
  /// The storage namespace of runs this provider creates: keys are `stream-STORAGEID-RUNID`.
  std::string storage_id = "default";
  /// Most runs this instance runs at once; past it a new run is refused with
  /// `errc::capacity_exceeded` (HTTP 503), as the memory provider refuses one past its limit.
  std::size_t max_running_runs = 10'000;
  /// How long a finished run stays readable: its key expires then.
  std::chrono::milliseconds retention = std::chrono::hours(24);
  /// Bound on how long readers wait after the instance running a run died: within it they get
  /// a `stream_fatal_error` ("producer lost") and the run's log is closed.
  std::chrono::milliseconds producer_lost_timeout = std::chrono::seconds(10);
  /// How long a lease lives unless renewed; 0 means a third of `producer_lost_timeout`. The owner
  /// renews it three times per lease period, and takes it again when it lapsed while Redis was
  /// away. Readers' instances check it every `(producer_lost_timeout - lease) / 2`, and close a
  /// run only when two checks that far apart found it missing.
  std::chrono::milliseconds lease = std::chrono::milliseconds(0);
  /// How long Redis may stay unreachable before this instance's runs that append are stopped
  /// (each ends with a fatal error naming the outage, stored as soon as Redis is back). Until
  /// then an outage is a delay: appends wait for the connection and are sent again, each stored
  /// exactly once.
  std::chrono::milliseconds outage_limit = std::chrono::seconds(30);
  /// How long a reader waits for an unreachable Redis before it ends with a `stream_fatal_error`
  /// naming the storage (the run may go on: a resume reads it later).
  std::chrono::milliseconds reader_outage_limit = std::chrono::seconds(30);
  /// How long a new run waits for an unreachable Redis before its start is refused with
  /// `errc::storage_unavailable` (HTTP 503 with `Retry-After`).
  std::chrono::milliseconds start_wait = std::chrono::seconds(2);
  /// How long this instance's mark that it has readers of a run lasts in Redis unless renewed
  /// (it is renewed every third of it). For streams whose disconnect policy cancels unwatched
  /// runs: a reader on any instance keeps the run going, and an instance that died stops
  /// counting within this time.
  std::chrono::milliseconds presence_ttl = std::chrono::seconds(3);
  /// Most appends of a run that may wait for Redis at once. A runner's append completes as soon
  /// as its event is queued (in order, its position chosen) while fewer wait, so a runner that
  /// appends in a loop is not held to one Redis round trip per event; past the window it waits
  /// for room. The last record (the run's terminal event) always waits until it is stored.
  /// Readers see an event only once Redis holds it; an append that Redis then fails fails the
  /// run's next append (the run ends with a fatal error, as when an append fails). 0: every
  /// append completes only once Redis holds its event (one round trip per event of a run).
  std::size_t write_window = 256;
  /// The same window in bytes of events.
  std::size_t write_window_bytes = std::size_t{1} << 20;
  /// Replicas that must hold each batch of a run's appends before readers see it (`WAIT` after
  /// each batch); 0, the default, waits for none. Redis replicates asynchronously: with 0, a
  /// master that fails right after it acknowledged a batch may leave it out of the replica that
  /// takes its place. With N, an event reaches readers anywhere only once the master and N
  /// replicas hold it (a later failover to one of those replicas keeps it), at the cost of
  /// replication round trips: `WAIT` holds the connection's later commands until it returns.
  /// Replicas that do not answer within `wait_replicas_timeout` are asked again until the
  /// outage limit; past it the run is stopped. Either way, a run whose acknowledged events are
  /// gone after a failover or a restart is stopped, its readers ending with a fatal error.
  std::size_t wait_replicas = 0;
  /// How long one `WAIT` waits for the replicas.
  std::chrono::milliseconds wait_replicas_timeout = std::chrono::milliseconds(1000);
  /// Most entries one `XRANGE` of a followed run returns.
  std::size_t read_batch = 256;
  /// Entries of a run kept in memory for the readers of this process (the owner's own feed, or
  /// the feed of a run followed from elsewhere): between one and two windows are kept. A reader
  /// further behind replays from Redis with `XRANGE`.
  std::size_t feed_window = 1024;
  /// Settings of the provider's connections (to `url`).
  connection_config connection;
};

}  // namespace river::redis
