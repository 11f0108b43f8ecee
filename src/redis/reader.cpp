// A reader of a run in Redis (reader.hpp).

#include "reader.hpp"
#include "range_after.hpp"

#include <river/detail/record_frame.hpp>

#include <boost/asio/this_coro.hpp>

namespace river::redis::detail {

reader::reader(std::shared_ptr<provider_state> st, run_keys keys, entry_id from, std::uint64_t from_epoch,
               const executor& ex, std::optional<std::string> fatal)
    : st_(std::move(st)),
      keys_(std::move(keys)),
      pos_(from),
      epoch_(from_epoch),
      sleeper_(ex),
      fatal_(std::move(fatal)) {
  // A run of this instance: its feed holds every acknowledged entry after `covered_from`, so a
  // reader from there on needs no XRANGE first (the POST's own reader, at the start).
  if (!fatal_) feed_ = st_->follow_own(keys_);
}

reader::~reader() {
  if (!feed_) return;
  {
    std::lock_guard lk(feed_->log.mutex);
    feed_->log.forget_locked(sleeper_);
  }
  st_->unfollow(feed_);
}

void reader::emit_fatal(std::vector<record_view>& out) {
  const auto position = pos_.to_string();
  owned_.resize(river::detail::frame_size(fatal_->size(), position.size()));
  out.push_back(river::detail::write_frame(owned_.data(), position, *fatal_));
  fatal_.reset();
  ended_ = true;
}

reader::step reader::from_feed(std::vector<record_view>& out, std::size_t max, bool sleep) {
  auto& f = *feed_;
  std::lock_guard lk(f.log.mutex);
  // The feed holds every entry after `covered_from`: a reader further behind replays.
  if (pos_ < f.covered_from) return step::replay;
  const auto from = f.after_locked(pos_);
  const auto end = f.log.end_locked();
  if (from < end) {
    const auto n = std::min(max, end - from);
    f.log.read_locked(from, n, out, &pins_);
    pos_ = f.ids[from + n - 1 - f.log.begin_locked()];
    // The run's last records: the end entry followed them, so the next read is the end (a fatal
    // error, which the next read would give first, never is).
    if (from + n == end && f.ended && !f.fatal) ended_ = true;
    return step::records;
  }
  if (f.fatal) {
    fatal_ = *f.fatal;
    return step::again;
  }
  if (f.ended) {
    ended_ = true;
    return step::again;
  }
  if (sleep) f.log.sleep_locked(sleeper_);
  return step::wait;
}

asio::awaitable<result<bool>> reader::replay(std::vector<record_view>& out, std::size_t max) {
  req_.clear();
  const range_after range(st_->cmd, pos_, epoch_);
  range.push(req_, keys_.stream, max);
  auto [ec, replies] = co_await st_->cmd.async_exec(req_, tuple_awaitable);
  if (ec || replies.size() != 1) {
    if (st_->is_closed()) co_return storage_error("The Redis provider was closed");
    co_return false;  // Redis is away: the caller tries again from the same position
  }
  const auto& reply = replies[0];
  if (!reply.is_array()) {
    fatal_ = reply.is_error() && reply.text.starts_with("WRONGTYPE")
                 ? fatal_event("The run's key in Redis is not a stream", {{"key", keys_.stream}})
                 : fatal_event("Redis answered XRANGE with an unexpected reply",
                               {{"key", keys_.stream}, {"reply", redis::to_string(reply)}});
    co_return false;
  }
  switch (range.judge(st_->cmd, reply)) {
    case range_after::outcome::stale: co_return false;  // the caller reads again
    case range_after::outcome::lost: fatal_ = range.lost_event(keys_.stream); co_return false;
    case range_after::outcome::entries: epoch_ = range.epoch(); break;
  }
  // Each entry checked once and framed into this reader's own buffer, sized first so that the
  // views handed out stay put.
  struct taken {
    entry_id id;
    std::string_view id_text;
    entry_meaning meaning;
  };
  std::vector<taken> entries;
  entries.reserve(reply.elements.size());
  std::size_t bytes = 0;
  for (const auto& e : reply.elements) {
    taken t;
    if (!decode_range_entry(e, t.id, t.id_text, t.meaning, keys_.stream)) {
      fatal_ = fatal_event("Redis answered XRANGE with an unexpected reply", {{"key", keys_.stream}});
      break;
    }
    if (t.id <= pos_) continue;
    if (t.meaning.type == entry_meaning::kind::end) {
      entries.push_back(std::move(t));
      break;
    }
    const auto data = t.meaning.type == entry_meaning::kind::item ? t.meaning.data : std::string_view(t.meaning.bad_event);
    bytes += river::detail::frame_size(data.size(), t.id_text.size());
    entries.push_back(std::move(t));
  }
  owned_.resize(bytes);
  std::size_t at = 0;
  bool added = false;
  for (auto& t : entries) {
    pos_ = t.id;
    if (t.meaning.type == entry_meaning::kind::end) {
      ended_ = true;
      break;
    }
    const auto data = t.meaning.type == entry_meaning::kind::item ? t.meaning.data : std::string_view(t.meaning.bad_event);
    out.push_back(river::detail::write_frame(owned_.data() + at, t.id_text, data));
    at += river::detail::frame_size(data.size(), t.id_text.size());
    added = true;
  }
  // Caught up with Redis: from now on the feed brings what follows.
  const auto fresh = reply.elements.size() - range.skipped();
  if (fresh < max && !ended_ && !fatal_ && !feed_) feed_ = st_->follow(keys_, pos_, epoch_);
  co_return added;
}

asio::awaitable<result<read_status>> reader::read(std::vector<record_view>& out, std::size_t max,
                                                  clock_type::time_point deadline) {
  pins_.clear();
  owned_.clear();
  max = std::max<std::size_t>(max, 1);
  for (;;) {
    if (fatal_) {
      emit_fatal(out);
      co_return read_status::records;
    }
    if (ended_) co_return read_status::end;
    if (feed_) {
      const auto s = from_feed(out, max, true);
      if (s == step::records) co_return read_status::records;
      if (s == step::again) continue;
      if (s == step::wait) {
        if (clock_type::now() >= deadline) co_return read_status::idle;
        auto [ec] = co_await sleeper_.wake.wait(deadline);
        if (river::detail::wakeup::cancelled(ec, co_await asio::this_coro::cancellation_state))
          co_return river::error::from_code(asio::error::operation_aborted, "read cancelled");
        continue;
      }
    }
    auto replayed = co_await replay(out, max);
    if (!replayed) co_return replayed.error();
    if (*replayed) co_return read_status::records;
    if (fatal_ || ended_ || feed_) continue;
    if (clock_type::now() >= deadline) co_return read_status::idle;
    // Redis is away: try again from the same position once the connection is back.
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
    co_await t.async_wait(tuple_awaitable);
  }
}

read_status reader::poll(std::vector<record_view>& out, std::size_t max) {
  pins_.clear();
  owned_.clear();
  max = std::max<std::size_t>(max, 1);
  for (;;) {
    if (fatal_) {
      emit_fatal(out);
      return read_status::records;
    }
    if (ended_) return read_status::end;
    if (!feed_) return read_status::idle;
    const auto s = from_feed(out, max, false);
    if (s == step::records) return read_status::records;
    if (s != step::again) return read_status::idle;
  }
}

}  // namespace river::redis::detail
