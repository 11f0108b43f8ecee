#pragma once

#include <river/config.hpp>

#include <string>
#include <type_traits>

namespace river::redis {

/// Failures of the Redis connection and of the data it reads (category "river.redis").
enum class error {
  /// A Redis URL that is not `redis://[user:password@]host[:port][/db]` or `unix:///path`.
  invalid_url = 1,
  /// The connection is not established: it is connecting again after a failure, or was never
  /// able to connect. Requests made meanwhile fail at once instead of waiting.
  not_connected,
  /// The connection broke while the request was written or its reply awaited; the command may
  /// or may not have run on the server.
  connection_lost,
  /// The server sent bytes that are not RESP.
  protocol_error,
  /// A reply grew past the configured read buffer limit.
  read_buffer_exceeded,
  /// Redis answered with an error reply (`-ERR ...`, `-WRONGTYPE ...`).
  server_error,
  /// A reply of another shape than the command's (an array where a string was due, ...).
  unexpected_reply,
  /// The connection was closed by its owner.
  closed,
  /// The handshake (AUTH, SELECT) was refused.
  handshake_failed,
  /// Connecting took longer than the configured timeout.
  connect_timeout,
  /// Too many requests are waiting for the connection.
  queue_full,
  /// A request written to Redis got no reply within the response timeout: the server or the
  /// network stopped answering without closing the connection, which was dropped. The command
  /// may or may not have run on the server.
  response_timeout,
};

namespace detail {

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
#endif
class redis_category final : public boost::system::error_category {
 public:
  constexpr redis_category() noexcept : error_category(0x7269766572'0002ULL) {}
  const char* name() const noexcept override { return "river.redis"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::invalid_url: return "invalid Redis URL";
      case error::not_connected: return "not connected to Redis";
      case error::connection_lost: return "connection to Redis lost";
      case error::protocol_error: return "Redis protocol error";
      case error::read_buffer_exceeded: return "Redis reply exceeds the read buffer limit";
      case error::server_error: return "Redis error reply";
      case error::unexpected_reply: return "unexpected Redis reply";
      case error::closed: return "Redis connection closed";
      case error::handshake_failed: return "Redis handshake failed";
      case error::connect_timeout: return "timed out connecting to Redis";
      case error::queue_full: return "too many Redis requests waiting";
      case error::response_timeout: return "no reply from Redis within the response timeout";
    }
    return "unknown Redis error";
  }
};
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

}  // namespace detail

/// The "river.redis" error category.
inline const boost::system::error_category& redis_category() noexcept {
  static const detail::redis_category category;
  return category;
}

/// Makes an error code of the "river.redis" category (found by ADL).
inline error_code make_error_code(error e) noexcept {
  return error_code(static_cast<int>(e), redis_category());
}

}  // namespace river::redis

template <>
struct boost::system::is_error_code_enum<river::redis::error> : std::true_type {};
