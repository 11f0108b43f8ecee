// The Redis Streams provider: writers that append with pipelined XADD, readers that replay with
// XRANGE and follow live runs through shared blocking XREADs, leases and cancel requests.

#include <river/redis/connection.hpp>
#include <river/redis/detail/stream_entry.hpp>
#include <river/redis/provider.hpp>

#include <river/detail/event_writer.hpp>
#include <river/detail/json_validator.hpp>
#include <river/detail/strand.hpp>
#include <river/detail/wakeup.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <unordered_map>

namespace river::redis {

using detail::entry_id;
using detail::stream_entry;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
// The longest a live readers' XREAD blocks in Redis before it is sent again.
constexpr std::chrono::milliseconds max_block{2000};

// The end entry written when readers close a run whose producer was lost: the largest id, so
// that a producer that comes back cannot append after it (XADD * then fails).
constexpr std::string_view max_entry_id = "18446744073709551615-18446744073709551615";

// Closes a run's log with a fatal error, unless it already ended. KEYS: stream, lease.
// ARGV: fatal event JSON, retention ms, mode ("check": only when the lease is gone and the run was
// written by River C++, which marks its first entry with a `lease` field; "close": always).
// Returns 0 lease alive, 1 closed now, 2 already ended, 3 not ours to judge, 4 no such stream,
// 5 not a stream.
constexpr std::string_view close_script = R"lua(
local t = redis.call('TYPE', KEYS[1])['ok']
if ARGV[3] == 'check' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
  if t == 'none' then return 4 end
  if t ~= 'stream' then return 5 end
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #first == 0 then return 4 end
  local f = first[1][2]
  if f[3] ~= 'lease' then return 3 end
elseif t ~= 'none' and t ~= 'stream' then
  return 5
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 and last[1][2][1] == 'end' then return 2 end
redis.call('XADD', KEYS[1], '*', 'item', ARGV[1])
redis.call('XADD', KEYS[1], ARGV[4], 'end', 'STREAM_END')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
)lua";

// Forwards a cancel request to the instance holding the run's lease. KEYS: stream, lease.
// ARGV: run id. Returns "sent", "not_found", "finished" or "no_owner".
constexpr std::string_view cancel_script = R"lua(
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'stream' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 and last[1][2][1] == 'end' then return 'finished' end
elseif redis.call('EXISTS', KEYS[2]) == 0 then
  return 'not_found'
end
local owner = redis.call('GET', KEYS[2])
if not owner then return 'no_owner' end
local control = 'river-control:' .. owner
redis.call('XADD', control, 'MAXLEN', '~', '1000', '*', 'cancel', ARGV[1])
redis.call('PEXPIRE', control, 3600000)
return 'sent'
)lua";

std::string error_event(std::string_view kind, const std::string& message, const nlohmann::json& context) {
  return river::detail::event_text([&](std::string& out) {
    river::detail::append_error_event(out, kind == "stream_fatal_error", river::error(message, error_type::stream, context));
  });
}

std::string producer_lost_json() {
  return error_event("stream_fatal_error",
                     "producer lost: the server running this run stopped renewing its lease",
                     nlohmann::json::object());
}

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

std::string stream_key(std::string_view storage, std::string_view run) {
  std::string k = "stream-";
  k += storage;
  k += '-';
  k += run;
  return k;
}

std::string lease_key(std::string_view storage, std::string_view run) {
  std::string k = "river-lease:";
  k += storage;
  k += ':';
  k += run;
  return k;
}

river::error storage_error(std::string message, nlohmann::json ctx = nlohmann::json::object()) {
  return river::error::from_code(errc::storage_failure, std::move(message), std::move(ctx));
}

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(std::max<std::int64_t>(1, d.count())); }

// What one stream entry means to a reader.
struct decoded_entry {
  enum class kind { item, end, bad } type = kind::bad;
  entry_id id;
  std::string id_text;
  std::string data;  // the event JSON, or a synthesized stream_error for a bad entry
};

decoded_entry decode_entry(stream_entry&& e, const std::string& key) {
  decoded_entry d;
  d.id = entry_id::parse(e.id).value_or(entry_id{});
  d.id_text = std::move(e.id);
  if (!e.fields.empty() && e.fields[0].first == "item") {
    if (river::detail::is_valid_json(e.fields[0].second)) {
      d.type = decoded_entry::kind::item;
      d.data = std::move(e.fields[0].second);
      return d;
    }
    d.data = error_event("stream_error", "A stored entry of this run is not valid JSON",
                         {{"position", d.id_text}, {"key", key}});
    return d;
  }
  if (!e.fields.empty() && e.fields[0].first == "end") {
    d.type = decoded_entry::kind::end;
    return d;
  }
  d.data = error_event("stream_error", "A stored entry of this run is not a River event",
                       {{"position", d.id_text}, {"key", key},
                        {"field", e.fields.empty() ? std::string() : e.fields[0].first}});
  return d;
}

}  // namespace

