// The writer of a run this instance owns (writer.hpp).

#include "writer.hpp"

#include "scripts.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace river::redis::detail {

writer::~writer() {
  if (run_->terminated) return;
  run_->closed = true;
  auto fatal = run_->lost ? fatal_event("Redis was unreachable for longer than the outage limit; the run was stopped")
                          : river::detail::abandoned_run_json();
  asio::co_spawn(st_->strand, provider_state::close_abandoned(st_, run_, std::move(fatal)), asio::detached);
}

asio::awaitable<result<std::string>> writer::append(std::string_view data, bool last) {
  auto& run = *run_;
  if (run.closed) co_return river::error::from_code(errc::run_closed, "The run has already ended");
  if (run.lost) co_return storage_error("The run was stopped: its lease in Redis was lost or Redis was away too long");
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
    run.closed = true;
    req_.push({"MULTI"});
    req_.push({"XADD", run.keys.stream, "*", "item", data});
    req_.push({"XADD", run.keys.stream, "*", "end", "STREAM_END"});
    req_.push({"PEXPIRE", run.keys.stream, ms_text(st_->cfg.retention)});
    req_.push({"DEL", run.keys.lease});
    req_.push({"EXEC"});
  } else if (run.first) {
    // The first entry carries the `lease` marker: readers judge a lapsed lease only for runs
    // that have one (a TypeScript producer keeps none).
    req_.push({"XADD", run.keys.stream, "*", "item", data, "lease", "1"});
  } else {
    req_.push({"XADD", run.keys.stream, "*", "item", data});
  }
  if (notice) req_.push({"SPUBLISH", run.keys.notices, "1"});
  run.first = false;
  std::string event;
  if (!spare_.empty()) {
    event = std::move(spare_.back());
    spare_.pop_back();
  }
  event.assign(data);
  struct give_back {
    std::vector<std::string>& spare;
    std::string& event;
    ~give_back() { spare.push_back(std::move(event)); }
  } keep{spare_, event};
  auto [ec, replies] = co_await st_->cmd.async_exec(req_, tuple_awaitable);
  if (notice) {
    run.notice_in_flight = false;
    if (std::exchange(run.notice_owed, false) && !run.closed) {
      req_.clear();
      req_.push({"SPUBLISH", run.keys.notices, "1"});
      st_->cmd.async_exec(req_, [](error_code, response) {});
    }
  }
  if (last) st_->remove_run(run_);
  if (ec) co_return failed(ec);
  const value* id = nullptr;
  if (last) {
    if (replies.size() >= 6 && replies[5].is_array() && replies[5].elements.size() == 4)
      id = &replies[5].elements[0];
    else if (replies.size() >= 6 && replies[1].is_error())
      id = &replies[1];
  } else if (!replies.empty()) {
    id = &replies[0];
  }
  if (!id || id->is_error() || !id->is_text()) {
    // Readers closed the run ("producer lost") after this instance lost its lease.
    run.lost = true;
    co_return storage_error("Redis refused the event: " + (id ? redis::to_string(*id) : std::string("no reply")),
                            {{"key", run.keys.stream}});
  }
  run.failing_since = 0;
  st_->appends.fetch_add(1, std::memory_order_relaxed);
  // Readers of this instance get the event now, as Redis holds it.
  if (auto parsed = entry_id::parse(id->text)) {
    const auto window = std::max<std::size_t>(1, st_->cfg.feed_window);
    std::lock_guard lk(run.feed->log.mutex);
    entry_meaning m;
    m.type = entry_meaning::kind::item;
    m.data = event;
    run.feed->add_locked(*parsed, id->text, m, window);
    if (last && replies[5].is_array() && replies[5].elements.size() == 4) {
      entry_meaning end;
      end.type = entry_meaning::kind::end;
      const auto& end_id = replies[5].elements[1].text;
      if (auto e = entry_id::parse(end_id)) run.feed->add_locked(*e, end_id, end, window);
    }
  }
  if (last) run.terminated = true;
  co_return id->text;
}

river::error writer::failed(error_code ec) {
  st_->note_failure(*run_);
  auto text = st_->cmd.last_error();
  return storage_error("Failed to store the event in Redis: " + ec.message() + (text.empty() ? "" : " (" + text + ")"),
                       {{"key", run_->keys.stream}});
}

}  // namespace river::redis::detail
