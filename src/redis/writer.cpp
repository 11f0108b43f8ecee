// The writer of a run this instance owns (writer.hpp).

#include "writer.hpp"

#include "scripts.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

namespace river::redis::detail {

namespace {

// Redis's refusal of an XADD id at or before the stream's last entry.
bool id_refused(const value& v) { return v.is_error() && v.text.find("equal or smaller") != std::string::npos; }

// Whether a `WAIT` reply says that `n` replicas hold what came before it (0 asks for none).
bool replicated(const value* wait_reply, std::size_t n) {
  return n == 0 || (wait_reply && wait_reply->type == value::kind::integer && wait_reply->integer >= static_cast<std::int64_t>(n));
}

// What the writer says when it finds a hole: the run is stopped there.
std::string run_history_lost_text() { return std::string(history_lost_text) + "; the run was stopped"; }
constexpr std::string_view unreplicated_text =
    "Redis replicas did not acknowledge the run's events within the outage limit (wait_replicas); the run was stopped";

}  // namespace

writer::~writer() {
  if (run_->terminated) return;
  run_->closed = true;
  std::string fatal;
  switch (run_->cause.load()) {
    case stop_cause::outage:
      fatal = fatal_event("Redis was unreachable for longer than the outage limit; the run was stopped", {{"storage", "redis"}});
      break;
    case stop_cause::history_lost: fatal = fatal_event(run_history_lost_text(), {{"storage", "redis"}}); break;
    case stop_cause::unreplicated: fatal = fatal_event(std::string(unreplicated_text), {{"storage", "redis"}}); break;
    default: fatal = river::detail::abandoned_run_json();
  }
  asio::co_spawn(st_->strand, provider_state::close_abandoned(st_, run_, std::move(fatal)), asio::detached);
}

river::error writer::stopped_error() const {
  switch (run_->cause.load()) {
    case stop_cause::outage:
      return storage_error("The run was stopped: Redis was unreachable for longer than the outage limit",
                           {{"key", run_->keys.stream}});
    case stop_cause::foreign:
      return storage_error("The run was stopped: its key in Redis holds a value of another type", {{"key", run_->keys.stream}});
    case stop_cause::history_lost: return storage_error(run_history_lost_text(), {{"key", run_->keys.stream}});
    case stop_cause::unreplicated: return storage_error(std::string(unreplicated_text), {{"key", run_->keys.stream}});
    default:
      return storage_error("The run was stopped: its lease lapsed and another instance closed it (producer lost)",
                           {{"key", run_->keys.stream}});
  }
}

entry_id writer::next_id() {
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  last_id_ = ms > last_id_.ms ? entry_id{ms, 0} : entry_id{last_id_.ms, last_id_.seq + 1};
  return last_id_;
}

bool writer::window_full() const {
  // A window of 0 holds every append until Redis has stored it (and everything before it).
  const auto count = queue_.size() + batch_.size();
  return count > st_->cfg.write_window || pending_bytes_ > st_->cfg.write_window_bytes;
}

asio::awaitable<void> writer::wait_for_batch() {
  if (!batch_done_) batch_done_.emplace(co_await asio::this_coro::executor, clock_type::time_point::max());
  // Out of reach of the caller's cancellation: the batch ends within the outage limit.
  (void)co_await batch_done_->async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), tuple_awaitable));
}

asio::awaitable<result<std::string>> writer::append(std::string_view data, bool last) {
  auto& run = *run_;
  if (run.closed) co_return river::error::from_code(errc::run_closed, "The run has already ended");
  if (run.lost) co_return stopped_error();
  if (failure_ && !last) co_return *failure_;
  if (last) run.closed = true;

  // The caller's buffer is valid until the first suspension: the event is framed for this
  // instance's readers now, while its bytes are at hand, and sent to Redis from that frame.
  pending p;
  p.id = next_id();
  p.id_text = entry_id_text(p.id);
  {
    std::lock_guard lk(run.feed->log.mutex);
    p.event = run.feed->log.stage_locked(p.id_text.view(), data).data;
  }
  auto position = std::string(p.id_text.view());
  pending_bytes_ += p.event.size();
  queue_.push_back(std::move(p));
  if (last) {
    last_queued_ = true;
    end_id_ = next_id();
  }
  if (!draining_) {
    draining_ = true;
    asio::co_spawn(co_await asio::this_coro::executor, drain(shared_from_this()), asio::detached);
  }

  if (last) {
    while (!last_outcome_) co_await wait_for_batch();
    if (!*last_outcome_) co_return last_outcome_->error();
    co_return position;
  }
  while (window_full() && !failure_) co_await wait_for_batch();
  // Failed meanwhile: this append was dropped with the rest of the queue, or was in the batch.
  if (failure_) co_return *failure_;
  co_return position;
}