namespace detail {

// The entries of one run that live readers of this process follow, read by a shared XREAD.
// It covers the entries after `base` up to `last`, the newest `feed_window` of them kept.
struct feed {
  feed(std::string k, std::string lk, entry_id from) : key(std::move(k)), lease(std::move(lk)), base(from), last(from) {}
  const std::string key, lease;
  std::mutex mutex;
  entry_id base, last;
  std::deque<decoded_entry> recent;
  bool ended = false;                 // the end entry was read: nothing more to follow
  std::optional<std::string> fatal;   // the key cannot be read as a run: readers get this
  bool leased = true;                 // false once known to be written without a lease
  std::vector<river::detail::wakeup*> sleepers;
  std::size_t readers = 0;            // guarded by the state's mutex

  void wake_all() {
    for (auto* s : sleepers) s->notify();
    sleepers.clear();
  }
};

// A run of this instance.
struct local_run {
  std::string run_id, key, lease;
  std::function<void()> on_cancel;   // guarded by the state's mutex
  std::atomic<bool> closed{false};   // the last record was handed to Redis: appends are refused
  std::atomic<bool> terminated{false};  // the last record is stored
  std::atomic<bool> lost{false};     // lease lost or Redis away too long: appends are refused
  bool first = true;                 // the next append is the first (writer's strand of calls)
  // When Redis first failed this run in the current outage (ms since the clock's epoch; 0: none).
  std::atomic<std::int64_t> failing_since{0};
};

struct subscriber {
  subscriber(const executor& ex, connection_config cfg, std::string control_key)
      : conn(ex, std::move(cfg)), strand(river::detail::make_strand(ex)), control(std::move(control_key)) {}
  connection conn;
  executor strand;  // a strand
  const std::string control;
  entry_id control_last;                                     // subscriber's strand only
  std::unordered_map<std::string, std::shared_ptr<feed>> feeds;  // guarded by the state's mutex
  bool kick_pending = false;                                 // guarded by the state's mutex
  std::unique_ptr<asio::steady_timer> idle;                  // subscriber's strand only
};

struct provider_state : std::enable_shared_from_this<provider_state> {
  provider_state(executor e, config c)
      : ex(std::move(e)), cfg(std::move(c)), instance(random_hex(16)), strand(river::detail::make_strand(ex)),
        cmd(ex, connection_for(cfg, "river-cmd")), maintenance(strand) {
    lease = cfg.lease.count() > 0 ? cfg.lease : cfg.producer_lost_timeout / 2;
    lease = std::max(lease, std::chrono::milliseconds(30));
    check_every = std::max(cfg.producer_lost_timeout - lease, std::chrono::milliseconds(50));
    const auto n = std::max<std::size_t>(1, cfg.reader_connections);
    for (std::size_t i = 0; i < n; ++i) {
      auto control = "river-control:" + instance + (i == 0 ? std::string() : ":" + std::to_string(i));
      auto cc = connection_for(cfg, "river-read");
      // A blocking XREAD waits up to `max_block` for its reply by design.
      if (cc.response_timeout.count() > 0) cc.response_timeout = std::max(cc.response_timeout, 2 * max_block);
      subs.push_back(std::make_unique<subscriber>(ex, std::move(cc), std::move(control)));
    }
  }

  static connection_config connection_for(const config& c, std::string name) {
    auto cc = c.connection;
    cc.url = c.url;
    if (cc.client_name.empty()) cc.client_name = std::move(name);
    return cc;
  }

  executor ex;
  const config cfg;
  const std::string instance;
  std::chrono::milliseconds lease{}, check_every{};
  executor strand;  // a strand
  connection cmd;
  std::vector<std::unique_ptr<subscriber>> subs;
  asio::steady_timer maintenance;

  mutable std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<local_run>> runs;
  bool closed = false;
  std::atomic<std::uint64_t> appends{0}, producers_lost{0};

