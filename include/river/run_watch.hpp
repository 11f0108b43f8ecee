#pragma once

#include <functional>
#include <utility>

namespace river {

/// One reader's presence on a run, counted by its provider until the watch is destroyed (see
/// `disconnect_policy` and `provider::watch`). Move-only; an empty watch counts nothing.
class run_watch {
 public:
  run_watch() = default;
  /// A watch that calls `release` once, when it is destroyed.
  explicit run_watch(std::function<void()> release) : release_(std::move(release)) {}
  run_watch(run_watch&& other) noexcept : release_(std::exchange(other.release_, nullptr)) {}
  run_watch& operator=(run_watch&& other) noexcept {
    if (this != &other) {
      reset();
      release_ = std::exchange(other.release_, nullptr);
    }
    return *this;
  }
  run_watch(const run_watch&) = delete;
  run_watch& operator=(const run_watch&) = delete;
  ~run_watch() { reset(); }

  explicit operator bool() const noexcept { return static_cast<bool>(release_); }

  /// Stops counting this reader now.
  void reset() noexcept {
    if (auto release = std::exchange(release_, nullptr)) release();
  }

 private:
  std::function<void()> release_;
};

}  // namespace river
