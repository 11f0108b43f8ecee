// The Redis Streams provider's front: runs created, opened and cancelled here; their writers,
// readers and the shared work behind them live in writer.cpp, reader.cpp and provider_state.cpp.

#include <river/redis/provider.hpp>

#include "provider_state.hpp"
#include "reader.hpp"
#include "scripts.hpp"
#include "writer.hpp"

#include <boost/asio/this_coro.hpp>

namespace river::redis {

using detail::entry_id;
using detail::run_keys;
using detail::storage_error;
using detail::tuple_awaitable;

provider::provider(executor ex, config cfg) {
  if (!valid_url(cfg.url)) throw std::invalid_argument("river::redis::provider: invalid Redis URL: " + cfg.url);
  state_ = std::make_shared<detail::provider_state>(std::move(ex), std::move(cfg));
  state_->start();
}

provider::~provider() { state_->close(); }

asio::awaitable<void> provider::close() {
  state_->close();
  co_return;
}

std::string_view provider::storage_id() const noexcept { return state_->cfg.storage_id; }

storage_health provider::health() const {
  auto& st = *state_;
  storage_health h;
  if (is_cluster_url(st.cfg.url)) {
    const auto seeds = parse_cluster_url(st.cfg.url);
    h.storage = "redis cluster " + (seeds ? seeds->front().host + ":" + std::to_string(seeds->front().port) : std::string("?"));
  } else {
    const auto a = parse_url(st.cfg.url);
    h.storage = "redis " + (a ? (a->kind == address::transport::unix_socket ? a->path : a->host + ":" + std::to_string(a->port))
                              : std::string("?"));
  }
  h.reachable = st.cmd.connected();
  if (!h.reachable) h.detail = st.cmd.last_error().empty() ? std::string("no connection yet") : st.cmd.last_error();
  h.down_for = st.unreachable_for();
  h.outages = st.outages.load(std::memory_order_relaxed);
  h.down_total = std::chrono::milliseconds(st.outage_ms_total.load(std::memory_order_relaxed));
  return h;
}
std::string_view provider::instance_id() const noexcept { return state_->instance; }

provider::stats provider::get_stats() const {
  stats s;
  s.connections = (state_->cmd.connected() ? 1u : 0u) + (state_->sub.connected() ? 1u : 0u);
  {
    std::lock_guard lk(state_->mutex);
    s.running = state_->runs.size();
    s.followed = state_->feeds.size();
  }
  s.appends = state_->appends.load(std::memory_order_relaxed);
  s.writes = state_->cmd.writes();
  s.producers_lost = state_->producers_lost.load(std::memory_order_relaxed);
  s.notices = state_->notices.load(std::memory_order_relaxed);
  s.fetches = state_->fetches.load(std::memory_order_relaxed);
  return s;
}

asio::awaitable<result<new_log>> provider::create_log(std::string run_id, std::function<void()> on_cancel_request) {
  auto st = state_;
  auto run = std::make_shared<detail::local_run>(run_keys::of(st->cfg.storage_id, run_id));
  run->run_id = run_id;
  run->on_cancel = std::move(on_cancel_request);
  run->feed = std::make_shared<detail::run_feed>(run->keys, entry_id{}, true);
  // A new run waits a little for a Redis that is away, then is refused as "try again later".
  if (!co_await st->wait_connected(st->cfg.start_wait))
    co_return river::error::from_code(errc::storage_unavailable,
                                      "Redis is unreachable: " + (st->cmd.last_error().empty() ? std::string("no connection")
                                                                                             : st->cmd.last_error()),
                                      {{"storage", "redis"}});
  // A bound on what one instance takes on (starts racing past it may pass it by their number).
  if (st->running_runs() >= st->cfg.max_running_runs)
    co_return river::error::from_code(errc::capacity_exceeded, "This instance runs as many runs as it may",
                                      {{"limit", st->cfg.max_running_runs}});
  request req;
  req.push({"SET", run->keys.lease, st->instance, "PX", detail::ms_text(st->lease), "NX"});
  auto [ec, replies] = co_await st->cmd.async_exec(req, tuple_awaitable);
  if (ec) co_return detail::unreachable_error(ec, st->cmd);
  if (replies.empty() || replies[0].is_error())
    co_return storage_error("Redis refused the run's lease: " + (replies.empty() ? std::string() : replies[0].text));
  if (replies[0].is_nil()) co_return storage_error("A run with this id already exists", {{"streamRunId", run_id}});
  st->add_run(run);
  auto ex = co_await asio::this_coro::executor;
  new_log out;
  out.reader = std::make_unique<detail::reader>(st, run->keys, entry_id{}, st->cmd.epoch(), ex);
  out.writer = std::make_shared<detail::writer>(st, std::move(run));
  co_return out;
}

asio::awaitable<result<std::unique_ptr<log_reader>>> provider::open_log(std::string storage_id, std::string run_id,
                                                                          read_from from) {
  auto st = state_;
  auto keys = run_keys::of(storage_id, run_id);
  const auto invalid = [&] {
    return river::error::from_code(errc::invalid_position, "Invalid resume position for this run",
                                   {{"position", from.position()}});
  };
  // "0" is the place before the first entry; any other position must be an entry of the run.
  const bool positioned = from.type() == read_from::kind::after && from.position() != "0";
  if (positioned && !entry_id::parse(from.position())) co_return invalid();
  request req;
  req.push({"TYPE", keys.stream});
  req.push({"EXISTS", keys.lease});
  if (positioned) req.push({"XRANGE", keys.stream, from.position(), from.position()});
  std::string tail_count;
  if (from.type() == read_from::kind::last) {
    // The last N items, and the end entry that may follow them.
    tail_count = std::to_string(from.count() + 2);
    req.push({"XREVRANGE", keys.stream, "+", "-", "COUNT", tail_count});
  }
  // The position was read in this epoch, or a later one: readers check it again after a change.
  const auto epoch = st->cmd.epoch();
  auto [ec, replies] = co_await st->cmd.async_exec(req, tuple_awaitable);
  if (ec) co_return detail::unreachable_error(ec, st->cmd);
  if (replies.size() != req.expected_replies())
    co_return storage_error("Redis answered with " + std::to_string(replies.size()) + " replies, not " +
                            std::to_string(req.expected_replies()));
  auto ex = co_await asio::this_coro::executor;
  const auto& type = replies[0].text;
  // A run that has stored nothing yet has only its lease.
  if (type == "none" && (replies[1].integer == 0 || positioned))
    co_return river::error::from_code(errc::run_not_found, "Run not found", {{"streamRunId", run_id}});
  if (type != "stream" && type != "none") {
    auto fatal = detail::fatal_event("The run's key in Redis holds a " + type + ", not a stream", {{"key", keys.stream}});
    co_return std::unique_ptr<log_reader>(std::make_unique<detail::reader>(st, keys, entry_id{}, epoch, ex, std::move(fatal)));
  }
  entry_id start{};
  if (positioned) {
    auto entries = detail::decode_range(replies[2]);
    if (!entries || entries->size() != 1 || entries->front().fields.empty() || entries->front().fields[0].first == "end")
      co_return invalid();
    start = *entry_id::parse(from.position());
  } else if (from.type() == read_from::kind::last && type == "stream") {
    auto newest = detail::decode_range(replies[2]);
    if (!newest) co_return storage_error("Redis answered XREVRANGE with an unexpected reply", {{"key", keys.stream}});
    auto& list = *newest;
    if (!list.empty() && !list.front().fields.empty() && list.front().fields[0].first == "end") list.erase(list.begin());
    // Start after the item just older than the last N; the whole run when it has no more.
    if (list.size() > from.count()) start = entry_id::parse(list[from.count()].id).value_or(entry_id{});
  }
  co_return std::unique_ptr<log_reader>(std::make_unique<detail::reader>(st, std::move(keys), start, epoch, ex));
}

run_watch provider::watch(std::string_view storage_id, std::string_view run_id) {
  return state_->watch(run_keys::of(storage_id, run_id));
}

asio::awaitable<result<bool>> provider::watched(std::string storage_id, std::string run_id) {
  auto st = state_;
  co_return co_await st->watched(run_keys::of(storage_id, run_id));
}

asio::awaitable<result<void>> provider::request_cancel(std::string storage_id, std::string run_id) {
  auto st = state_;
  auto keys = run_keys::of(storage_id, run_id);
  {
    // A run of this instance is reached directly.
    std::shared_ptr<detail::local_run> local;
    std::function<void()> hook;
    {
      std::lock_guard lk(st->mutex);
      if (auto it = st->runs.find(keys.stream); it != st->runs.end()) {
        local = it->second;
        hook = local->on_cancel;
      }
    }
    if (local && !local->closed) {
      if (hook) hook();
      co_return result<void>();
    }
  }
  // Any other: marked in Redis for its owner, which the message on the run's control channel
  // reaches at once.
  request req;
  req.push({"EVAL", detail::cancel_script, "3", keys.stream, keys.lease, keys.cancel,
            detail::ms_text(st->cfg.producer_lost_timeout * 2)});
  req.push({"SPUBLISH", keys.control, "cancel"});
  auto [ec, replies] = co_await st->cmd.async_exec(req, tuple_awaitable);
  if (ec) co_return detail::unreachable_error(ec, st->cmd);
  if (replies.empty()) co_return storage_error("Redis answered the cancel request with no reply");
  const auto& r = replies[0].text;
  if (r == detail::cancel_sent) co_return result<void>();
  if (r == detail::cancel_not_found)
    co_return river::error::from_code(errc::run_not_found, "Run not found", {{"streamRunId", run_id}});
  if (r == detail::cancel_finished)
    co_return river::error::from_code(errc::run_already_finished, "Run already finished", {{"streamRunId", run_id}});
  if (r == detail::cancel_no_owner)
    co_return storage_error(
        "The run has no owner to reach: it keeps no lease (another implementation wrote it) or its server died",
        {{"streamRunId", run_id}});
  co_return storage_error("Redis answered the cancel request with " + redis::to_string(replies[0]));
}

}  // namespace river::redis