  void start() {
    cmd.start();
    for (auto& s : subs) {
      s->conn.start();
      s->idle = std::make_unique<asio::steady_timer>(s->strand);
      asio::co_spawn(s->strand, subscribe_loop(shared_from_this(), s.get()), asio::detached);
    }
    asio::co_spawn(strand, maintenance_loop(shared_from_this()), asio::detached);
  }

  void close() {
    {
      std::lock_guard lk(mutex);
      if (closed) return;
      closed = true;
    }
    cmd.close();
    for (auto& s : subs) {
      s->conn.close();
      asio::post(s->strand, [self = shared_from_this(), s = s.get()] { s->idle->cancel(); });
    }
    asio::post(strand, [self = shared_from_this()] { self->maintenance.cancel(); });
  }

  bool is_closed() const {
    std::lock_guard lk(mutex);
    return closed;
  }

  subscriber& sub_for(const std::string& key) { return *subs[std::hash<std::string>{}(key) % subs.size()]; }

  // Makes the subscriber's blocking XREAD return, so that it reads a new set of runs. Sent on the
  // command connection as an entry of the subscriber's control stream, which the XREAD waits on:
  // the entry is seen whether it arrives before or during the XREAD.
  void kick(subscriber& s) {
    {
      std::lock_guard lk(mutex);
      if (s.kick_pending || closed) return;
      s.kick_pending = true;
    }
    request req;
    req.push({"XADD", s.control, "MAXLEN", "~", "100", "*", "wake", "1"});
    req.push({"PEXPIRE", s.control, "3600000"});
    cmd.async_exec(std::move(req), [](error_code, std::vector<value>) {});
    asio::post(s.strand, [self = shared_from_this(), sp = &s] { sp->idle->cancel(); });
  }

  std::shared_ptr<feed> attach(const std::string& key, const std::string& lk, entry_id from) {
    auto& s = sub_for(key);
    std::shared_ptr<feed> f;
    bool fresh = false;
    {
      std::lock_guard lk2(mutex);
      auto& slot = s.feeds[key];
      if (!slot) {
        slot = std::make_shared<feed>(key, lk, from);
        fresh = true;
      }
      ++slot->readers;
      f = slot;
    }
    if (fresh) kick(s);
    return f;
  }

  void detach(const std::shared_ptr<feed>& f) {
    auto& s = sub_for(f->key);
    std::lock_guard lk(mutex);
    if (--f->readers == 0) {
      auto it = s.feeds.find(f->key);
      if (it != s.feeds.end() && it->second == f) s.feeds.erase(it);
    }
  }

  static asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(tuple_awaitable);
  }

  // ---- live readers: one blocking XREAD per subscriber connection ---------------------------

  static asio::awaitable<void> subscribe_loop(std::shared_ptr<provider_state> self, subscriber* s) {
    const auto block_ms =
        std::to_string(std::max<std::int64_t>(50, std::min<std::int64_t>(max_block.count(), self->check_every.count())));
    const auto count = std::to_string(std::max<std::size_t>(1, self->cfg.read_batch));
    for (;;) {
      if (self->is_closed()) co_return;
      std::vector<std::shared_ptr<feed>> followed;
      {
        std::lock_guard lk(self->mutex);
        s->kick_pending = false;
        for (auto& [key, f] : s->feeds) followed.push_back(f);
      }
      std::vector<std::string> ids;
      std::vector<std::string_view> args = {"XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS"};
      std::vector<std::shared_ptr<feed>> keys;
      for (auto& f : followed) {
        std::lock_guard lk(f->mutex);
        if (f->ended || f->fatal) continue;
        keys.push_back(f);
        ids.push_back(f->last.to_string());
      }
      const bool with_control = s == self->subs.front().get() || !keys.empty();
      if (!with_control) {
        s->idle->expires_at(clock_type::time_point::max());
        co_await s->idle->async_wait(tuple_awaitable);
        continue;
      }
      for (auto& f : keys) args.push_back(f->key);
      args.push_back(s->control);
      for (auto& id : ids) args.push_back(id);
      const auto control_id = s->control_last.to_string();
      args.push_back(control_id);
      request req;
      req.push(args);
      auto [ec, replies] = co_await s->conn.async_exec(std::move(req), tuple_awaitable);
      if (ec) {
        // Redis is away: the connection reconnects; positions are kept, so nothing is lost.
        co_await pause(std::chrono::milliseconds(20));
        continue;
      }
      if (replies.empty()) continue;
      if (replies[0].is_error()) {
        co_await find_foreign_keys(self, keys);
        continue;
      }
      auto decoded = detail::decode_read(replies[0]);
      if (!decoded) {
        co_await pause(std::chrono::milliseconds(20));
        continue;
      }
      for (auto& batch : *decoded) {
        if (batch.key == s->control) {
          self->control_entries(*s, std::move(batch.entries));
          continue;
        }
        auto it = std::find_if(keys.begin(), keys.end(), [&](auto& f) { return f->key == batch.key; });
        if (it != keys.end()) self->feed_entries(**it, std::move(batch.entries));
      }
    }
  }

