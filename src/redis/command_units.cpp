// A request's RESP read back as commands and grouped into routable units (detail/command_units.hpp).

#include <river/redis/detail/command_units.hpp>
#include <river/redis/detail/hash_slot.hpp>

#include <charconv>

namespace river::redis::detail {

namespace {

// Reads `PREFIX digits \r\n` at `pos`.
bool read_length(std::string_view in, std::size_t& pos, char prefix, std::size_t& n) {
  if (pos >= in.size() || in[pos] != prefix) return false;
  const auto end = in.find("\r\n", pos + 1);
  if (end == std::string_view::npos) return false;
  auto [p, ec] = std::from_chars(in.data() + pos + 1, in.data() + end, n);
  if (ec != std::errc() || p != in.data() + end) return false;
  pos = end + 2;
  return true;
}

std::size_t first_key_after_count(const command_view& cmd) {
  // `EVAL script numkeys key...`: the key follows the count, when the count is not 0.
  std::size_t n = 0;
  if (cmd.args.size() < 4) return 0;
  auto [p, ec] = std::from_chars(cmd.args[2].data(), cmd.args[2].data() + cmd.args[2].size(), n);
  return ec == std::errc() && n > 0 ? 3 : 0;
}

}  // namespace

bool command_is(std::string_view name, std::string_view expected) noexcept {
  if (name.size() != expected.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != expected[i]) return false;
  }
  return true;
}

bool next_command(std::string_view payload, std::size_t& pos, command_view& out) {
  const auto start = pos;
  std::size_t argc = 0;
  if (!read_length(payload, pos, '*', argc) || argc == 0) return false;
  out.args.clear();
  for (std::size_t i = 0; i < argc; ++i) {
    std::size_t len = 0;
    if (!read_length(payload, pos, '$', len) || payload.size() - pos < len + 2) return false;
    out.args.push_back(payload.substr(pos, len));
    pos += len + 2;
  }
  out.bytes = payload.substr(start, pos - start);
  return true;
}

std::optional<std::string_view> routing_key(const command_view& cmd) {
  const auto name = cmd.args[0];
  for (std::string_view keyless : {"PING", "ECHO", "MULTI", "EXEC", "DISCARD", "ASKING", "READONLY", "READWRITE",
                                   "CLIENT", "CLUSTER", "INFO", "CONFIG", "COMMAND", "AUTH", "HELLO", "SELECT",
                                   "WAIT", "TIME", "DBSIZE", "FLUSHALL", "FLUSHDB", "SCRIPT", "FUNCTION", "PUBLISH",
                                   "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "QUIT", "RESET"})
    if (command_is(name, keyless)) return std::nullopt;
  std::size_t at = 1;
  for (std::string_view scripted : {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})
    if (command_is(name, scripted)) at = first_key_after_count(cmd);
  if (command_is(name, "XREAD") || command_is(name, "XREADGROUP")) {
    at = 0;
    for (std::size_t i = 1; i + 1 < cmd.args.size(); ++i)
      if (command_is(cmd.args[i], "STREAMS")) {
        at = i + 1;
        break;
      }
  }
  if (at == 0 || at >= cmd.args.size()) return std::nullopt;
  return cmd.args[at];
}

std::size_t replies_for(std::string_view name, std::size_t argc) noexcept {
  for (std::string_view pubsub : {"SSUBSCRIBE", "SUNSUBSCRIBE", "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE"})
    if (command_is(name, pubsub)) return argc - 1;
  return 1;
}

bool split_units(std::string_view payload, std::vector<command_unit>& out) {
  out.clear();
  std::size_t pos = 0, replies = 0;
  command_view cmd;
  command_unit* open = nullptr;  // the transaction being read
  while (pos < payload.size()) {
    const auto start = pos;
    if (!next_command(payload, pos, cmd)) return false;
    const auto n = replies_for(cmd.args[0], cmd.args.size());
    const auto key = routing_key(cmd);
    if (!open) {
      out.push_back(command_unit{start, 0, 0, 0, replies, -1});
      if (command_is(cmd.args[0], "MULTI")) open = &out.back();
    }
    auto& unit = open ? *open : out.back();
    unit.size = pos - unit.offset;
    unit.commands += 1;
    unit.replies += n;
    if (key && unit.slot < 0) unit.slot = hash_slot(*key);
    replies += n;
    if (open && (command_is(cmd.args[0], "EXEC") || command_is(cmd.args[0], "DISCARD"))) open = nullptr;
  }
  return open == nullptr;
}

}  // namespace river::redis::detail
