// The Redis provider's shared state and its background work: live reads of other instances' runs
// (notices, then XRANGE from the newest entry held), requests to this instance's runs (cancel),
// lease renewals and checks.

#include "provider_state.hpp"
#include "range_after.hpp"
#include "scripts.hpp"

#include <river/detail/strand.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <random>

namespace river::redis::detail {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now().time_since_epoch()).count();
}

namespace {

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    const auto b = rd() & 0xffu;
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(tuple_awaitable);
}

std::string foreign_key_event(const std::string& key, const std::string& type) {
  return fatal_event("The run's key in Redis holds a " + type + ", not a stream", {{"key", key}});
}

}  // namespace

provider_state::provider_state(executor e, config c)
    : ex(std::move(e)),
      cfg(std::move(c)),
      instance(random_hex(16)),
      strand(river::detail::make_strand(ex)),
      cmd(ex, cfg.url, connection_for(cfg, "river-cmd")),
      sub(ex, cfg.url, connection_for(cfg, "river-sub")),
      maintenance(strand) {
  // Detection takes the lease, then a check that finds it missing, then one a grace later: a
  // third of the bound each.
  lease = cfg.lease.count() > 0 ? cfg.lease : cfg.producer_lost_timeout / 3;
  lease = std::max(lease, std::chrono::milliseconds(30));
  check_every = std::max((cfg.producer_lost_timeout - lease) / 2, std::chrono::milliseconds(20));
}

connection_config provider_state::connection_for(const config& c, std::string name) {
  auto cc = c.connection;
  if (cc.client_name.empty()) cc.client_name = std::move(name);
  // A short outage is a delay: requests wait for the connection, up to the outage limit.
  if (cc.wait_for_connection.count() == 0) cc.wait_for_connection = c.outage_limit;
  return cc;
}

std::chrono::milliseconds provider_state::unreachable_for() const {
  const auto since = down_since.load(std::memory_order_relaxed);
  return since == 0 ? std::chrono::milliseconds(0) : std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms() - since));
}

asio::awaitable<bool> provider_state::wait_connected(std::chrono::milliseconds limit) {
  const auto until = clock_type::now() + limit;
  while (!cmd.connected()) {
    if (is_closed() || clock_type::now() >= until) co_return false;
    co_await pause(std::chrono::milliseconds(20));
  }
  co_return true;
}

void provider_state::start() {
  std::weak_ptr<provider_state> weak = shared_from_this();
  watchers = river::detail::watch_counts::make([weak](const std::string& stream_key, bool present) {
    if (auto self = weak.lock()) self->tell_presence(stream_key, present);
  });
  sub.set_push_handler([weak](value message) {
    if (auto self = weak.lock()) self->on_push(std::move(message));
  });
  sub.set_connect_handler([weak] {
    if (auto self = weak.lock()) self->on_subscriber_connected();
  });
  cmd.start();
  sub.start();
  asio::co_spawn(strand, maintenance_loop(shared_from_this()), asio::detached);
}

void provider_state::close() {
  {
    std::lock_guard lk(mutex);
    if (closed) return;
    closed = true;
  }
  cmd.close();
  sub.close();
  asio::post(strand, [self = shared_from_this()] { self->maintenance.cancel(); });
}

bool provider_state::is_closed() const {
  std::lock_guard lk(mutex);
  return closed;
}

// ---- feeds ----------------------------------------------------------------------------------------

namespace {

bool feed_failed(const std::shared_ptr<run_feed>& feed) {
  std::lock_guard lk(feed->log.mutex);
  return feed->fatal.has_value();
}

}  // namespace

std::shared_ptr<run_feed> provider_state::own_feed_locked(const run_keys& keys) const {
  // A run of this instance is read from its own feed, unless that ended its readers (Redis was
  // away too long): new readers then follow the run as another instance would.
  auto it = runs.find(keys.stream);
  if (it == runs.end() || !it->second->feed || feed_failed(it->second->feed)) return nullptr;
  return it->second->feed;
}

std::shared_ptr<run_feed> provider_state::follow_own(const run_keys& keys) {
  std::lock_guard lk(mutex);
  auto f = own_feed_locked(keys);
  if (f) ++f->readers;
  return f;
}