  // A key of another type makes the whole XREAD fail: find which, and give its readers a fatal error.
  static asio::awaitable<void> find_foreign_keys(std::shared_ptr<provider_state> self,
                                                 std::vector<std::shared_ptr<feed>> keys) {
    request req;
    for (auto& f : keys) req.push({"TYPE", f->key});
    auto [ec, replies] = co_await self->cmd.async_exec(std::move(req), tuple_awaitable);
    if (ec || replies.size() != keys.size()) {
      co_await pause(std::chrono::milliseconds(20));
      co_return;
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const auto& t = replies[i].text;
      if (t == "stream" || t == "none") continue;
      std::lock_guard lk(keys[i]->mutex);
      keys[i]->fatal = foreign_key_event(keys[i]->key, t);
      keys[i]->wake_all();
    }
  }

  static std::string foreign_key_event(const std::string& key, const std::string& type) {
    return error_event("stream_fatal_error", "The run's key in Redis holds a " + type + ", not a stream",
                       {{"key", key}});
  }

  void feed_entries(feed& f, std::vector<stream_entry> entries) {
    std::lock_guard lk(f.mutex);
    for (auto& e : entries) {
      auto d = decode_entry(std::move(e), f.key);
      if (d.id <= f.last) continue;
      f.last = d.id;
      if (d.type == decoded_entry::kind::end) f.ended = true;
      f.recent.push_back(std::move(d));
      if (f.ended) break;
    }
    const auto window = std::max<std::size_t>(1, cfg.feed_window);
    while (f.recent.size() > window) {
      f.base = f.recent.front().id;
      f.recent.pop_front();
    }
    f.wake_all();
  }

  void control_entries(subscriber& s, std::vector<stream_entry> entries) {
    for (auto& e : entries) {
      if (auto id = entry_id::parse(e.id); id && *id > s.control_last) s.control_last = *id;
      if (e.fields.empty() || e.fields[0].first != "cancel") continue;
      std::function<void()> hook;
      {
        std::lock_guard lk(mutex);
        auto it = runs.find(e.fields[0].second);
        if (it != runs.end()) hook = it->second->on_cancel;
      }
      if (hook) hook();
    }
  }

  // ---- leases: renewed for our runs, checked for the runs our readers follow ---------------

  static asio::awaitable<void> maintenance_loop(std::shared_ptr<provider_state> self) {
    const auto renew_every = std::max(self->lease / 3, std::chrono::milliseconds(10));
    const auto tick = std::min(renew_every, self->check_every);
    auto next_renew = clock_type::now() + renew_every;
    auto next_check = clock_type::now() + self->check_every;
    for (;;) {
      self->maintenance.expires_after(tick);
      co_await self->maintenance.async_wait(tuple_awaitable);
      if (self->is_closed()) co_return;
      const auto now = clock_type::now();
      if (now >= next_renew) {
        next_renew = now + renew_every;
        co_await self->renew_leases();
      }
      if (now >= next_check) {
        next_check = now + self->check_every;
        co_await self->check_leases();
      }
    }
  }

