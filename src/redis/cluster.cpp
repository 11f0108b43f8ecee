// The Redis Cluster client (cluster.hpp): the layout read with `CLUSTER SLOTS`, one connection per
// master, each unit of a request sent to its slot's master, redirects and pauses handled on a
// strand.

#include <river/redis/cluster.hpp>
#include <river/redis/connection.hpp>
#include <river/redis/detail/cluster_topology.hpp>
#include <river/redis/detail/command_units.hpp>
#include <river/redis/detail/hash_slot.hpp>

#include <river/detail/strand.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>

namespace river::redis {

namespace {
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
constexpr int max_redirects = 16;
constexpr auto first_pause = 10ms, longest_pause = 200ms;
// The layout is read at most this often, however many redirects ask for it.
constexpr auto refresh_spacing = 100ms;
constexpr std::string_view asking_command = "*1\r\n$6\r\nASKING\r\n";
}  // namespace

struct cluster::impl : std::enable_shared_from_this<impl> {
  struct node {
    detail::node_endpoint at;
    std::unique_ptr<connection> conn;
    bool serves = false;  // a master of the current layout (guarded by the mutex)
  };

  // A request on its way: its bytes and units, the replies gathered so far.
  struct operation {
    // Made with its handler: Boost 1.81's any_completion_handler move assignment copies.
    explicit operation(handler_type h) : handler(std::move(h)) {}
    std::string payload;
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
    request req;
    std::vector<std::pair<std::size_t, bool>> units;  // unit, sent after `ASKING`
  };