std::shared_ptr<run_feed> provider_state::follow(const run_keys& keys, entry_id from, std::uint64_t from_epoch) {
  std::shared_ptr<run_feed> f;
  bool fresh = false;
  {
    std::lock_guard lk(mutex);
    f = own_feed_locked(keys);
    if (!f) {
      auto& slot = feeds[keys.stream];
      if (!slot || feed_failed(slot)) {
        slot = std::make_shared<run_feed>(keys, from, false, from_epoch);
        by_notice_channel[keys.notices] = slot;
        fresh = true;
      }
      f = slot;
    }
    ++f->readers;
  }
  // Subscribe first, then read: a notice published after the subscription brings a fetch, and
  // the fetch made once it is active reads whatever came before.
  if (fresh) subscribe(keys.notices);
  return f;
}

void provider_state::unfollow(const std::shared_ptr<run_feed>& f) {
  bool last = false;
  {
    std::lock_guard lk(mutex);
    if (--f->readers == 0 && !f->local) {
      auto it = feeds.find(f->keys.stream);
      if (it != feeds.end() && it->second == f) {
        feeds.erase(it);
        by_notice_channel.erase(f->keys.notices);
        last = true;
      }
    }
  }
  if (last) unsubscribe(f->keys.notices);
}

void provider_state::fetch(const std::shared_ptr<run_feed>& f) {
  {
    std::lock_guard lk(f->log.mutex);
    if (f->ended || f->fatal) return;
    if (f->fetching) {
      f->fetch_again = true;
      return;
    }
    f->fetching = true;
  }
  asio::co_spawn(strand, fetch_loop(shared_from_this(), f), asio::detached);
}

asio::awaitable<void> provider_state::fetch_loop(std::shared_ptr<provider_state> self, std::shared_ptr<run_feed> f) {
  const auto batch = std::max<std::size_t>(1, self->cfg.read_batch);
  const auto window = std::max<std::size_t>(1, self->cfg.feed_window);
  request req;
  for (;;) {
    std::optional<range_after> range;
    {
      std::lock_guard lk(f->log.mutex);
      if (f->ended || f->fatal) {
        f->fetching = false;
        co_return;
      }
      f->fetch_again = false;
      // The owner's feed has its writer's check instead: it stops the run at a hole, and the
      // feed then reads the fatal error the writer stored.
      range.emplace(self->cmd, f->last, f->local ? std::nullopt : std::optional(f->epoch));
    }
    req.clear();
    range->push(req, f->keys.stream, batch);
    self->fetches.fetch_add(1, std::memory_order_relaxed);
    auto [ec, replies] = co_await self->cmd.async_exec(req, tuple_awaitable);
    if (ec || replies.size() != 1) {
      bool followed;
      {
        std::lock_guard lk(self->mutex);
        followed = f->readers > 0 && !self->closed;
      }
      if (!followed) {
        std::lock_guard lk(f->log.mutex);
        f->fetching = false;
        co_return;
      }
      // Redis is away: the entries wait in Redis; try again from the same place.
      co_await pause(std::chrono::milliseconds(50));
      continue;
    }
    const auto& reply = replies[0];
    const auto judged = reply.is_array() ? range->judge(self->cmd, reply) : range_after::outcome::entries;
    if (judged == range_after::outcome::stale) continue;
    std::size_t got = 0;
    bool again = false;
    {
      std::lock_guard lk(f->log.mutex);
      if (reply.is_error()) {
        f->fail_locked(reply.text.starts_with("WRONGTYPE") ? foreign_key_event(f->keys.stream, "value of another type")
                                                           : fatal_event("Redis refused to read the run", {{"key", f->keys.stream}, {"reply", reply.text}}));
      } else if (!reply.is_array()) {
        f->fail_locked(fatal_event("Redis answered XRANGE with an unexpected reply",
                                   {{"key", f->keys.stream}, {"reply", redis::to_string(reply)}}));
      } else if (judged == range_after::outcome::lost) {
        f->fail_locked(range->lost_event(f->keys.stream));
      } else {
        f->epoch = range->epoch();
        for (const auto& e : reply.elements) {
          entry_id id;
          std::string_view id_text;
          entry_meaning m;
          if (!decode_range_entry(e, id, id_text, m, f->keys.stream)) {
            f->fail_locked(fatal_event("Redis answered XRANGE with an unexpected reply", {{"key", f->keys.stream}}));
            break;
          }
          f->add_locked(id, id_text, m, window);
        }
        got = reply.elements.size() - range->skipped();
      }
      again = f->fetch_again || got == batch;
      if (!again || f->ended || f->fatal) {
        f->fetching = false;
        co_return;
      }
    }
  }
}