  asio::awaitable<void> renew_leases() {
    std::vector<std::shared_ptr<local_run>> mine;
    {
      std::lock_guard lk(mutex);
      for (auto& [id, r] : runs)
        if (!r->closed && !r->lost) mine.push_back(r);
    }
    if (mine.empty()) co_return;
    const auto lease_ms = ms_text(lease);
    const auto keep_ms = ms_text(cfg.retention + lease * 2);
    request req;
    for (auto& r : mine) {
      req.push({"PEXPIRE", r->lease, lease_ms});
      req.push({"PEXPIRE", r->key, keep_ms});
    }
    auto [ec, replies] = co_await cmd.async_exec(std::move(req), tuple_awaitable);
    if (ec || replies.size() != mine.size() * 2) {
      // Redis is away: a run that stays without it past the outage limit is stopped, whether
      // or not it appends meanwhile.
      for (auto& r : mine) note_failure(*r);
      co_return;
    }
    for (std::size_t i = 0; i < mine.size(); ++i) {
      mine[i]->failing_since = 0;
      if (replies[2 * i].integer != 0 || mine[i]->closed) continue;
      // The lease lapsed (this process stalled, or Redis lost it): readers may have closed the
      // run already, so it must stop.
      lose(*mine[i]);
    }
  }

  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now().time_since_epoch()).count();
  }

  // Records that Redis failed a run; past the outage limit the run is stopped.
  void note_failure(local_run& r) {
    const auto now = now_ms();
    std::int64_t expected = 0;
    r.failing_since.compare_exchange_strong(expected, now);
    const auto since = r.failing_since.load();
    if (since != 0 && now - since >= cfg.outage_limit.count()) lose(r);
  }

  void lose(local_run& r) {
    if (r.lost.exchange(true)) return;
    std::function<void()> hook;
    {
      std::lock_guard lk(mutex);
      hook = r.on_cancel;
    }
    if (hook) hook();
  }

  asio::awaitable<void> check_leases() {
    std::vector<std::shared_ptr<feed>> watched;
    {
      std::lock_guard lk(mutex);
      for (auto& s : subs)
        for (auto& [key, f] : s->feeds) watched.push_back(f);
    }
    std::erase_if(watched, [](auto& f) {
      std::lock_guard lk(f->mutex);
      return f->ended || f->fatal || !f->leased;
    });
    if (watched.empty()) co_return;
    const auto fatal = producer_lost_json();
    const auto retention_ms = ms_text(cfg.retention);
    request req;
    for (auto& f : watched)
      req.push({"EVAL", close_script, "2", f->key, f->lease, fatal, retention_ms, "check", max_entry_id});
    auto [ec, replies] = co_await cmd.async_exec(std::move(req), tuple_awaitable);
    if (ec || replies.size() != watched.size()) co_return;
    for (std::size_t i = 0; i < watched.size(); ++i) {
      auto& f = *watched[i];
      const auto r = replies[i].integer;
      if (r == 1) producers_lost.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lk(f.mutex);
      if (r == 3) f.leased = false;
      if (r == 5) {
        f.fatal = foreign_key_event(f.key, "value of another type");
        f.wake_all();
      }
      if (r == 4 && f.last != entry_id{}) {
        f.fatal = error_event("stream_fatal_error", "The run's log is gone from Redis (expired or deleted)",
                              {{"key", f.key}});
        f.wake_all();
      }
    }
  }

  // Closes the log of a run whose writer went away before its last record, retrying while Redis
  // is away, for at most the outage limit plus ten seconds.
  static asio::awaitable<void> close_abandoned(std::shared_ptr<provider_state> self, std::shared_ptr<local_run> run,
                                               std::string fatal) {
    const auto until = clock_type::now() + self->cfg.outage_limit + std::chrono::seconds(10);
    auto delay = std::chrono::milliseconds(20);
    const auto retention_ms = ms_text(self->cfg.retention);
    while (!self->is_closed() && clock_type::now() < until) {
      request req;
      req.push({"EVAL", close_script, "2", run->key, run->lease, fatal, retention_ms, "close", max_entry_id});
      auto [ec, replies] = co_await self->cmd.async_exec(std::move(req), tuple_awaitable);
      if (!ec && !replies.empty() && !replies[0].is_error()) break;
      co_await pause(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(1000));
    }
    std::lock_guard lk(self->mutex);
    self->runs.erase(run->run_id);
  }
};

// ---- writer -------------------------------------------------------------------------------

class writer final : public log_writer {
 public:
  writer(std::shared_ptr<provider_state> st, std::shared_ptr<local_run> run) : st_(std::move(st)), run_(std::move(run)) {}

  ~writer() override {
    if (run_->terminated) return;
    run_->closed = true;
    auto fatal = run_->lost ? error_event("stream_fatal_error",
                                          "Redis was unreachable for longer than the outage limit; the run was stopped",
                                          nlohmann::json::object())
                            : river::detail::abandoned_run_json();
    asio::co_spawn(st_->strand, provider_state::close_abandoned(st_, run_, std::move(fatal)), asio::detached);
  }

