#pragma once

#include <river/config.hpp>
#include <river/redis/error.hpp>

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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

/// Settings of one `connection`.
struct connection_config {
  /// The server, as `redis://...` or `unix:///...`.
  std::string url = "redis://127.0.0.1:6379";
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
};

/// Settings of the Redis provider. Durations in tests are short; the defaults suit production.
struct config {
  /// The Redis server (see `parse_url`).
  std::string url = "redis://127.0.0.1:6379";
  /// The storage namespace of runs this provider creates: keys are `stream-STORAGEID-RUNID`.
  std::string storage_id = "default";
  /// How long a finished run stays readable: its key expires then.
  std::chrono::milliseconds retention = std::chrono::hours(24);
  /// Bound on how long readers wait after the instance running a run died: within it they get
  /// a `stream_fatal_error` ("producer lost") and the run's log is closed.
  std::chrono::milliseconds producer_lost_timeout = std::chrono::seconds(10);
  /// How long a lease lives unless renewed; 0 means half of `producer_lost_timeout`. The owner
  /// renews it three times per lease period; readers check it every
  /// `producer_lost_timeout - lease` (at least every 50 ms).
  std::chrono::milliseconds lease = std::chrono::milliseconds(0);
  /// When appends have failed for this long without one success (Redis unreachable), the run is
  /// stopped and closed with a fatal error as soon as Redis can be reached again.
  std::chrono::milliseconds outage_limit = std::chrono::seconds(30);
  /// Most entries one `XRANGE` of a followed run returns.
  std::size_t read_batch = 256;
  /// Entries of a run kept in memory for the readers of this process (the owner's own feed, or
  /// the feed of a run followed from elsewhere): between one and two windows are kept. A reader
  /// further behind replays from Redis with `XRANGE`.
  std::size_t feed_window = 1024;
  /// Settings of the connections (the URL above replaces `url` there).
  connection_config connection;
};

}  // namespace river::redis