asio::awaitable<void> writer::drain(std::shared_ptr<writer> self) {
  auto& w = *self;
  while (!w.queue_.empty()) {
    std::swap(w.batch_, w.queue_);
    w.last_in_batch_ = w.last_queued_;
    auto failure = co_await w.store_batch();
    if (failure) {
      w.failure_ = failure;
      // What was queued meanwhile was never sent: it fails with the batch, and readers never
      // see any of it.
      for (auto& p : w.queue_) w.batch_.push_back(std::move(p));
      w.queue_.clear();
      w.last_in_batch_ = w.last_queued_;
      std::lock_guard lk(w.run_->feed->log.mutex);
      w.run_->feed->log.unstage_locked();
    } else {
      w.feed_batch();
    }
    if (w.last_in_batch_) {
      w.st_->remove_run(w.run_);
      w.last_outcome_ = failure ? result<void>(*failure) : result<void>{};
    }
    for (auto& p : w.batch_) w.pending_bytes_ -= p.event.size();
    w.batch_.clear();
    if (w.batch_done_) w.batch_done_->cancel();
  }
  w.draining_ = false;
}

void writer::encode_batch(bool with_notice) {
  auto& run = *run_;
  req_.clear();
  const auto items = last_in_batch_ ? batch_.size() - 1 : batch_.size();
  for (std::size_t i = 0; i < items; ++i) {
    const auto& p = batch_[i];
    if (run.first) {
      // The first entry carries the `lease` marker: readers judge a lapsed lease only for runs
      // that have one (a TypeScript producer keeps none).
      req_.push({"XADD", run.keys.stream, p.id_text.view(), "item", p.event, "lease", "1"});
      run.first = false;
    } else {
      req_.push({"XADD", run.keys.stream, p.id_text.view(), "item", p.event});
    }
  }
  if (last_in_batch_) {
    const auto& p = batch_.back();
    const entry_id_text end_text(end_id_);
    req_.push({"MULTI"});
    req_.push({"XADD", run.keys.stream, p.id_text.view(), "item", p.event});
    req_.push({"XADD", run.keys.stream, end_text.view(), "end", "STREAM_END"});
    req_.push({"PEXPIRE", run.keys.stream, ms_text(st_->cfg.retention)});
    req_.push({"DEL", run.keys.lease});
    req_.push({"EXEC"});
  }
  if (st_->cfg.wait_replicas > 0) {
    // After the batch, on its connection (a cluster sends a command without a key with the one
    // before it): replies come once the replicas hold the batch.
    req_.push({"WAIT", std::to_string(st_->cfg.wait_replicas), ms_text(st_->cfg.wait_replicas_timeout)});
  }
  // Readers elsewhere learn of the batch from a notice, once another instance follows the run
  // (and always of the last one). One batch is in flight at a time, so is one notice.
  notice_inline_ = with_notice && wants_notice();
  if (notice_inline_) req_.push({"SPUBLISH", run.keys.notices, "1"});
}

bool writer::wants_notice() const { return last_in_batch_ || run_->followed.load(std::memory_order_relaxed); }

void writer::publish_notice() {
  request req;
  req.push({"SPUBLISH", run_->keys.notices, "1"});
  st_->cmd.async_exec(req, [](error_code, response) {});
}

