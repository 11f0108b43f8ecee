#pragma once

// The Lua scripts of the Redis provider and what their results mean. Each touches the keys of
// one run only (detail/keys.hpp), so it runs on one Redis Cluster slot.

#include <cstdint>
#include <string_view>

namespace river::redis::detail {

/// The end entry written when a run is closed by someone else than its owner: the largest id,
/// so that an owner that comes back cannot append after it (`XADD *` then fails).
inline constexpr std::string_view max_entry_id = "18446744073709551615-18446744073709551615";

/// Judges a run whose readers follow it elsewhere, or closes it. KEYS: stream, lease, suspect.
/// ARGV: the fatal event's JSON, retention ms, mode, the end entry's id, grace ms.
///
/// Mode "check" closes the run only on evidence that its owner is gone: its lease is missing at
/// two checks at least `grace` apart by Redis's own clock (the first check marks the run
/// suspect). A Redis that was paused or restarted expires leases its owners could not renew; the
/// owner re-acquires its lease as soon as it reaches Redis again, well within the grace, and the
/// next check clears the mark. Runs written without a lease marker (the TypeScript provider
/// keeps none) are never judged. Mode "close" closes the run in any case (its writer is gone).
inline constexpr std::string_view close_script = R"lua(
local t = redis.call('TYPE', KEYS[1])['ok']
if ARGV[3] == 'check' then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('DEL', KEYS[3])
    return 0
  end
  if t == 'none' then return 4 end
  if t ~= 'stream' then return 5 end
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #first == 0 then return 4 end
  local f = first[1][2]
  if f[3] ~= 'lease' then return 3 end
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 and last[1][2][1] == 'end' then return 2 end
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local since = redis.call('GET', KEYS[3])
  if not since then
    redis.call('SET', KEYS[3], now, 'PX', tonumber(ARGV[5]) * 4)
    return 6
  end
  if now - tonumber(since) < tonumber(ARGV[5]) then return 6 end
elseif t ~= 'none' and t ~= 'stream' then
  return 5
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 and last[1][2][1] == 'end' then return 2 end
redis.call('XADD', KEYS[1], '*', 'item', ARGV[1])
redis.call('XADD', KEYS[1], ARGV[4], 'end', 'STREAM_END')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
)lua";

/// What `close_script` did.
enum class close_result : std::int64_t {
  lease_alive = 0,       ///< "check": the owner still holds its lease
  closed = 1,            ///< the fatal error and the end entry were written now
  already_ended = 2,     ///< the log already ends with its end entry
  not_judged = 3,        ///< "check": a run without a lease marker (the TypeScript provider's)
  no_stream = 4,         ///< no such stream (expired, deleted, or nothing stored yet)
  not_a_stream = 5,      ///< the key holds a value of another type
  suspect = 6,           ///< "check": the lease is missing, not yet for the grace
};

/// Takes a run's lease again after it expired while its owner could not reach Redis, unless
/// someone closed the run meanwhile. KEYS: stream, lease. ARGV: owner, lease ms.
inline constexpr std::string_view reacquire_script = R"lua(
local owner = redis.call('GET', KEYS[2])
if owner then
  if owner == ARGV[1] then return 'held' end
  return 'taken'
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 and last[1][2][1] == 'end' then return 'closed' end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 'held'
)lua";

/// What `reacquire_script` answered.
inline constexpr std::string_view lease_held = "held";
inline constexpr std::string_view lease_taken = "taken";
inline constexpr std::string_view run_closed_elsewhere = "closed";

/// Marks a run as asked to stop, for its owner. KEYS: stream, lease, cancel flag. ARGV: the
/// flag's lifetime in ms. The caller then publishes on the run's control channel, which the
/// owner listens to; the flag is for an owner that missed the message.
inline constexpr std::string_view cancel_script = R"lua(
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'stream' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 and last[1][2][1] == 'end' then return 'finished' end
elseif redis.call('EXISTS', KEYS[2]) == 0 then
  return 'not_found'
end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'no_owner' end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
return 'sent'
)lua";

/// What `cancel_script` answered.
inline constexpr std::string_view cancel_sent = "sent";
inline constexpr std::string_view cancel_not_found = "not_found";
inline constexpr std::string_view cancel_finished = "finished";
inline constexpr std::string_view cancel_no_owner = "no_owner";

/// Marks that this instance has readers of a run, until `ttl` from now by Redis's clock (the
/// disconnect policy `cancel_when_unwatched`). KEYS: readers hash. ARGV: instance, ttl ms.
inline constexpr std::string_view presence_script = R"lua(
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
)lua";

/// Counts the instances whose mark of readers of a run has not expired, and drops the expired
/// ones. KEYS: readers hash.
inline constexpr std::string_view readers_script = R"lua(
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local marks = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #marks, 2 do
  if tonumber(marks[i + 1]) > now then n = n + 1 else redis.call('HDEL', KEYS[1], marks[i]) end
end
return n
)lua";

}  // namespace river::redis::detail
