#pragma once

// How many readers of this process follow each run, for the disconnect policy
// `cancel_when_unwatched`. Shared by whoever hands out `run_watch`es (a provider) and the
// watches themselves, which may outlive it.

#include <river/run_watch.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace river::detail {

class watch_counts : public std::enable_shared_from_this<watch_counts> {
 public:
  /// Told when a run gains its first reader here (`true`) or loses its last (`false`). Called
  /// with the counts locked, so that transitions arrive in order: it must only post work.
  using transition = std::function<void(const std::string& key, bool watched)>;

  static std::shared_ptr<watch_counts> make(transition on_change = {}) {
    return std::shared_ptr<watch_counts>(new watch_counts(std::move(on_change)));
  }

  /// Counts one reader of the run `key` until the watch is destroyed.
  run_watch watch(std::string key) {
    {
      std::lock_guard lk(mutex_);
      if (++counts_[key] == 1 && on_change_) on_change_(key, true);
    }
    return run_watch([self = shared_from_this(), key = std::move(key)] { self->release(key); });
  }

  /// Readers of the run `key` in this process.
  std::size_t count(const std::string& key) const {
    std::lock_guard lk(mutex_);
    auto it = counts_.find(key);
    return it == counts_.end() ? 0 : it->second;
  }

  /// The runs with at least one reader here.
  std::vector<std::string> watched() const {
    std::lock_guard lk(mutex_);
    std::vector<std::string> out;
    out.reserve(counts_.size());
    for (const auto& [key, n] : counts_) out.push_back(key);
    return out;
  }

 private:
  explicit watch_counts(transition on_change) : on_change_(std::move(on_change)) {}

  void release(const std::string& key) {
    std::lock_guard lk(mutex_);
    auto it = counts_.find(key);
    if (it == counts_.end() || --it->second > 0) return;
    counts_.erase(it);
    if (on_change_) on_change_(key, false);
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::size_t> counts_;
  transition on_change_;
};

}  // namespace river::detail
