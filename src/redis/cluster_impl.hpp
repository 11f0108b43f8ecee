#pragma once

// The state of a `redis::cluster` (cluster.hpp), shared by its two halves: the layout and the
// connections to its masters (cluster_layout.cpp), and the requests routed over them
// (cluster.cpp).

#include <river/redis/cluster.hpp>
#include <river/redis/connection.hpp>
#include <river/redis/detail/cluster_topology.hpp>
#include <river/redis/detail/command_units.hpp>
#include <river/redis/detail/hash_slot.hpp>

#include <river/detail/strand.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace river::redis {

struct cluster::impl : std::enable_shared_from_this<impl> {
  using clock = std::chrono::steady_clock;
  static constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
  // Pauses before a unit is sent again (a node away, TRYAGAIN...): doubling from the first.
  static constexpr std::chrono::milliseconds first_pause{10}, longest_pause{200};

  struct node {
    detail::node_endpoint at;
    std::unique_ptr<connection> conn;
    bool serves = false;  // a master of the current layout (guarded by the mutex)
  };

  // A request on its way: its bytes and units, the replies gathered so far.
  struct operation {
    // Made with its handler: Boost 1.81's any_completion_handler move assignment copies.
    operation(const request& r, handler_type h) : req(r), handler(std::move(h)) {}
    const request req;  // the caller's commands, copied: sent as they are when one node takes them all
    std::vector<detail::command_unit> units;
    std::vector<std::optional<detail::node_endpoint>> ask;  // per unit: the `ASK` target of its next send
    response replies;
    handler_type handler;
    clock::time_point give_up;  // pauses end here
    int redirects = 0;
    std::chrono::milliseconds pause = first_pause;
    // The round in progress (on the strand once its batches are sent).
    std::size_t outstanding = 0;
    std::vector<std::size_t> again;  // units to send in the next round
    bool wait_first = false;         // pause before it
    bool unsent = false;             // some unit reached no node in this round
    error_code failure;
  };

  // The units of one round bound for one node, as one request.
  struct batch {
    std::shared_ptr<node> to;
    std::vector<std::pair<std::size_t, bool>> units;  // unit, sent after `ASKING`
    request req;  // their commands, unless they are the whole request
  };

  impl(executor ex, connection_config c, std::vector<address> seeds)
      : ex_(std::move(ex)), strand_(river::detail::make_strand(ex_)), wait_(c.wait_for_connection),
        node_cfg_(std::move(c)), seeds_(std::move(seeds)), slots_(detail::cluster_slot_count) {
    // A node that is away fails requests at once: the cluster pauses and routes them again,
    // perhaps to the replica that took the node's place.
    node_cfg_.wait_for_connection = std::chrono::milliseconds(0);
  }

  executor ex_;
  executor strand_;
  const std::chrono::milliseconds wait_;
  connection_config node_cfg_;
  const std::vector<address> seeds_;
  std::function<void(value)> on_push_;
  std::function<void()> on_connect_;

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<node>> nodes_;  // by `host:port`
  std::vector<std::shared_ptr<node>> slots_;            // the master of each slot
  std::set<std::string, std::less<>> subscribed_;       // sharded channels subscribed through here
  bool closed_ = false;
  bool have_layout_ = false;
  std::string last_error_;

  // On the strand.
  bool refreshing_ = false, refresh_again_ = false;
  clock::time_point last_refresh_{};

  std::atomic<std::uint64_t> requests_{0}, moved_{0}, asked_{0}, retried_{0}, refreshes_{0};
  std::atomic<std::uint64_t> epoch_{0};  // see `cluster::epoch`

  bool is_closed() const {
    std::lock_guard lk(mutex_);
    return closed_;
  }

  void set_error(std::string text) {
    std::lock_guard lk(mutex_);
    last_error_ = std::move(text);
  }

  // ---- the layout and the masters' connections (cluster_layout.cpp) --------------------------

  /// The node at `at`, its connection made and started on first use.
  std::shared_ptr<node> node_at_locked(const detail::node_endpoint& at);
  /// Whether every master of the layout is connected.
  bool all_connected_locked() const;
  /// A connected node (for a command without a key), or any.
  std::shared_ptr<node> any_node_locked() const;
  /// Takes a `CLUSTER SLOTS` reply as the layout. False for a reply that is not one.
  bool apply_layout(const value& reply, const std::string& asked_host);
  /// Reads the layout again soon (at most every 100 ms), on the strand.
  void request_refresh();
  asio::awaitable<void> refresh_loop();
  /// A master's connection can drop while nobody sends it anything: watches for it, so that the
  /// layout is read again (a replica may have taken over) without waiting for a request.
  asio::awaitable<void> watch_loop();
  asio::awaitable<void> pause_for(std::chrono::milliseconds d);
  /// Asks the connected nodes, then the seeds, for the layout.
  asio::awaitable<bool> refresh_once();

  // ---- pub/sub and requests (cluster.cpp) ------------------------------------------------------

  /// Keeps `subscribed_` as the request's SSUBSCRIBE and SUNSUBSCRIBE change it.
  void track_subscriptions(std::string_view payload);
  /// A node's push; an `sunsubscribe` the node sent by itself is subscribed again where the
  /// channel's slot went.
  void on_node_push(value m);
  void exec(const request& req, handler_type handler);
  /// Sends `units` of `op`, each to its node, one request per node.
  void send(const std::shared_ptr<operation>& op, std::vector<std::size_t> units);
  /// A node's replies to its batch: kept, or the units redirected or paused for the next round.
  void on_batch(const std::shared_ptr<operation>& op, const node& from,
                const std::vector<std::pair<std::size_t, bool>>& units, error_code ec, response r);
  void end_round(const std::shared_ptr<operation>& op);
  void complete(const std::shared_ptr<operation>& op, error_code ec);
};

}  // namespace river::redis
