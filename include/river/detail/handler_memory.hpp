#pragma once

// Memory for the one asynchronous operation an object has in flight at a time (a reader's wait,
// a Redis request's handler), reused from one operation to the next instead of allocated per
// operation: Asio's own recycling keeps two blocks per thread, which the many operations of a
// busy thread overflow. Bind it to a completion token with `asio::bind_allocator`.

#include <cstddef>
#include <new>

namespace river::detail {

/// `Bytes` held inline; an operation that needs more, or a second one while the first is in
/// flight, takes the heap.
template <std::size_t Bytes = 512>
class handler_memory {
 public:
  handler_memory() noexcept = default;
  handler_memory(const handler_memory&) = delete;
  handler_memory& operator=(const handler_memory&) = delete;

  void* allocate(std::size_t size) {
    if (!in_use_ && size <= sizeof(storage_)) {
      in_use_ = true;
      return storage_;
    }
    return ::operator new(size);
  }

  void deallocate(void* p) noexcept {
    if (p == storage_)
      in_use_ = false;
    else
      ::operator delete(p);
  }

 private:
  // Asio completes an operation by freeing its memory before it posts (or runs) the handler, so
  // one operation at a time fits; a second one in flight falls back to the heap.
  alignas(std::max_align_t) unsigned char storage_[Bytes];
  bool in_use_ = false;
};

/// A standard allocator over a `handler_memory`.
template <class T, class Memory = handler_memory<>>
class handler_allocator {
 public:
  using value_type = T;

  explicit handler_allocator(Memory& m) noexcept : memory_(&m) {}
  template <class U>
  handler_allocator(const handler_allocator<U, Memory>& other) noexcept : memory_(other.memory_) {}

  T* allocate(std::size_t n) { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
  void deallocate(T* p, std::size_t) noexcept { memory_->deallocate(p); }

  template <class U>
  friend bool operator==(const handler_allocator& a, const handler_allocator<U, Memory>& b) noexcept {
    return a.memory_ == b.memory_;
  }

 private:
  template <class, class>
  friend class handler_allocator;
  Memory* memory_;
};

}  // namespace river::detail
