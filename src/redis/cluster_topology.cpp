// What a Redis Cluster says about itself, read from replies (detail/cluster_topology.hpp).

#include <river/redis/detail/cluster_topology.hpp>
#include <river/redis/detail/hash_slot.hpp>

#include <river/redis/error.hpp>

#include <charconv>

namespace river::redis::detail {

namespace {

template <class Int>
bool parse_number(std::string_view s, Int& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// `host:port` (the host may be an IPv6 literal: the port follows the last colon).
std::optional<node_endpoint> parse_endpoint(std::string_view text, std::string_view asked_host) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  node_endpoint e;
  if (!parse_number(text.substr(colon + 1), e.port) || e.port == 0) return std::nullopt;
  e.host = std::string(colon == 0 ? asked_host : text.substr(0, colon));
  return e;
}

}  // namespace

boost::system::result<std::vector<slot_range>> parse_cluster_slots(const value& reply, std::string_view asked_host) {
  const error_code bad = error::protocol_error;
  if (!reply.is_array()) return bad;
  std::vector<slot_range> ranges;
  for (const auto& entry : reply.elements) {
    // [first, last, [host, port, id, ...], replicas...]
    if (!entry.is_array() || entry.elements.size() < 3) return bad;
    const auto& first = entry.elements[0];
    const auto& last = entry.elements[1];
    const auto& master = entry.elements[2];
    if (first.type != value::kind::integer || last.type != value::kind::integer || first.integer < 0 ||
        last.integer < first.integer || last.integer >= cluster_slot_count)
      return bad;
    if (!master.is_array() || master.elements.size() < 2 || master.elements[1].type != value::kind::integer) return bad;
    const auto& host = master.elements[0];
    const auto port = master.elements[1].integer;
    if (port <= 0 || port > 65535) return bad;
    slot_range r;
    r.first = static_cast<std::uint16_t>(first.integer);
    r.last = static_cast<std::uint16_t>(last.integer);
    r.master.host = host.is_text() && !host.text.empty() && host.text != "?" ? host.text : std::string(asked_host);
    r.master.port = static_cast<std::uint16_t>(port);
    ranges.push_back(std::move(r));
  }
  return ranges;
}

std::optional<redirect> parse_redirect(const value& reply, std::string_view asked_host) {
  if (!reply.is_error()) return std::nullopt;
  std::string_view text = reply.text;
  redirect r;
  if (text.starts_with("MOVED ")) {
    r.type = redirect::kind::moved;
    text.remove_prefix(6);
  } else if (text.starts_with("ASK ")) {
    r.type = redirect::kind::ask;
    text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = text.find(' ');
  if (space == std::string_view::npos || !parse_number(text.substr(0, space), r.slot) || r.slot >= cluster_slot_count)
    return std::nullopt;
  auto to = parse_endpoint(text.substr(space + 1), asked_host);
  if (!to) return std::nullopt;
  r.to = std::move(*to);
  return r;
}

bool is_transient_cluster_error(const value& reply) {
  if (!reply.is_error()) return false;
  std::string_view text = reply.text;
  return text.starts_with("TRYAGAIN") || text.starts_with("CLUSTERDOWN") || text.starts_with("LOADING");
}

}  // namespace river::redis::detail