  asio::awaitable<result<std::string>> append(std::string_view data, bool last) override {
    if (run_->closed) co_return river::error::from_code(errc::run_closed, "The run has already ended");
    if (run_->lost)
      co_return storage_error("The run was stopped: its lease in Redis was lost or Redis was away too long");
    request req;
    if (last) {
      run_->closed = true;
      req.push({"MULTI"});
      req.push({"XADD", run_->key, "*", "item", data});
      req.push({"XADD", run_->key, "*", "end", "STREAM_END"});
      req.push({"PEXPIRE", run_->key, ms_text(st_->cfg.retention)});
      req.push({"DEL", run_->lease});
      req.push({"EXEC"});
    } else if (run_->first) {
      // The first entry carries the `lease` marker: readers judge a lapsed lease only for runs
      // that have one (a TypeScript producer keeps none).
      req.push({"XADD", run_->key, "*", "item", data, "lease", "1"});
    } else {
      req.push({"XADD", run_->key, "*", "item", data});
    }
    run_->first = false;
    auto [ec, replies] = co_await st_->cmd.async_exec(std::move(req), tuple_awaitable);
    if (last) {
      std::lock_guard lk(st_->mutex);
      st_->runs.erase(run_->run_id);
    }
    if (ec) co_return failed(ec);
    const value* id = nullptr;
    if (last) {
      if (replies.size() == 6 && replies[5].is_array() && replies[5].elements.size() == 4)
        id = &replies[5].elements[0];
      else if (replies.size() == 6 && replies[1].is_error())
        id = &replies[1];
    } else if (!replies.empty()) {
      id = &replies[0];
    }
    if (!id || id->is_error() || !id->is_text()) {
      // Readers closed the run ("producer lost") after this instance lost its lease.
      run_->lost = true;
      co_return storage_error("Redis refused the event: " + (id ? redis::to_string(*id) : std::string("no reply")),
                              {{"key", run_->key}});
    }
    run_->failing_since = 0;
    if (last) run_->terminated = true;
    st_->appends.fetch_add(1, std::memory_order_relaxed);
    co_return id->text;
  }

 private:
  river::error failed(error_code ec) {
    st_->note_failure(*run_);
    auto text = st_->cmd.last_error();
    return storage_error("Failed to store the event in Redis: " + ec.message() + (text.empty() ? "" : " (" + text + ")"),
                         {{"key", run_->key}});
  }

  std::shared_ptr<provider_state> st_;
  std::shared_ptr<local_run> run_;
};

// ---- reader -------------------------------------------------------------------------------

class reader final : public log_reader {
 public:
  reader(std::shared_ptr<provider_state> st, std::string key, std::string lease, entry_id from, const executor& ex,
         std::optional<std::string> fatal = std::nullopt)
      : st_(std::move(st)), key_(std::move(key)), lease_(std::move(lease)), pos_(from), wake_(ex), fatal_(std::move(fatal)) {}

  ~reader() override {
    if (!feed_) return;
    {
      std::lock_guard lk(feed_->mutex);
      std::erase(feed_->sleepers, &wake_);
    }
    st_->detach(feed_);
  }

  asio::awaitable<result<read_status>> read(std::vector<record_view>& out, std::size_t max,
                                            clock_type::time_point deadline) override {
    owned_.clear();
    max = std::max<std::size_t>(max, 1);
    for (;;) {
      if (fatal_) {
        owned_.push_back({pos_.to_string(), std::move(*fatal_)});
        fatal_.reset();
        ended_ = true;
        co_return emit(out);
      }
      if (ended_) co_return read_status::end;
      if (feed_) {
        auto st = from_feed(max);
        if (st == feed_state::again) continue;
        if (st == feed_state::records && (!owned_.empty() || ended_)) co_return emit(out);
        if (st == feed_state::waiting) {
          if (clock_type::now() >= deadline) co_return read_status::idle;
          auto [ec] = co_await wake_.wait(deadline);
          if (river::detail::wakeup::cancelled(ec, co_await asio::this_coro::cancellation_state))
            co_return river::error::from_code(asio::error::operation_aborted, "read cancelled");
          continue;
        }
      }
      // Not covered by the feed: replay from Redis.
      const auto count = std::to_string(max);
      const auto from = "(" + pos_.to_string();
      request req;
      req.push({"XRANGE", key_, from, "+", "COUNT", count});
      auto [ec, replies] = co_await st_->cmd.async_exec(std::move(req), tuple_awaitable);
      if (ec || replies.empty()) {
        if (st_->is_closed()) co_return storage_error("The Redis provider was closed");
        if (clock_type::now() >= deadline) co_return read_status::idle;
        // Redis is away: try again from the same position once the connection is back.
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
        co_await t.async_wait(asio::use_awaitable);
        continue;
      }
      auto entries = detail::decode_range(replies[0]);
      if (!entries) {
        fatal_ = replies[0].is_error() && replies[0].text.starts_with("WRONGTYPE")
                     ? error_event("stream_fatal_error", "The run's key in Redis is not a stream", {{"key", key_}})
                     : error_event("stream_fatal_error", "Redis answered XRANGE with an unexpected reply",
                                   {{"key", key_}, {"reply", redis::to_string(replies[0])}});
        continue;
      }
      const bool caught_up = entries->size() < max;
      for (auto& e : *entries) {
        auto d = decode_entry(std::move(e), key_);
        if (!take(std::move(d))) break;
      }
      if (caught_up && !feed_ && !ended_) feed_ = st_->attach(key_, lease_, pos_);
      if (!owned_.empty()) co_return emit(out);
    }
  }

