// Readers' presence, for streams whose disconnect policy cancels unwatched runs: a run's owner
// counts its readers here directly, and those on other instances by the marks they keep in the
// run's hash `river-readers:{stream-S-R}` (one field per instance, its expiry by Redis's clock).

#include "provider_state.hpp"
#include "scripts.hpp"

namespace river::redis::detail {

run_watch provider_state::watch(const run_keys& keys) { return watchers->watch(keys.stream); }

bool provider_state::owned_here(const std::string& stream_key) const {
  std::lock_guard lk(mutex);
  return runs.contains(stream_key);
}

void provider_state::tell_presence(const std::string& stream_key, bool present) {
  // Posted, so that the request goes out after the counts' lock is released, in the order of
  // the transitions: a reader that leaves and comes back ends marked.
  asio::post(strand, [self = shared_from_this(), stream_key, present] {
    // The owner counts its own readers; only the others need a mark.
    if (self->is_closed() || self->owned_here(stream_key)) return;
    request req;
    if (present)
      req.push({"EVAL", presence_script, "1", run_keys::readers_of(stream_key), self->instance,
                ms_text(self->cfg.presence_ttl)});
    else
      req.push({"HDEL", run_keys::readers_of(stream_key), self->instance});
    // A mark that fails to go out is renewed within a third of its ttl; an unmark, expires.
    self->cmd.async_exec(req, [](error_code, response) {});
  });
}

void provider_state::renew_presence() {
  request req;
  const auto ttl = ms_text(cfg.presence_ttl);
  for (const auto& stream_key : watchers->watched()) {
    if (owned_here(stream_key)) continue;
    req.push({"EVAL", presence_script, "1", run_keys::readers_of(stream_key), instance, ttl});
  }
  if (req.expected_replies() > 0) cmd.async_exec(req, [](error_code, response) {});
}

asio::awaitable<result<bool>> provider_state::watched(const run_keys& keys) {
  if (watchers->count(keys.stream) > 0) co_return true;
  request req;
  req.push({"EVAL", readers_script, "1", keys.readers});
  auto [ec, replies] = co_await cmd.async_exec(req, tuple_awaitable);
  if (ec || replies.size() != 1 || replies[0].is_error())
    co_return storage_error("Failed to count the run's readers in Redis: " +
                            (ec ? ec.message() : replies.empty() ? std::string("no reply") : replies[0].text));
  co_return replies[0].integer > 0;
}

}  // namespace river::redis::detail
