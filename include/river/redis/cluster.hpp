#pragma once

#include <river/config.hpp>
#include <river/redis/config.hpp>
#include <river/redis/error.hpp>
#include <river/redis/request.hpp>
#include <river/redis/value.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace river::redis {

/// A client of a Redis Cluster: one pipelined `connection` per master, each command routed to
/// the master that serves its key's slot.
///
/// The layout comes from `CLUSTER SLOTS`, asked of a node it knows (the seeds of the URL at
/// first), at start, after a redirect and after a node failed. A request's commands are read
/// back into units (one command, or a whole `MULTI` ... `EXEC` block: `detail::split_units`),
/// each sent to its slot's master; units bound for one node stay one write, in order, and the
/// replies come back in the request's order. A unit a node redirects is sent again where the
/// node says: `MOVED` (the slot moved: the map is updated and refreshed), `ASK` (the slot is
/// being migrated and the key is already on the target: `ASKING` first, once). `TRYAGAIN`,
/// `CLUSTERDOWN` and `LOADING`, and a node that is not connected, are tried again after a short
/// pause until `connection_config::wait_for_connection` has passed, then handed back as they
/// are (`error::not_connected` for a node). At most 16 redirects per request.
///
/// Sharded pub/sub: a cluster with a push handler subscribes each channel on its slot's master
/// (`SSUBSCRIBE`, one channel per command on a cluster). When a channel's slot moves, its node
/// drops the subscription (an `sunsubscribe` the server sends by itself): the cluster subscribes
/// again where the slot went, then hands that message to the push handler, so the subscriber
/// reads what it may have missed.
///
/// Errors are those of `connection::async_exec`; a request spread over several nodes fails as a
/// whole with the first node's error. A request a node held when it left the layout (a failover)
/// fails with `error::connection_lost` (it may have run): only `close` gives `error::closed`.
/// Thread safety and lifetime: as `connection`.
class cluster {
 public:
  using executor_type = executor;

  /// What the cluster client has done so far (its nodes' connections summed).
  struct stats {
    std::uint64_t requests = 0;   ///< requests completed (the cluster's, not its nodes')
    std::uint64_t writes = 0;     ///< socket writes of every node connection
    std::uint64_t connects = 0;   ///< node connections established
    std::uint64_t failures = 0;   ///< failed connects and broken node connections
    std::uint64_t moved = 0;      ///< `MOVED` redirects followed
    std::uint64_t asked = 0;      ///< `ASK` redirects followed
    std::uint64_t retried = 0;    ///< units sent again after a pause (node away, `TRYAGAIN`...)
    std::uint64_t refreshes = 0;  ///< layouts read with `CLUSTER SLOTS`
    std::size_t masters = 0;      ///< masters in the current layout
  };

  /// A client of the cluster whose seed nodes `url` names (`redis+cluster://...`, see
  /// `parse_cluster_url`). Throws `std::invalid_argument` for a URL it refuses. `cfg` applies to
  /// every node connection.
  cluster(executor_type ex, std::string_view url, const connection_config& cfg);
  cluster(executor_type ex, std::string_view url);
  ~cluster();
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  executor_type get_executor() const noexcept;

  /// Messages the nodes push (`smessage`...). Set before `start`.
  void set_push_handler(std::function<void(value)> handler);
  /// Called each time a node connection is established. Set before `start`.
  void set_connect_handler(std::function<void()> handler);

  /// Reads the layout and connects to the masters, and keeps doing so until `close`.
  void start();
  /// Closes every node connection; pending requests complete with `error::closed`.
  void close();

  /// Whether the layout is known and every master's connection is established.
  bool connected() const noexcept;
  stats get_stats() const;
  /// The last failure: a node's connection, or reading the layout.
  std::string last_error() const;
  /// The masters of the current layout, as `host:port`.
  std::vector<std::string> masters() const;
  /// The master that serves `slot` now (`host:port`), or empty.
  std::string master_of(std::uint16_t slot) const;

  /// Changes whenever a request may reach another server than before for the same key: a node
  /// connection was established (again), or a slot moved. A caller that must know its writes
  /// before still hold (Redis replicates asynchronously: a replica promoted in a failover may
  /// lack the last writes its master acknowledged) checks them when this changes.
  std::uint64_t epoch() const noexcept;

  /// Sends `PING` on every master's connection without waiting for the replies: a subscriber's
  /// connections expect no reply while idle, and a ping lets the response timeout find a node
  /// that hangs.
  void ping_all();

  /// Sends the commands of `req`, each to the master of its key's slot (a command without a key
  /// goes with the command before it, or to any master), and completes with their replies in
  /// order. The request's bytes are copied when the operation starts, as with
  /// `connection::async_exec`; its completion signature is the same: `void(error_code, response)`.
  template <class CompletionToken = asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, CompletionToken&& token = CompletionToken()) {
    return asio::async_initiate<CompletionToken, void(error_code, response)>(
        [this](auto handler, const request* r) { exec_impl(*r, std::move(handler)); }, token, &req);
  }

 private:
  using handler_type = asio::any_completion_handler<void(error_code, response)>;
  void exec_impl(const request& req, handler_type handler);

  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace river::redis