 private:
  enum class feed_state { records, waiting, behind, again };

  // Adds a decoded entry to the output; false at the end entry.
  bool take(decoded_entry&& d) {
    if (d.id <= pos_) return true;
    pos_ = d.id;
    if (d.type == decoded_entry::kind::end) {
      ended_ = true;
      return false;
    }
    owned_.push_back({std::move(d.id_text), std::move(d.data)});
    return true;
  }

  feed_state from_feed(std::size_t max) {
    std::lock_guard lk(feed_->mutex);
    if (feed_->fatal && pos_ >= feed_->last) {
      fatal_ = *feed_->fatal;
      return feed_state::again;  // the loop's first step hands it out
    }
    if (pos_ < feed_->base) return feed_state::behind;
    if (pos_ >= feed_->last) {
      if (std::find(feed_->sleepers.begin(), feed_->sleepers.end(), &wake_) == feed_->sleepers.end())
        feed_->sleepers.push_back(&wake_);
      return feed_state::waiting;
    }
    auto it = std::upper_bound(feed_->recent.begin(), feed_->recent.end(), pos_,
                               [](const entry_id& p, const decoded_entry& e) { return p < e.id; });
    for (; it != feed_->recent.end() && owned_.size() < max && !ended_; ++it) {
      auto copy = *it;
      take(std::move(copy));
    }
    return feed_state::records;
  }

  read_status emit(std::vector<record_view>& out) {
    if (owned_.empty()) return ended_ ? read_status::end : read_status::idle;
    for (auto& r : owned_) out.push_back({r.position, r.data, {}});
    return read_status::records;
  }

  struct stored {
    std::string position, data;
  };

  std::shared_ptr<provider_state> st_;
  const std::string key_, lease_;
  entry_id pos_;
  river::detail::wakeup wake_;
  std::optional<std::string> fatal_;
  std::shared_ptr<feed> feed_;
  std::deque<stored> owned_;
  bool ended_ = false;
};

}  // namespace detail

// ---- provider -----------------------------------------------------------------------------

provider::provider(executor ex, config cfg) {
  if (!parse_url(cfg.url)) throw std::invalid_argument("river::redis::provider: invalid Redis URL: " + cfg.url);
  state_ = std::make_shared<detail::provider_state>(std::move(ex), std::move(cfg));
  state_->start();
}

provider::~provider() { state_->close(); }

asio::awaitable<void> provider::close() {
  state_->close();
  co_return;
}

std::string_view provider::storage_id() const noexcept { return state_->cfg.storage_id; }
std::string_view provider::instance_id() const noexcept { return state_->instance; }

provider::stats provider::get_stats() const {
  stats s;
  s.connections = (state_->cmd.connected() ? 1u : 0u);
  for (auto& sub : state_->subs) s.connections += sub->conn.connected() ? 1u : 0u;
  {
    std::lock_guard lk(state_->mutex);
    s.running = state_->runs.size();
    for (auto& sub : state_->subs) s.followed += sub->feeds.size();
  }
  s.appends = state_->appends.load(std::memory_order_relaxed);
  s.writes = state_->cmd.get_stats().writes;
  s.producers_lost = state_->producers_lost.load(std::memory_order_relaxed);
  return s;
}

