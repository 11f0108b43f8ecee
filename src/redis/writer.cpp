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

}  // namespace

writer::~writer() {
  if (run_->terminated) return;
  run_->closed = true;
  auto fatal = run_->cause == stop_cause::outage
                   ? fatal_event("Redis was unreachable for longer than the outage limit; the run was stopped",
                                 {{"storage", "redis"}})
                   : river::detail::abandoned_run_json();
  asio::co_spawn(st_->strand, provider_state::close_abandoned(st_, run_, std::move(fatal)), asio::detached);
}

river::error writer::stopped_error() const {
  switch (run_->cause.load()) {
    case stop_cause::outage:
      return storage_error("The run was stopped: Redis was unreachable for longer than the outage limit",
                           {{"key", run_->keys.stream}});
    case stop_cause::foreign:
      return storage_error("The run was stopped: its key in Redis holds a value of another type", {{"key", run_->keys.stream}});
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

asio::awaitable<void> writer::take_turn() {
  if (!busy_) {
    busy_ = true;
    co_return;
  }
  auto turn = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, clock_type::time_point::max());
  waiting_.push_back(turn);
  (void)co_await turn->async_wait(tuple_awaitable);  // cancelled: our turn
}

void writer::pass_turn() {
  if (waiting_.empty()) {
    busy_ = false;
    return;
  }
  waiting_.front()->cancel();
  waiting_.pop_front();
}

asio::awaitable<result<response>> writer::send() {
  const auto give_up = clock_type::now() + st_->cfg.outage_limit;
  for (;;) {
    auto [ec, replies] = co_await st_->cmd.async_exec(req_, tuple_awaitable);
    if (!ec) {
      run_->failing_since = 0;
      co_return std::move(replies);
    }
    st_->note_failure(*run_);
    // Lost under way (it may have run) or never sent: the same command again, same ids. The
    // connection holds it until it is back, at most the outage limit.
    if (ec == error::closed || clock_type::now() >= give_up || run_->lost) co_return failed(ec);
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
    // The last entry is ours, or, for the last record, the end entry that followed it (whose id
    // is the next one, or a later millisecond's when the clock moved on between the two).
    auto last = entry_id::parse(entries->front().id);
    if (!last) co_return false;
    if (!end_id) co_return *last == id;
    co_return *last == *end_id && !entries->front().fields.empty() && entries->front().fields[0].first == "end";
  }
}

asio::awaitable<result<std::string>> writer::append(std::string_view data, bool last) {
  auto& run = *run_;
  if (run.closed) co_return river::error::from_code(errc::run_closed, "The run has already ended");
  if (run.lost) co_return stopped_error();
  if (last) run.closed = true;
  // The caller's buffer is valid until the first suspension: keep the event.
  std::string event;
  if (!spare_.empty()) {
    event = std::move(spare_.back());
    spare_.pop_back();
  }
  event.assign(data);
  // Once called, an append is stored or fails as a whole. A cancelled run's runner is cancelled
  // in whatever it awaits, this append included: were that to stop it between Redis storing the
  // entry (or a retry of it) and this instance's readers getting it, they would miss an event
  // Redis holds. The storing runs as its own operation, which that cancellation does not reach.
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::co_spawn(ex, store(std::move(event), last),
                                    asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
}

asio::awaitable<result<std::string>> writer::store(std::string event, bool last) {
  auto& run = *run_;
  struct give_back {
    std::vector<std::string>& spare;
    std::string& event;
    ~give_back() { spare.push_back(std::move(event)); }
  } keep{spare_, event};

  co_await take_turn();
  struct turn_guard {
    writer& w;
    ~turn_guard() { w.pass_turn(); }
  } turn{*this};
  if (run.lost) co_return stopped_error();

  const auto id = next_id();
  const auto id_text = id.to_string();
  const auto end_id = last ? next_id() : entry_id{};
  const auto end_text = last ? end_id.to_string() : std::string();
  req_.clear();
  // Readers elsewhere learn of the append from a notice, once another instance follows the run
  // (and always of the last one). It travels with this append unless one is already on its way;
  // then it is owed, and goes out when that one is acknowledged, after every append before it.
  const bool followed = last || run.followed.load(std::memory_order_relaxed);
  const bool notice = followed && !run.notice_in_flight;
  if (notice)
    run.notice_in_flight = true;
  else if (followed)
    run.notice_owed = true;
  if (last) {
    req_.push({"MULTI"});
    req_.push({"XADD", run.keys.stream, id_text, "item", event});
    req_.push({"XADD", run.keys.stream, end_text, "end", "STREAM_END"});
    req_.push({"PEXPIRE", run.keys.stream, ms_text(st_->cfg.retention)});
    req_.push({"DEL", run.keys.lease});
    req_.push({"EXEC"});
  } else if (run.first) {
    // The first entry carries the `lease` marker: readers judge a lapsed lease only for runs
    // that have one (a TypeScript producer keeps none).
    req_.push({"XADD", run.keys.stream, id_text, "item", event, "lease", "1"});
  } else {
    req_.push({"XADD", run.keys.stream, id_text, "item", event});
  }
  if (notice) req_.push({"SPUBLISH", run.keys.notices, "1"});
  run.first = false;
  auto sent = co_await send();
  if (notice) {
    run.notice_in_flight = false;
    if (std::exchange(run.notice_owed, false) && !run.closed) {
      request owed;
      owed.push({"SPUBLISH", run.keys.notices, "1"});
      st_->cmd.async_exec(owed, [](error_code, response) {});
    }
  }
  if (last) st_->remove_run(run_);
  if (!sent) co_return std::move(sent).error();
  const auto& replies = *sent;
  const value* answer = nullptr;
  if (last) {
    if (replies.size() >= 6 && replies[5].is_array() && replies[5].elements.size() == 4) answer = &replies[5].elements[0];
  } else if (!replies.empty()) {
    answer = &replies[0];
  }
  if (!answer || !answer->is_text()) {
    // Refused: stored by an attempt whose reply was lost, or the run was closed elsewhere
    // ("producer lost": its end entry has the largest id).
    const auto ours = last ? std::optional<entry_id>(end_id) : std::nullopt;
    const bool stored_before = answer && id_refused(*answer) && co_await stored_already(id, ours);
    if (stored_before) {
      // Stored before: the same entry, as Redis holds it.
    } else {
      run.lost = true;
      if (run.cause == stop_cause::none) run.cause = stop_cause::lease_lost;
      co_return storage_error("Redis refused the event: " + (answer ? redis::to_string(*answer) : std::string("no reply")),
                              {{"key", run.keys.stream}});
    }
  }
  st_->appends.fetch_add(1, std::memory_order_relaxed);
  // Readers of this instance get the event now, as Redis holds it.
  {
    const auto window = std::max<std::size_t>(1, st_->cfg.feed_window);
    std::lock_guard lk(run.feed->log.mutex);
    entry_meaning m;
    m.type = entry_meaning::kind::item;
    m.data = event;
    run.feed->add_locked(id, id_text, m, window);
    if (last) {
      entry_meaning end;
      end.type = entry_meaning::kind::end;
      run.feed->add_locked(end_id, end_text, end, window);
    }
  }
  if (last) run.terminated = true;
  co_return id_text;
}

river::error writer::failed(error_code ec) {
  auto text = st_->cmd.last_error();
  return storage_error("Failed to store the event in Redis: " + ec.message() + (text.empty() ? "" : " (" + text + ")"),
                       {{"key", run_->keys.stream}});
}

}  // namespace river::redis::detail
