// The Redis Cluster client (cluster.hpp): each unit of a request sent to its slot's master,
// redirects and pauses handled on a strand, replies put back in order; subscriptions follow their
// slot. The layout it routes by is kept in cluster_layout.cpp.

#include "cluster_impl.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <stdexcept>

namespace river::redis {

namespace {
constexpr int max_redirects = 16;
constexpr std::string_view asking_command = "*1\r\n$6\r\nASKING\r\n";
}  // namespace

void cluster::impl::track_subscriptions(std::string_view payload) {
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

void cluster::impl::on_node_push(value m) {
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

void cluster::impl::exec(const request& req, handler_type handler) {
  auto op = std::make_shared<operation>(req, std::move(handler));
  if (!detail::split_units(req.payload(), op->units)) {
    complete(op, error::protocol_error);
    return;
  }
  if (on_push_) track_subscriptions(req.payload());
  op->replies.resize(req.expected_replies());
  op->ask.resize(op->units.size());
  op->give_up = clock::now() + wait_;
  std::vector<std::size_t> all(op->units.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  send(op, std::move(all));
}

void cluster::impl::send(const std::shared_ptr<operation>& op, std::vector<std::size_t> units) {
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
      b->units.emplace_back(u, asked);
    }
  }
  // The common case, one node for every unit of the request and no `ASKING`: the caller's bytes
  // as they are. Otherwise each node's units are encoded again.
  const bool whole = batches.size() == 1 && batches[0].units.size() == op->units.size() &&
                     std::none_of(batches[0].units.begin(), batches[0].units.end(), [](const auto& u) { return u.second; });
  if (!whole) {
    const std::string_view payload = op->req.payload();
    for (auto& b : batches)
      for (const auto& [u, asked] : b.units) {
        const auto& unit = op->units[u];
        if (asked) detail::request_access::append_encoded(b.req, asking_command, 1, 1);
        detail::request_access::append_encoded(b.req, payload.substr(unit.offset, unit.size), unit.commands, unit.replies);
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
    auto done = asio::bind_executor(
        strand_, [self = shared_from_this(), op, to, units = std::move(b.units)](error_code ec, response r) {
          self->on_batch(op, *to, units, ec, std::move(r));
        });
    // The operation keeps its request until its handler ran: written from there, not copied.
    if (whole)
      to->conn->async_exec_in_place(op->req, std::move(done));
    else
      to->conn->async_exec(b.req, std::move(done));
  }
}

void cluster::impl::on_batch(const std::shared_ptr<operation>& op, const node& from,
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

void cluster::impl::end_round(const std::shared_ptr<operation>& op) {
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
  op->pause = std::min(op->pause * 2, longest_pause);
  timer->async_wait([self = shared_from_this(), op, timer](error_code) { self->send(op, std::exchange(op->again, {})); });
}

void cluster::impl::complete(const std::shared_ptr<operation>& op, error_code ec) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  response replies;
  if (!ec) replies = std::move(op->replies);
  asio::post(ex_, asio::append(std::move(op->handler), ec, std::move(replies)));
}

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