asio::awaitable<result<new_log>> provider::create_log(std::string run_id, std::function<void()> on_cancel_request) {
  auto st = state_;
  auto run = std::make_shared<detail::local_run>();
  run->run_id = run_id;
  run->key = stream_key(st->cfg.storage_id, run_id);
  run->lease = lease_key(st->cfg.storage_id, run_id);
  run->on_cancel = std::move(on_cancel_request);
  request req;
  req.push({"SET", run->lease, st->instance, "PX", ms_text(st->lease), "NX"});
  auto [ec, replies] = co_await st->cmd.async_exec(std::move(req), tuple_awaitable);
  if (ec) co_return storage_error("Failed to reach Redis: " + ec.message() + " (" + st->cmd.last_error() + ")");
  if (replies.empty() || replies[0].is_error())
    co_return storage_error("Redis refused the run's lease: " + (replies.empty() ? std::string() : replies[0].text));
  if (replies[0].is_nil()) co_return storage_error("A run with this id already exists", {{"streamRunId", run_id}});
  {
    std::lock_guard lk(st->mutex);
    st->runs[run_id] = run;
  }
  auto ex = co_await asio::this_coro::executor;
  new_log out;
  out.reader = std::make_unique<detail::reader>(st, run->key, run->lease, entry_id{}, ex);
  out.writer = std::make_shared<detail::writer>(st, std::move(run));
  co_return out;
}

asio::awaitable<result<std::unique_ptr<log_reader>>> provider::open_log(std::string storage_id, std::string run_id,
                                                                          std::optional<std::string> after) {
  auto st = state_;
  const auto key = stream_key(storage_id, run_id);
  const auto lk = lease_key(storage_id, run_id);
  std::optional<entry_id> from;
  if (after) {
    from = entry_id::parse(*after);
    if (!from)
      co_return river::error::from_code(errc::invalid_position, "Invalid resume position for this run", {{"position", *after}});
  }
  request req;
  req.push({"TYPE", key});
  req.push({"EXISTS", lk});
  if (after) req.push({"XRANGE", key, *after, *after});
  auto [ec, replies] = co_await st->cmd.async_exec(std::move(req), tuple_awaitable);
  if (ec || replies.size() != (after ? 3u : 2u))
    co_return storage_error("Failed to reach Redis: " + ec.message() + " (" + st->cmd.last_error() + ")");
  auto ex = co_await asio::this_coro::executor;
  const auto& type = replies[0].text;
  // A run that has stored nothing yet has only its lease.
  if (type == "none" && (replies[1].integer == 0 || after))
    co_return river::error::from_code(errc::run_not_found, "Run not found", {{"streamRunId", run_id}});
  if (type != "stream" && type != "none") {
    auto fatal = detail::provider_state::foreign_key_event(key, type);
    co_return std::unique_ptr<log_reader>(
        std::make_unique<detail::reader>(st, key, lk, entry_id{}, ex, std::move(fatal)));
  }
  if (after) {
    auto entries = detail::decode_range(replies[2]);
    if (!entries || entries->size() != 1 || entries->front().fields.empty() ||
        entries->front().fields[0].first == "end")
      co_return river::error::from_code(errc::invalid_position, "Invalid resume position for this run", {{"position", *after}});
  }
  co_return std::unique_ptr<log_reader>(std::make_unique<detail::reader>(st, key, lk, from.value_or(entry_id{}), ex));
}

asio::awaitable<result<void>> provider::request_cancel(std::string storage_id, std::string run_id) {
  auto st = state_;
  if (storage_id == st->cfg.storage_id) {
    // A run of this instance is reached directly.
    std::shared_ptr<detail::local_run> local;
    {
      std::lock_guard lk(st->mutex);
      if (auto it = st->runs.find(run_id); it != st->runs.end()) local = it->second;
    }
    if (local && !local->closed) {
      if (local->on_cancel) local->on_cancel();
      co_return result<void>();
    }
  }
  request req;
  req.push({"EVAL", cancel_script, "2", stream_key(storage_id, run_id), lease_key(storage_id, run_id), run_id});
  auto [ec, replies] = co_await st->cmd.async_exec(std::move(req), tuple_awaitable);
  if (ec || replies.empty()) co_return storage_error("Failed to reach Redis: " + ec.message());
  const auto& r = replies[0].text;
  if (r == "sent") co_return result<void>();
  if (r == "not_found") co_return river::error::from_code(errc::run_not_found, "Run not found", {{"streamRunId", run_id}});
  if (r == "finished")
    co_return river::error::from_code(errc::run_already_finished, "Run already finished", {{"streamRunId", run_id}});
  if (r == "no_owner")
    co_return storage_error("The run has no owner to reach: it keeps no lease (another implementation wrote it) or its server died",
                            {{"streamRunId", run_id}});
  co_return storage_error("Redis answered the cancel request with " + redis::to_string(replies[0]));
}

}  // namespace river::redis
