#pragma once

#include <river/config.hpp>

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace river::redis {

/// One or more Redis commands, encoded as RESP and sent in one piece. Their replies come back
/// together, one `value` per command, in order.
///
/// Arguments are binary safe (each is sent with its length).
class request {
 public:
  /// Appends one command, its name first: `push({"XADD", key, "*", "item", json})`.
  void push(std::span<const std::string_view> args);
  void push(std::initializer_list<std::string_view> args) {
    push(std::span<const std::string_view>(args.begin(), args.size()));
  }

  /// The number of commands, hence of replies.
  std::size_t commands() const noexcept { return commands_; }
  /// The RESP bytes of every command.
  const std::string& payload() const noexcept { return payload_; }
  bool empty() const noexcept { return commands_ == 0; }
  void clear() noexcept {
    payload_.clear();
    commands_ = 0;
  }

 private:
  std::string payload_;
  std::size_t commands_ = 0;
};

}  // namespace river::redis