asio::awaitable<std::optional<river::error>> writer::store_batch() {
  auto& run = *run_;
  if (run.lost) co_return stopped_error();
  if (st_->cmd.epoch() != epoch_) {
    if (auto lost = co_await check_history()) co_return lost;
  }
  // While some server is away (a failover may be under way), the notice waits until the batch
  // is known to follow the history it had: readers elsewhere must not read past a hole.
  encode_batch(st_->cmd.connected());
  auto sent = co_await until_answered(req_);
  if (!sent) co_return std::move(sent).error();
  const auto& replies = *sent;

  // Each XADD's reply: its id, or a refusal. The final one (the end entry's, for the last
  // record) decides whether the batch is stored; ids refused before it were stored by an
  // earlier attempt of this batch, as ids only grow.
  const auto items = last_in_batch_ ? batch_.size() - 1 : batch_.size();
  auto& answers = answers_;
  answers.clear();
  for (std::size_t i = 0; i < items && i < replies.size(); ++i) answers.push_back(&replies[i]);
  if (last_in_batch_) {
    const auto exec = items + 5;
    if (replies.size() > exec && replies[exec].is_array() && replies[exec].elements.size() == 4) {
      answers.push_back(&replies[exec].elements[0]);
      answers.push_back(&replies[exec].elements[1]);
    }
  }
  const auto expected = last_in_batch_ ? items + 2 : items;
  const value* refusal = nullptr;
  for (auto* a : answers) {
    if (!a->is_text() && !id_refused(*a)) refusal = a;
  }
  const bool shaped = answers.size() == expected && !refusal;
  const auto wait_at = last_in_batch_ ? items + 6 : items;
  const value* wait_reply = st_->cfg.wait_replicas > 0 && replies.size() > wait_at ? &replies[wait_at] : nullptr;
  if (shaped && answers.back()->is_text()) {
    if (settled_at_once(wait_reply)) co_return std::nullopt;
    co_return co_await settle_batch(wait_reply);
  }
  if (shaped) {
    // The final id refused: stored by an earlier attempt whose reply was lost, or the run was
    // closed elsewhere ("producer lost": its end entry has the largest id).
    const auto ours = last_in_batch_ ? std::optional<entry_id>(end_id_) : std::nullopt;
    if (co_await stored_already(batch_.back().id, ours)) co_return co_await settle_batch(nullptr);
    refusal = answers.back();
  }
  run.lost = true;
  if (run.cause == stop_cause::none) run.cause = stop_cause::lease_lost;
  co_return storage_error("Redis refused the event: " + (refusal ? redis::to_string(*refusal) : std::string("no reply")),
                          {{"key", run.keys.stream}});
}

bool writer::settled_at_once(const value* wait_reply) {
  if (!replicated(wait_reply, st_->cfg.wait_replicas) || st_->cmd.epoch() != epoch_) return false;
  settled();
  return true;
}

void writer::settled() {
  checkpoint_ = last_in_batch_ ? end_id_ : batch_.back().id;
  if (!notice_inline_ && wants_notice()) publish_notice();
}

asio::awaitable<std::optional<river::error>> writer::settle_batch(const value* wait_reply) {
  if (!replicated(wait_reply, st_->cfg.wait_replicas)) {
    if (auto e = co_await replicate()) co_return e;
  }
  // Stored on a server reached in another epoch than the entries before: those must be there.
  if (auto lost = co_await check_history()) {
    if (run_->cause == stop_cause::history_lost) {
      // The batch went in after the hole: no reader saw it, and no resume should.
      request drop;
      std::vector<std::string_view> args = {"XDEL", run_->keys.stream};
      for (const auto& p : batch_) args.push_back(p.id_text.view());
      const entry_id_text end_text(end_id_);
      if (last_in_batch_) args.push_back(end_text.view());  // the log is closed with the fatal error instead
      drop.push(args);
      (void)co_await st_->cmd.async_exec(drop, tuple_awaitable);
    }
    co_return lost;
  }
  settled();
  co_return std::nullopt;
}

asio::awaitable<std::optional<river::error>> writer::check_history() {
  const auto now_epoch = st_->cmd.epoch();
  if (now_epoch == epoch_) co_return std::nullopt;
  if (!checkpoint_) {
    epoch_ = now_epoch;
    co_return std::nullopt;
  }
  // Replication keeps order: when the last entry stored before is there, so is every one before.
  const entry_id_text id(*checkpoint_);
  request req;
  req.push({"XRANGE", run_->keys.stream, id.view(), id.view()});
  auto answered = co_await until_answered(req);
  if (!answered) co_return std::move(answered).error();
  const auto& replies = *answered;
  if (replies.size() != 1 || !replies[0].is_array())
    co_return storage_error("Redis refused to read the run's log: " + (replies.empty() ? std::string("no reply") : redis::to_string(replies[0])),
                            {{"key", run_->keys.stream}});
  if (!range_starts_at(replies[0], *checkpoint_)) co_return stop(stop_cause::history_lost, run_history_lost_text());
  epoch_ = now_epoch;
  co_return std::nullopt;
}

