#pragma once

// Sans-I/O: a request's RESP bytes read back as commands, and grouped into the units a Redis
// Cluster client routes. A unit is one command, or a whole `MULTI` ... `EXEC` block (its commands
// must reach one node together). Each unit has the slot of its key (`hash_slot`), or none.
//
// Which argument is the key: the second for most commands; `EVAL`, `EVALSHA`, `FCALL` and their
// `_RO` forms name their keys after a count (the first key routes); `XREAD` and `XREADGROUP`
// after `STREAMS`; commands that touch no key (`PING`, `CLIENT`, `CLUSTER`, `INFO`, `WAIT`,
// `PUBLISH`...) have none. Sharded pub/sub routes by channel, as Redis Cluster does.

#include <river/redis/request.hpp>

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace river::redis::detail {

/// One command as encoded in a request's payload.
struct command_view {
  std::string_view bytes;  ///< its whole RESP encoding
  boost::container::small_vector<std::string_view, 6> args;
};

/// Reads the command at `pos` of `payload` and moves `pos` past it. False at the end, or for bytes
/// that are not a RESP array of bulk strings (what `request::push` writes).
bool next_command(std::string_view payload, std::size_t& pos, command_view& out);

/// The key that routes `cmd` in a cluster, if it has one.
std::optional<std::string_view> routing_key(const command_view& cmd);

/// The replies the server sends for a command named `name` with `argc` arguments, its name
/// included: one per channel for the pub/sub commands, else one.
std::size_t replies_for(std::string_view name, std::size_t argc) noexcept;

/// Whether `name` is `expected`, ignoring ASCII case.
bool command_is(std::string_view name, std::string_view expected) noexcept;

/// A run of a request's commands that goes to one node as a whole.
struct command_unit {
  std::size_t offset = 0;       ///< where its bytes start in the payload
  std::size_t size = 0;         ///< how many bytes
  std::size_t commands = 0;
  std::size_t replies = 0;
  std::size_t first_reply = 0;  ///< index of its first reply among the request's
  int slot = -1;                ///< the slot of its first key; -1: it has none
};

/// Splits `payload` into units. False for bytes that are not commands, or a `MULTI` without its
/// `EXEC`.
bool split_units(std::string_view payload, std::vector<command_unit>& out);

}  // namespace river::redis::detail