void provider_state::subscribe(std::string channel) {
  request req;
  req.push({"SSUBSCRIBE", channel});
  std::weak_ptr<provider_state> weak = shared_from_this();
  sub.async_exec(req, [weak, channel](error_code, response) {
    auto self = weak.lock();
    if (!self) return;
    // Subscribed (or the subscriber is away: the reconnect subscribes again and reads then).
    std::shared_ptr<run_feed> f;
    {
      std::lock_guard lk(self->mutex);
      if (auto it = self->by_notice_channel.find(channel); it != self->by_notice_channel.end()) f = it->second;
    }
    if (f) self->announce(f);
  });
}

void provider_state::announce(const std::shared_ptr<run_feed>& f) {
  // The owner publishes notices only for runs that someone follows: tell it (it answers with a
  // notice of its own, after every append it made before), and read what came before meanwhile,
  // so a run whose owner is gone or keeps no notices is read too.
  request req;
  req.push({"SPUBLISH", f->keys.control, "follow"});
  cmd.async_exec(req, [](error_code, response) {});
  fetch(f);
}

void provider_state::unsubscribe(std::string channel) {
  request req;
  req.push({"SUNSUBSCRIBE", channel});
  sub.async_exec(req, [](error_code, response) {});
}

void provider_state::on_subscriber_connected() {
  // A new connection has no subscriptions: subscribe again to everything, then read what the
  // notices lost meanwhile would have announced.
  std::vector<std::string> channels;
  {
    std::lock_guard lk(mutex);
    for (auto& [name, f] : by_notice_channel) channels.push_back(name);
    for (auto& [name, r] : by_control_channel) channels.push_back(name);
  }
  if (channels.empty()) return;
  // One channel per command: on a cluster, each goes to the node of its slot.
  request req;
  for (auto& c : channels) req.push({"SSUBSCRIBE", c});
  std::weak_ptr<provider_state> weak = shared_from_this();
  sub.async_exec(req, [weak](error_code, response) {
    auto self = weak.lock();
    if (!self) return;
    std::vector<std::shared_ptr<run_feed>> followed;
    {
      std::lock_guard lk(self->mutex);
      for (auto& [key, f] : self->feeds) followed.push_back(f);
    }
    for (auto& f : followed) self->announce(f);
  });
}

void provider_state::on_push(value message) {
  if (message.elements.size() < 3 || !message.elements[1].is_text()) return;
  const auto& channel = message.elements[1].text;
  std::shared_ptr<run_feed> f;
  std::shared_ptr<local_run> mine;
  std::function<void()> cancel_hook;
  {
    std::lock_guard lk(mutex);
    if (auto it = by_notice_channel.find(channel); it != by_notice_channel.end()) {
      f = it->second;
    } else if (auto r = by_control_channel.find(channel); r != by_control_channel.end()) {
      mine = r->second;
      if (message.elements[2].text == "cancel") cancel_hook = mine->on_cancel;
    }
  }
  if (f) {
    notices.fetch_add(1, std::memory_order_relaxed);
    fetch(f);
  }
  if (cancel_hook) cancel_hook();
  if (mine && message.elements[2].text == "follow") {
    // From now on its appends publish notices; this one covers every append made before.
    mine->followed = true;
    request req;
    req.push({"SPUBLISH", mine->keys.notices, "1"});
    cmd.async_exec(req, [](error_code, response) {});
  }
}

// ---- runs of this instance --------------------------------------------------------------------------

void provider_state::add_run(const std::shared_ptr<local_run>& run) {
  {
    std::lock_guard lk(mutex);
    runs[run->keys.stream] = run;
    by_control_channel[run->keys.control] = run;
  }
  subscribe(run->keys.control);
}

std::size_t provider_state::running_runs() const {
  std::lock_guard lk(mutex);
  return runs.size();
}

void provider_state::remove_run(const std::shared_ptr<local_run>& run) {
  bool removed = false;
  {
    std::lock_guard lk(mutex);
    auto it = runs.find(run->keys.stream);
    if (it != runs.end() && it->second == run) {
      runs.erase(it);
      by_control_channel.erase(run->keys.control);
      removed = true;
    }
  }
  if (removed) unsubscribe(run->keys.control);
}

void provider_state::note_failure(local_run& r) {
  const auto now = now_ms();
  std::int64_t expected = 0;
  r.failing_since.compare_exchange_strong(expected, now);
  const auto since = r.failing_since.load();
  if (since != 0 && now - since >= cfg.outage_limit.count()) lose(r, stop_cause::outage);
}

