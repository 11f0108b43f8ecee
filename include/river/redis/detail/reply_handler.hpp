#pragma once

// The completion handler of a request to Redis, type-erased by hand. `any_completion_handler`
// allocates its state, and each query of its executor wraps the handler's executor in a new
// heap-held one (several per completion): per request that is most of the allocations of a
// paced writer's batch. This one lives in a `reply_memory` that the connection keeps per queued
// request and reuses, and it posts the handler to the handler's own executor.

#include <river/config.hpp>
#include <river/detail/handler_memory.hpp>
#include <river/redis/value.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>

#include <utility>

namespace river::redis::detail {

/// Where a request's handler lives: inline when it fits (an awaiting coroutine's does, with room
/// for a callback's captures), else on the heap.
using reply_memory = river::detail::handler_memory<192>;

class reply_handler {
 public:
  /// Frees the handler's memory, then queues the handler with the outcome on its associated
  /// executor (`fallback` when it has none): never inline, as it may make the next request.
  virtual void complete(const executor& fallback, error_code ec, response replies) = 0;
  /// Frees the handler's memory without calling it (its connection went away first).
  virtual void discard() noexcept = 0;

 protected:
  ~reply_handler() = default;
};

template <class Handler>
class reply_handler_of final : public reply_handler {
 public:
  reply_handler_of(Handler&& h, reply_memory& memory) : handler_(std::move(h)), memory_(&memory) {}

  void complete(const executor& fallback, error_code ec, response replies) override {
    auto h = std::move(handler_);
    discard();
    const auto ex = asio::get_associated_executor(h, fallback);
    asio::post(ex, asio::append(std::move(h), ec, std::move(replies)));
  }

  void discard() noexcept override {
    auto* memory = memory_;
    this->~reply_handler_of();
    memory->deallocate(this);
  }

 private:
  Handler handler_;
  reply_memory* memory_;
};

/// Hands a caller's handler to the connection, which places it where it keeps the request.
class reply_handler_source {
 public:
  /// The handler, moved into `memory`.
  virtual reply_handler* place(reply_memory& memory) = 0;

 protected:
  ~reply_handler_source() = default;
};

template <class Handler>
class reply_handler_source_of final : public reply_handler_source {
 public:
  explicit reply_handler_source_of(Handler&& h) : handler_(std::move(h)) {}

  reply_handler* place(reply_memory& memory) override {
    using placed = reply_handler_of<Handler>;
    return new (memory.allocate(sizeof(placed))) placed(std::move(handler_), memory);
  }

 private:
  Handler handler_;
};

}  // namespace river::redis::detail
