#pragma once

// The completion handler of a request to Redis, type-erased by hand. `any_completion_handler`
// allocates its state, and each query of its executor wraps the handler's executor in a new
// heap-held one (several per completion): per request that is most of the allocations of a
// paced writer's batch. This one is placed in storage that the connection keeps per queued
// request and reuses, and it posts the handler to the handler's own executor.

#include <river/config.hpp>
#include <river/redis/value.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <new>
#include <utility>

namespace river::redis::detail {

class reply_handler {
 public:
  /// Frees the handler's storage, then queues the handler with the outcome on its associated
  /// executor (`fallback` when it has none): never inline, as it may make the next request.
  virtual void complete(const executor& fallback, error_code ec, response replies) = 0;
  /// Frees the handler's storage without calling it (its connection went away first).
  virtual void discard() noexcept = 0;

 protected:
  ~reply_handler() = default;
};

template <class Handler>
class reply_handler_of final : public reply_handler {
 public:
  reply_handler_of(Handler&& h, bool on_heap) : handler_(std::move(h)), on_heap_(on_heap) {}

  void complete(const executor& fallback, error_code ec, response replies) override {
    auto h = std::move(handler_);
    discard();
    const auto ex = asio::get_associated_executor(h, fallback);
    asio::post(ex, asio::append(std::move(h), ec, std::move(replies)));
  }

  void discard() noexcept override {
    if (on_heap_)
      delete this;
    else
      this->~reply_handler_of();
  }

 private:
  Handler handler_;
  bool on_heap_;
};

/// Where a connection keeps a request's handler: in place, or on the heap when it is too big.
struct reply_handler_storage {
  alignas(std::max_align_t) unsigned char bytes[192];
};

/// Hands a caller's handler to the connection, which places it where it keeps the request.
class reply_handler_source {
 public:
  /// The handler, moved into `storage` (or onto the heap when it does not fit or `storage` is null).
  virtual reply_handler* place(reply_handler_storage* storage) = 0;

 protected:
  ~reply_handler_source() = default;
};

template <class Handler>
class reply_handler_source_of final : public reply_handler_source {
 public:
  explicit reply_handler_source_of(Handler&& h) : handler_(std::move(h)) {}

  reply_handler* place(reply_handler_storage* storage) override {
    using placed = reply_handler_of<Handler>;
    if constexpr (sizeof(placed) <= sizeof(reply_handler_storage) && alignof(placed) <= alignof(reply_handler_storage)) {
      if (storage) return new (storage->bytes) placed(std::move(handler_), false);
    }
    return new placed(std::move(handler_), true);
  }

 private:
  Handler handler_;
};

}  // namespace river::redis::detail
