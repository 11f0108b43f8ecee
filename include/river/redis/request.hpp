#pragma once

#include <river/config.hpp>

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace river::redis {

class request;

namespace detail {
/// Builds requests from commands another request encoded (a cluster client splits a request
/// between nodes).
struct request_access {
  /// Appends whole commands, as `request::payload` holds them.
  static void append_encoded(request& r, std::string_view bytes, std::size_t commands, std::size_t replies);
};
}  // namespace detail

/// One or more Redis commands, encoded as RESP and sent in one piece. Their replies come back
/// together, in order: one per command, and one per channel of the pub/sub commands
/// (`SSUBSCRIBE`, `SUBSCRIBE` and their `UNSUBSCRIBE`, which must name their channels).
///
/// Arguments are binary safe (each is sent with its length). A request keeps its buffer across
/// `clear`, and `connection::async_exec` copies the bytes, so a request reused for every command
/// of a hot path allocates nothing once its buffer has grown.
class request {
 public:
  /// Appends one command, its name first: `push({"XADD", key, "*", "item", json})`.
  /// \throws std::invalid_argument for an empty command.
  void push(std::span<const std::string_view> args);
  void push(std::initializer_list<std::string_view> args) {
    push(std::span<const std::string_view>(args.begin(), args.size()));
  }

  /// The number of commands.
  std::size_t commands() const noexcept { return commands_; }
  /// The number of replies the server sends for them.
  std::size_t expected_replies() const noexcept { return replies_; }
  /// The RESP bytes of every command.
  const std::string& payload() const noexcept { return payload_; }
  bool empty() const noexcept { return commands_ == 0; }
  void clear() noexcept {
    payload_.clear();
    commands_ = 0;
    replies_ = 0;
  }

 private:
  friend struct detail::request_access;
  std::string payload_;
  std::size_t commands_ = 0;
  std::size_t replies_ = 0;
};

inline void detail::request_access::append_encoded(request& r, std::string_view bytes, std::size_t commands,
                                                   std::size_t replies) {
  r.payload_.append(bytes);
  r.commands_ += commands;
  r.replies_ += replies;
}

}  // namespace river::redis
