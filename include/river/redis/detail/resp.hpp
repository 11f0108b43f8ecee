#pragma once

// Sans-I/O RESP decoding: bytes in, replies out. hiredis's redisReader does the parsing; it stays
// in src/redis, behind a pointer.

#include <river/redis/error.hpp>
#include <river/redis/value.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace river::redis::detail {

class reply_parser {
 public:
  /// `max_buffer` bounds the bytes held for a reply that has not fully arrived.
  explicit reply_parser(std::size_t max_buffer = std::size_t{64} << 20);
  ~reply_parser();
  reply_parser(reply_parser&&) noexcept;
  reply_parser& operator=(reply_parser&&) noexcept;

  /// Adds received bytes. Fails with `error::read_buffer_exceeded` when more than `max_buffer`
  /// bytes wait for the rest of a reply; the parser is then unusable.
  error_code feed(const char* data, std::size_t size);

  /// The next complete reply, if one is there. `error::protocol_error` for bytes that are not
  /// RESP; the parser is then unusable.
  error_code next(std::optional<value>& out);

  /// Bytes received and not yet consumed by a reply.
  std::size_t buffered() const noexcept;

  /// The parser's own message for its last failure.
  std::string last_error() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace river::redis::detail