  impl(executor ex, connection_config c, std::vector<address> seeds)
      : ex_(std::move(ex)), strand_(river::detail::make_strand(ex_)), wait_(c.wait_for_connection),
        node_cfg_(std::move(c)), seeds_(std::move(seeds)), slots_(detail::cluster_slot_count) {
    // A node that is away fails requests at once: the cluster pauses and routes them again,
    // perhaps to the replica that took the node's place.
    node_cfg_.wait_for_connection = 0ms;
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

  // ---- nodes and the layout -------------------------------------------------------------------

  std::shared_ptr<node> node_at_locked(const detail::node_endpoint& at) {
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

  // Whether every master of the layout is connected.
  bool all_connected_locked() const {
    if (!have_layout_) return false;
    bool any = false;
    for (auto& [name, n] : nodes_) {
      if (!n->serves) continue;
      if (!n->conn->connected()) return false;
      any = true;
    }
    return any;
  }

  std::shared_ptr<node> any_node_locked() const {
    for (auto& [name, n] : nodes_)
      if (n->conn->connected()) return n;
    return nodes_.empty() ? nullptr : nodes_.begin()->second;
  }

  // Takes a `CLUSTER SLOTS` reply as the layout. False for a reply that is not one.
  bool apply_layout(const value& reply, const std::string& asked_host) {
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
    for (auto& n : gone) n->conn->close();
    return true;
  }

  void request_refresh() {
    asio::post(strand_, [self = shared_from_this()] {
      if (self->refreshing_) {
        self->refresh_again_ = true;
        return;
      }
      self->refreshing_ = true;
      asio::co_spawn(self->strand_, self->refresh_loop(), asio::detached);
    });
  }

  asio::awaitable<void> refresh_loop() {
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

  // A master's connection can drop while nobody sends it anything: watch for it, so that the
  // layout is read again (a replica may have taken over) without waiting for a request.
  asio::awaitable<void> watch_loop() {
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

  asio::awaitable<void> pause_for(std::chrono::milliseconds d) {
    asio::steady_timer t(strand_, d);
    co_await t.async_wait(tuple_awaitable);
  }

  // Asks the connected nodes, then the seeds, for the layout.
  asio::awaitable<bool> refresh_once() {
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
      c.wait_for_connection = node_cfg_.connect_timeout;  // the request waits for the one connect
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

  // ---- pub/sub ----------------------------------------------------------------------------------

  void track_subscriptions(std::string_view payload) {
    std::size_t pos = 0;
    detail::command_view cmd;
    std::lock_guard lk(mutex_);
    while (detail::next_command(payload, pos, cmd)) {
      const bool sub = detail::command_is(cmd.args[0], "SSUBSCRIBE");
      if (!sub && !detail::command_is(cmd.args[0], "SUNSUBSCRIBE")) continue;
      for (std::size_t i = 1; i < cmd.args.size(); ++i) {
        if (sub)
          subscribed_.emplace(cmd.args[i]);
        else if (auto it = subscribed_.find(cmd.args[i]); it != subscribed_.end())
          subscribed_.erase(it);
      }
    }
  }

  void on_node_push(value m) {
    if (m.is_array() && m.elements.size() >= 2 && m.elements[0].text == "sunsubscribe") {
      // The node dropped a channel it no longer serves: subscribe where its slot went, then let
      // the subscriber know (it reads what the notices it missed would have announced).
      const auto& channel = m.elements[1].text;
      bool wanted = false;
      {
        std::lock_guard lk(mutex_);
        wanted = subscribed_.count(channel) > 0;
      }
      if (wanted) {
        request_refresh();
        request again;
        again.push({"SSUBSCRIBE", channel});
        exec(again, [self = shared_from_this(), m = std::move(m)](error_code, response) mutable {
          if (self->on_push_) self->on_push_(std::move(m));
        });
        return;
      }
    }
    if (on_push_) on_push_(std::move(m));
  }

  // ---- requests ---------------------------------------------------------------------------------

  void exec(const request& req, handler_type handler) {
    auto op = std::make_shared<operation>(std::move(handler));
    op->payload = req.payload();
    if (!detail::split_units(op->payload, op->units)) {
      complete(op, error::protocol_error);
      return;
    }
    if (on_push_) track_subscriptions(op->payload);
    op->replies.resize(req.expected_replies());
    op->ask.resize(op->units.size());
    op->give_up = clock::now() + wait_;
    std::vector<std::size_t> all(op->units.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    send(op, std::move(all));
  }

  void send(const std::shared_ptr<operation>& op, std::vector<std::size_t> units) {
    std::vector<batch> batches;
    std::vector<std::size_t> unroutable;
    bool closed = false;
    {
      std::lock_guard lk(mutex_);
      closed = closed_;
      std::shared_ptr<node> previous;
      for (auto u : units) {
        if (closed) break;
        const auto& unit = op->units[u];
        std::shared_ptr<node> to;
        const bool asked = op->ask[u].has_value();
        if (asked)
          to = node_at_locked(*op->ask[u]);
        else if (unit.slot >= 0)
          to = slots_[static_cast<std::size_t>(unit.slot)];
        else
          to = previous ? previous : any_node_locked();
        if (!to) {
          unroutable.push_back(u);
          continue;
        }
        previous = to;
        auto b = std::find_if(batches.begin(), batches.end(), [&](const batch& x) { return x.to == to; });
        if (b == batches.end()) {
          batches.push_back(batch{to, {}, {}});
          b = std::prev(batches.end());
        }
        if (asked) detail::request_access::append_encoded(b->req, asking_command, 1, 1);
        detail::request_access::append_encoded(b->req, std::string_view(op->payload).substr(unit.offset, unit.size),
                                               unit.commands, unit.replies);
        b->units.emplace_back(u, asked);
      }
    }
    if (closed) {
      complete(op, error::closed);
      return;
    }
    op->again = std::move(unroutable);
    op->unsent = op->wait_first = !op->again.empty();
    op->failure = {};
    op->outstanding = batches.size();
    if (op->unsent) request_refresh();
    if (batches.empty()) {
      asio::post(strand_, [self = shared_from_this(), op] { self->end_round(op); });
      return;
    }
    for (auto& b : batches) {
      auto to = b.to;
      to->conn->async_exec(b.req, asio::bind_executor(strand_, [self = shared_from_this(), op, to, units = std::move(b.units)](
                                                                    error_code ec, response r) {
                             self->on_batch(op, *to, units, ec, std::move(r));
                           }));
    }
  }

  void on_batch(const std::shared_ptr<operation>& op, const node& from,
                const std::vector<std::pair<std::size_t, bool>>& units, error_code ec, response r) {
    if (ec == error::not_connected && !is_closed()) {
      // Never written: routed again after a pause, with a fresh layout if the node failed.
      for (const auto& [u, asked] : units) op->again.push_back(u);
      op->wait_first = op->unsent = true;
      request_refresh();
    } else if (ec) {
      if (!op->failure) op->failure = ec;
      if (ec != error::closed) request_refresh();
    } else {
      std::size_t at = 0;
      for (const auto& [u, asked] : units) {
        if (asked) ++at;  // `ASKING`'s `OK`
        const auto& unit = op->units[u];
        op->ask[u].reset();
        std::optional<detail::redirect> redirected;
        bool transient = false;
        for (std::size_t i = 0; i < unit.replies && at + i < r.size(); ++i) {
          auto& v = r[at + i];
          if (v.is_error()) {
            if (!redirected) redirected = detail::parse_redirect(v, from.at.host);
            transient = transient || detail::is_transient_cluster_error(v);
          }
          op->replies[unit.first_reply + i] = std::move(v);
        }
        at += unit.replies;
        if (redirected && redirected->type == detail::redirect::kind::moved) {
          moved_.fetch_add(1, std::memory_order_relaxed);
          {
            std::lock_guard lk(mutex_);
            if (!closed_) {
              slots_[redirected->slot] = node_at_locked(redirected->to);
              slots_[redirected->slot]->serves = true;
            }
            epoch_.fetch_add(1, std::memory_order_relaxed);
          }
          request_refresh();
          op->again.push_back(u);
        } else if (redirected) {
          asked_.fetch_add(1, std::memory_order_relaxed);
          op->ask[u] = redirected->to;
          op->again.push_back(u);
        } else if (transient) {
          op->again.push_back(u);
          op->wait_first = true;
        }
      }
    }
    if (--op->outstanding == 0) end_round(op);
  }

  void end_round(const std::shared_ptr<operation>& op) {
    if (op->failure) return complete(op, op->failure);
    if (op->again.empty()) return complete(op, {});
    std::sort(op->again.begin(), op->again.end());  // the request's order
    if (!op->wait_first) {
      // Redirects are followed at once, a bounded number of times; past it the caller gets
      // the redirect replies.
      if (++op->redirects > max_redirects) return complete(op, {});
      return send(op, std::exchange(op->again, {}));
    }
    if (clock::now() + op->pause > op->give_up || is_closed()) {
      // Handed back as they are: a unit that reached no node has no reply to give.
      return complete(op, op->unsent ? error_code(is_closed() ? error::closed : error::not_connected) : error_code{});
    }
    retried_.fetch_add(op->again.size(), std::memory_order_relaxed);
    auto timer = std::make_shared<asio::steady_timer>(strand_, op->pause);
    op->pause = std::min(op->pause * 2, std::chrono::milliseconds(longest_pause));
    timer->async_wait([self = shared_from_this(), op, timer](error_code) { self->send(op, std::exchange(op->again, {})); });
  }

  void complete(const std::shared_ptr<operation>& op, error_code ec) {
    requests_.fetch_add(1, std::memory_order_relaxed);
    response replies;
    if (!ec) replies = std::move(op->replies);
    asio::post(ex_, asio::append(std::move(op->handler), ec, std::move(replies)));
  }
};

cluster::cluster(executor_type ex, std::string_view url, const connection_config& cfg) {
  auto seeds = parse_cluster_url(url);
  if (!seeds) throw std::invalid_argument("river::redis::cluster: invalid Redis Cluster URL: " + std::string(url));
  impl_ = std::make_shared<impl>(std::move(ex), cfg, std::move(*seeds));
}

cluster::cluster(executor_type ex, std::string_view url) : cluster(std::move(ex), url, connection_config{}) {}

cluster::~cluster() { close(); }

cluster::executor_type cluster::get_executor() const noexcept { return impl_->ex_; }

void cluster::set_push_handler(std::function<void(value)> handler) { impl_->on_push_ = std::move(handler); }
void cluster::set_connect_handler(std::function<void()> handler) { impl_->on_connect_ = std::move(handler); }

void cluster::start() {
  impl_->request_refresh();
  asio::co_spawn(impl_->strand_, impl_->watch_loop(), asio::detached);
}

void cluster::close() {
  std::vector<std::shared_ptr<impl::node>> nodes;
  {
    std::lock_guard lk(impl_->mutex_);
    if (impl_->closed_) return;
    impl_->closed_ = true;
    for (auto& [name, n] : impl_->nodes_) nodes.push_back(n);
    impl_->nodes_.clear();
    std::fill(impl_->slots_.begin(), impl_->slots_.end(), nullptr);
  }
  for (auto& n : nodes) n->conn->close();
}

bool cluster::connected() const noexcept {
  std::lock_guard lk(impl_->mutex_);
  return impl_->all_connected_locked();
}

cluster::stats cluster::get_stats() const {
  stats s;
  {
    std::lock_guard lk(impl_->mutex_);
    for (auto& [name, n] : impl_->nodes_) {
      const auto c = n->conn->get_stats();
      s.writes += c.writes;
      s.connects += c.connects;
      s.failures += c.failures;
      if (n->serves) ++s.masters;
    }
  }
  s.requests = impl_->requests_.load(std::memory_order_relaxed);
  s.moved = impl_->moved_.load(std::memory_order_relaxed);
  s.asked = impl_->asked_.load(std::memory_order_relaxed);
  s.retried = impl_->retried_.load(std::memory_order_relaxed);
  s.refreshes = impl_->refreshes_.load(std::memory_order_relaxed);
  return s;
}

std::string cluster::last_error() const {
  std::lock_guard lk(impl_->mutex_);
  for (auto& [name, n] : impl_->nodes_)
    if (n->serves && !n->conn->connected() && !n->conn->last_error().empty()) return name + ": " + n->conn->last_error();
  return impl_->last_error_;
}

std::vector<std::string> cluster::masters() const {
  std::lock_guard lk(impl_->mutex_);
  std::vector<std::string> out;
  for (auto& [name, n] : impl_->nodes_)
    if (n->serves) out.push_back(name);
  return out;
}

std::string cluster::master_of(std::uint16_t slot) const {
  std::lock_guard lk(impl_->mutex_);
  const auto& n = impl_->slots_.at(slot);
  return n ? n->at.name() : std::string();
}

std::uint64_t cluster::epoch() const noexcept { return impl_->epoch_.load(std::memory_order_relaxed); }

void cluster::ping_all() {
  request ping;
  ping.push({"PING"});
  std::lock_guard lk(impl_->mutex_);
  for (auto& [name, n] : impl_->nodes_) n->conn->async_exec(ping, [](error_code, response) {});
}

void cluster::exec_impl(const request& req, handler_type handler) { impl_->exec(req, std::move(handler)); }

}  // namespace river::redis