void provider_state::lose(local_run& r, stop_cause cause) {
  if (r.lost.exchange(true)) return;
  r.cause = cause;
  std::function<void()> hook;
  {
    std::lock_guard lk(mutex);
    hook = r.on_cancel;
  }
  if (hook) hook();
}

asio::awaitable<void> provider_state::close_abandoned(std::shared_ptr<provider_state> self,
                                                      std::shared_ptr<local_run> run, std::string fatal) {
  // Until Redis takes it: readers anywhere must learn how the run ended.
  auto delay = std::chrono::milliseconds(20);
  const auto retention_ms = ms_text(self->cfg.retention);
  request req;
  req.push({"EVAL", close_script, "3", run->keys.stream, run->keys.lease, run->keys.suspect, fatal, retention_ms,
            "close", max_entry_id, "1"});
  req.push({"SPUBLISH", run->keys.notices, "end"});
  while (!self->is_closed()) {
    auto [ec, replies] = co_await self->cmd.async_exec(req, tuple_awaitable);
    if (!ec && !replies.empty() && !replies[0].is_error()) break;
    co_await pause(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(1000));
  }
  self->remove_run(run);
  // Readers of this instance follow the run's own feed: it gets the end from Redis.
  if (run->feed) self->fetch(run->feed);
}

// ---- leases ---------------------------------------------------------------------------------------

asio::awaitable<void> provider_state::maintenance_loop(std::shared_ptr<provider_state> self) {
  const auto renew_every = std::max(self->lease / 3, std::chrono::milliseconds(10));
  const auto presence_every = std::max(self->cfg.presence_ttl / 3, std::chrono::milliseconds(10));
  const auto tick = std::min({renew_every, self->check_every, presence_every});
  auto next_renew = clock_type::now() + renew_every;
  auto next_check = clock_type::now() + self->check_every;
  auto next_presence = clock_type::now() + presence_every;
  for (;;) {
    self->maintenance.expires_after(tick);
    co_await self->maintenance.async_wait(tuple_awaitable);
    if (self->is_closed()) co_return;
    self->watch_reachability();
    // While Redis is away, requests would wait for the connection and hold up the watch above:
    // renewals and checks resume with the connection (lapsed leases are then taken again).
    if (!self->cmd.connected()) continue;
    const auto now = clock_type::now();
    if (now >= next_renew) {
      next_renew = now + renew_every;
      co_await self->renew_leases();
    }
    if (now >= next_presence) {
      next_presence = now + presence_every;
      self->renew_presence();
    }
    if (now >= next_check) {
      next_check = now + self->check_every;
      co_await self->check_leases();
      // A subscriber expects no reply while idle: a ping lets the response timeout find a dead one.
      self->sub.ping();
    }
  }
}

asio::awaitable<void> provider_state::renew_leases() {
  std::vector<std::shared_ptr<local_run>> mine;
  {
    std::lock_guard lk(mutex);
    for (auto& [key, r] : runs)
      if (!r->closed && !r->lost) mine.push_back(r);
  }
  if (mine.empty()) co_return;
  const auto lease_ms = ms_text(lease);
  const auto keep_ms = ms_text(cfg.retention + lease * 2);
  request req;
  constexpr std::size_t per_run = 4;
  for (auto& r : mine) {
    req.push({"PEXPIRE", r->keys.lease, lease_ms});
    req.push({"PEXPIRE", r->keys.stream, keep_ms});
    req.push({"EXISTS", r->keys.cancel});
    req.push({"TYPE", r->keys.stream});
  }
  auto [ec, replies] = co_await cmd.async_exec(req, tuple_awaitable);
  if (ec || replies.size() != mine.size() * per_run) {
    // Redis is away: a run that stays without it past the outage limit is stopped, whether or
    // not it appends meanwhile.
    for (auto& r : mine) note_failure(*r);
    co_return;
  }
  std::vector<std::shared_ptr<local_run>> lapsed;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    auto& r = *mine[i];
    r.failing_since = 0;
    if (r.closed) continue;
    const auto& type = replies[per_run * i + 3].text;
    if (type != "stream" && type != "none") {
      // Someone replaced the run's log with a value of another type: its readers here end.
      {
        std::lock_guard lk(r.feed->log.mutex);
        r.feed->fail_locked(foreign_key_event(r.keys.stream, type));
      }
      lose(r, stop_cause::foreign);
    } else if (replies[per_run * i].integer == 0) {
      // The lease lapsed while this instance could not renew it (Redis paused or restarted, or
      // this process stalled): take it again, unless readers elsewhere closed the run meanwhile.
      lapsed.push_back(mine[i]);
    } else if (replies[per_run * i + 2].integer == 1) {
      // A cancel request whose message this instance missed.
      std::function<void()> hook;
      {
        std::lock_guard lk(mutex);
        hook = r.on_cancel;
      }
      if (hook) hook();
    }
  }
  if (lapsed.empty()) co_return;
  request again;
  for (auto& r : lapsed) again.push({"EVAL", reacquire_script, "2", r->keys.stream, r->keys.lease, instance, lease_ms});
  auto [aec, answers] = co_await cmd.async_exec(again, tuple_awaitable);
  if (aec || answers.size() != lapsed.size()) co_return;  // the next renewal tries again
  for (std::size_t i = 0; i < lapsed.size(); ++i)
    if (answers[i].text != lease_held) lose(*lapsed[i], stop_cause::lease_lost);
}

