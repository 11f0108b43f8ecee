#pragma once

// Sans-I/O: what a Redis Cluster says about itself. The slot ranges of its masters (from
// `CLUSTER SLOTS`) and the redirects its nodes answer (`MOVED`, `ASK`), read from replies.

#include <river/redis/value.hpp>

#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace river::redis::detail {

/// A node of a cluster, by where it listens.
struct node_endpoint {
  std::string host;
  std::uint16_t port = 0;
  /// `host:port`, the name nodes go by in redirects.
  std::string name() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const node_endpoint&, const node_endpoint&) = default;
};

/// Slots `first`..`last` (inclusive) and the master that serves them.
struct slot_range {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  node_endpoint master;
  friend bool operator==(const slot_range&, const slot_range&) = default;
};

/// Reads a `CLUSTER SLOTS` reply. A master listed without a host (an empty or `?` endpoint)
/// is at `asked_host`, the host of the node that answered. Fails with `error::protocol_error`
/// for a reply of another shape.
boost::system::result<std::vector<slot_range>> parse_cluster_slots(const value& reply, std::string_view asked_host);

/// A node's answer that a key's slot is served elsewhere.
struct redirect {
  enum class kind { moved, ask } type = kind::moved;
  std::uint16_t slot = 0;
  node_endpoint to;
};

/// The redirect an error reply carries (`MOVED 3999 127.0.0.1:6381`, `ASK ...`), if it is one.
/// A target without a host is on `asked_host`.
std::optional<redirect> parse_redirect(const value& reply, std::string_view asked_host);

/// Whether an error reply says to try again later: `TRYAGAIN` (a multi-key command during a slot
/// migration), `CLUSTERDOWN` (the cluster is failing over), `LOADING`.
bool is_transient_cluster_error(const value& reply);

}  // namespace river::redis::detail