asio::awaitable<std::optional<river::error>> writer::replicate() {
  const auto n = st_->cfg.wait_replicas;
  request req;
  // The key routes the WAIT to the run's master on a cluster.
  req.push({"EXISTS", run_->keys.stream});
  req.push({"WAIT", std::to_string(n), ms_text(st_->cfg.wait_replicas_timeout)});
  // Replicas that do not answer within a WAIT are asked again, as Redis away is, until the limit.
  const auto give_up = clock_type::now() + st_->cfg.outage_limit;
  for (;;) {
    auto answered = co_await until_answered(req);
    if (!answered) co_return std::move(answered).error();
    if (answered->size() == 2 && replicated(&(*answered)[1], n)) co_return std::nullopt;
    st_->note_failure(*run_);
    if (clock_type::now() >= give_up || run_->lost) co_return stop(stop_cause::unreplicated, std::string(unreplicated_text));
  }
}

river::error writer::stop(stop_cause cause, std::string message) {
  st_->lose(*run_, cause);  // the runner is cancelled
  return storage_error(std::move(message), {{"key", run_->keys.stream}});
}

void writer::feed_batch() {
  // Readers of this instance that share the writer's thread write the batch before the writer
  // goes on (wakeup::inline_scope), rather than behind every reply that came with its own.
  river::detail::wakeup::inline_scope resume_readers;
  auto& run = *run_;
  st_->appends.fetch_add(batch_.size(), std::memory_order_relaxed);
  // Readers of this instance get the events now, as Redis holds them.
  const auto window = std::max<std::size_t>(1, st_->cfg.feed_window);
  {
    std::lock_guard lk(run.feed->log.mutex);
    run.feed->publish_locked(batch_, [](const pending& p) { return p.id; }, window);
    if (last_in_batch_) {
      entry_meaning end;
      end.type = entry_meaning::kind::end;
      run.feed->add_locked(end_id_, entry_id_text(end_id_).view(), end, window);
    }
  }
  if (last_in_batch_) run.terminated = true;
}

asio::awaitable<result<response>> writer::until_answered(const request& req) {
  const auto give_up = clock_type::now() + st_->cfg.outage_limit;
  for (;;) {
    // `req` is the writer's (or the caller's frame's) and unchanged until answered: no copy.
    auto [ec, replies] = co_await st_->cmd.async_exec_in_place(req, tuple_awaitable);
    if (!ec) {
      run_->failing_since = 0;
      co_return std::move(replies);
    }
    st_->note_failure(*run_);
    // Lost under way (it may have run) or never sent: the same commands again (a batch, with the
    // same ids). The connection holds them until it is back, at most the outage limit. A batch's
    // notice goes once the batch is settled (the server that takes it may lack the history before it).
    if (ec == error::closed || clock_type::now() >= give_up || run_->lost) co_return failed(ec);
    if (&req == &req_ && notice_inline_) encode_batch(false);
  }
}

asio::awaitable<bool> writer::stored_already(const entry_id& id, const std::optional<entry_id>& end_id) {
  request check;
  check.push({"XREVRANGE", run_->keys.stream, "+", "-", "COUNT", "1"});
  for (;;) {
    auto [ec, replies] = co_await st_->cmd.async_exec(check, tuple_awaitable);
    if (ec) {
      if (ec == error::closed) co_return false;
      continue;
    }
    auto entries = decode_range(replies.at(0));
    if (!entries || entries->empty()) co_return false;
    // The last entry is ours, or, for the last record, the end entry that followed it.
    auto last = entry_id::parse(entries->front().id);
    if (!last) co_return false;
    if (!end_id) co_return *last == id;
    co_return *last == *end_id && !entries->front().fields.empty() && entries->front().fields[0].first == "end";
  }
}

river::error writer::failed(error_code ec) {
  auto text = st_->cmd.last_error();
  return storage_error("Failed to store the event in Redis: " + ec.message() + (text.empty() ? "" : " (" + text + ")"),
                       {{"key", run_->keys.stream}});
}

}  // namespace river::redis::detail