void provider_state::watch_reachability() {
  const auto since = down_since.load(std::memory_order_relaxed);
  if (cmd.connected()) {
    if (since != 0) {
      outage_ms_total.fetch_add(now_ms() - since, std::memory_order_relaxed);
      down_since = 0;
    }
    return;
  }
  if (since == 0) {
    down_since = now_ms();
    outages.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (unreachable_for() < cfg.reader_outage_limit) return;
  // Readers do not wait for ever: past the bound each ends with an error that names the storage.
  // The runs themselves may go on (a resume later reads them); this instance's stop at the
  // outage limit, with the cause stored once Redis is back.
  const auto event = fatal_event("Redis is unreachable: " + std::string(cmd.last_error().empty() ? "no connection" : cmd.last_error()) +
                                     "; the run could not be read for " + std::to_string(unreachable_for().count() / 1000) + " s",
                                 {{"storage", "redis"}});
  std::vector<std::shared_ptr<run_feed>> all;
  {
    std::lock_guard lk(mutex);
    for (auto& [key, f] : feeds) all.push_back(f);
    for (auto& [key, r] : runs)
      if (r->feed) all.push_back(r->feed);
  }
  for (auto& f : all) {
    std::lock_guard lk(f->log.mutex);
    f->fail_locked(event);
  }
}

asio::awaitable<void> provider_state::check_leases() {
  std::vector<std::shared_ptr<run_feed>> watched;
  {
    std::lock_guard lk(mutex);
    for (auto& [key, f] : feeds) watched.push_back(f);
  }
  std::erase_if(watched, [](auto& f) {
    std::lock_guard lk(f->log.mutex);
    return f->ended || f->fatal || !f->leased;
  });
  if (watched.empty()) co_return;
  // A follow request or a notice lost to a reconnect (of the owner's subscriber, or ours) is
  // repaired here, at the latest.
  for (auto& f : watched) announce(f);
  const auto fatal = fatal_event("producer lost: the server running this run stopped renewing its lease");
  const auto retention_ms = ms_text(cfg.retention);
  request req;
  const auto grace_ms = ms_text(check_every);
  for (auto& f : watched)
    req.push({"EVAL", close_script, "3", f->keys.stream, f->keys.lease, f->keys.suspect, fatal, retention_ms, "check",
              max_entry_id, grace_ms});
  auto [ec, replies] = co_await cmd.async_exec(req, tuple_awaitable);
  if (ec || replies.size() != watched.size()) co_return;
  request notify;
  for (std::size_t i = 0; i < watched.size(); ++i) {
    auto& f = watched[i];
    const auto r = static_cast<close_result>(replies[i].integer);
    if (r == close_result::closed) {
      producers_lost.fetch_add(1, std::memory_order_relaxed);
      // Readers of the run on other instances learn of the end as of any entry.
      notify.push({"SPUBLISH", f->keys.notices, "end"});
    }
    if (r == close_result::closed || r == close_result::already_ended) fetch(f);  // the fatal error and the end
    std::lock_guard lk(f->log.mutex);
    if (r == close_result::not_judged) f->leased = false;
    if (r == close_result::not_a_stream) f->fail_locked(foreign_key_event(f->keys.stream, "value of another type"));
    if (r == close_result::no_stream && f->last != entry_id{})
      f->fail_locked(fatal_event("The run's log is gone from Redis (expired or deleted)", {{"key", f->keys.stream}}));
  }
  if (!notify.empty()) cmd.async_exec(notify, [](error_code, response) {});
}

}  // namespace river::redis::detail
