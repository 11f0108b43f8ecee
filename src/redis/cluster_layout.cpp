// The layout of a Redis Cluster and the connections to its masters (cluster_impl.hpp): read with
// `CLUSTER SLOTS` at start, after redirects, when a master is away, and while one stays away.

#include "cluster_impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>

namespace river::redis {

namespace {
// The layout is read at most this often, however many redirects ask for it.
constexpr auto refresh_spacing = std::chrono::milliseconds(100);
}  // namespace

std::shared_ptr<cluster::impl::node> cluster::impl::node_at_locked(const detail::node_endpoint& at) {
  const auto name = at.name();
  if (auto it = nodes_.find(name); it != nodes_.end()) return it->second;
  auto n = std::make_shared<node>();
  n->at = at;
  address a = seeds_.front();  // the login every node shares
  a.host = at.host;
  a.port = at.port;
  n->conn = std::make_unique<connection>(ex_, std::move(a), node_cfg_);
  std::weak_ptr<impl> weak = shared_from_this();
  if (on_push_)
    n->conn->set_push_handler([weak](value m) {
      if (auto self = weak.lock()) self->on_node_push(std::move(m));
    });
  n->conn->set_connect_handler([weak] {
    auto self = weak.lock();
    if (!self) return;
    self->epoch_.fetch_add(1, std::memory_order_relaxed);
    if (self->on_connect_) self->on_connect_();
  });
  n->conn->start();
  nodes_.emplace(name, n);
  return n;
}

bool cluster::impl::all_connected_locked() const {
  if (!have_layout_) return false;
  bool any = false;
  for (auto& [name, n] : nodes_) {
    if (!n->serves) continue;
    if (!n->conn->connected()) return false;
    any = true;
  }
  return any;
}

std::shared_ptr<cluster::impl::node> cluster::impl::any_node_locked() const {
  for (auto& [name, n] : nodes_)
    if (n->conn->connected()) return n;
  return nodes_.empty() ? nullptr : nodes_.begin()->second;
}

bool cluster::impl::apply_layout(const value& reply, const std::string& asked_host) {
  auto ranges = detail::parse_cluster_slots(reply, asked_host);
  if (!ranges || ranges->empty()) {
    set_error("Redis did not answer CLUSTER SLOTS with a layout: " + to_string(reply));
    return false;
  }
  std::vector<std::shared_ptr<node>> gone;
  {
    std::lock_guard lk(mutex_);
    if (closed_) return true;
    std::vector<std::shared_ptr<node>> slots(detail::cluster_slot_count);
    std::set<std::string> serving;
    for (const auto& r : *ranges) {
      auto n = node_at_locked(r.master);
      n->serves = true;
      serving.insert(r.master.name());
      for (unsigned s = r.first; s <= r.last; ++s) slots[s] = n;
    }
    if (slots != slots_) epoch_.fetch_add(1, std::memory_order_relaxed);
    slots_ = std::move(slots);
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (serving.count(it->first)) {
        ++it;
      } else {
        gone.push_back(it->second);
        it = nodes_.erase(it);
      }
    }
    have_layout_ = true;
  }
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  // Nodes that serve no slot any more (a master that failed over, or was emptied).
  for (auto& n : gone) n->conn->retire();
  return true;
}

void cluster::impl::request_refresh() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->refreshing_) {
      self->refresh_again_ = true;
      return;
    }
    self->refreshing_ = true;
    asio::co_spawn(self->strand_, self->refresh_loop(), asio::detached);
  });
}

asio::awaitable<void> cluster::impl::refresh_loop() {
  auto self = shared_from_this();
  auto backoff = node_cfg_.reconnect_min;
  for (;;) {
    refresh_again_ = false;
    const auto since = clock::now() - last_refresh_;
    if (since < refresh_spacing) co_await pause_for(std::chrono::duration_cast<std::chrono::milliseconds>(refresh_spacing - since));
    if (is_closed()) break;
    last_refresh_ = clock::now();
    if (co_await refresh_once()) {
      // A master that is away may be replaced (a failover): read the layout again until
      // every master of it is connected, however quiet the callers are meanwhile.
      bool whole = false;
      {
        std::lock_guard lk(mutex_);
        whole = all_connected_locked();
      }
      if (!whole) {
        co_await pause_for(backoff);
        backoff = std::min(backoff * 2, node_cfg_.reconnect_max);
        refresh_again_ = true;
      } else {
        backoff = node_cfg_.reconnect_min;
      }
    } else {
      co_await pause_for(backoff);
      backoff = std::min(backoff * 2, node_cfg_.reconnect_max);
      refresh_again_ = true;
    }
    if (!refresh_again_ || is_closed()) break;
  }
  refreshing_ = false;
}

asio::awaitable<void> cluster::impl::watch_loop() {
  auto self = shared_from_this();
  const auto every = std::max(node_cfg_.reconnect_max, std::chrono::milliseconds(100));
  while (!is_closed()) {
    co_await pause_for(every);
    bool whole = true;
    {
      std::lock_guard lk(mutex_);
      whole = closed_ || all_connected_locked();
    }
    if (!whole) request_refresh();
  }
}

asio::awaitable<void> cluster::impl::pause_for(std::chrono::milliseconds d) {
  asio::steady_timer t(strand_, d);
  co_await t.async_wait(tuple_awaitable);
}

asio::awaitable<bool> cluster::impl::refresh_once() {
  request ask;
  ask.push({"CLUSTER", "SLOTS"});
  std::vector<std::shared_ptr<node>> known;
  {
    std::lock_guard lk(mutex_);
    for (auto& [name, n] : nodes_)
      if (n->conn->connected()) known.push_back(n);
  }
  for (auto& n : known) {
    auto [ec, r] = co_await n->conn->async_exec(ask, tuple_awaitable);
    if (!ec && r.size() == 1 && apply_layout(r[0], n->at.host)) co_return true;
  }
  for (const auto& seed : seeds_) {
    if (is_closed()) co_return false;
    auto c = node_cfg_;
    // The request waits for the first attempt (bounded by the connect timeout) and fails with it:
    // a refused login is told at once.
    c.wait_for_connection = std::chrono::milliseconds(0);
    c.reconnect_min = node_cfg_.connect_timeout;
    connection probe(ex_, seed, c);
    probe.start();
    auto [ec, r] = co_await probe.async_exec(ask, tuple_awaitable);
    probe.close();
    const auto where = seed.host + ":" + std::to_string(seed.port);
    if (ec) {
      set_error(where + ": " + (probe.last_error().empty() ? ec.message() : probe.last_error()));
      continue;
    }
    if (r.size() == 1 && apply_layout(r[0], seed.host)) co_return true;
  }
  co_return false;
}

}  // namespace river::redis
