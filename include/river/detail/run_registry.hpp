#pragma once

// The runs of one caller: which are running, whose client started them, and how they ended.

#include <river/log.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace river::detail {

class run_core;

/// How runs ended, and which are running: shared by a caller and its runs.
class run_registry {
 public:
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> ended{0};    // stream_end
  std::atomic<std::uint64_t> failed{0};   // stream_fatal_error, and terminal events the provider refused
  std::atomic<std::uint64_t> aborted{0};  // aborted
  std::atomic<std::uint64_t> events{0};   // events appended by runs of this caller
  log_function log;                       // set before the first run

  /// Takes a place for a run of `client` (an address; empty: in-process, never limited) while it
  /// has fewer than `limit` running (0: no limit). Released by `release` or `remove`.
  bool reserve(const std::string& client, std::size_t limit) {
    if (client.empty()) return true;
    std::lock_guard lk(mutex_);
    auto& n = per_client_[client];
    if (limit != 0 && n >= limit) {
      if (n == 0) per_client_.erase(client);
      return false;
    }
    ++n;
    return true;
  }
  void release(const std::string& client) {
    if (client.empty()) return;
    std::lock_guard lk(mutex_);
    release_locked(client);
  }

  void add(const std::shared_ptr<run_core>& run) {
    std::lock_guard lk(mutex_);
    runs_[run.get()] = run;
  }
  /// The run is over: it leaves the running ones, and its client's place is released.
  void remove(const void* run, const std::string& client) {
    std::lock_guard lk(mutex_);
    runs_.erase(run);
    if (!client.empty()) release_locked(client);
  }
  std::size_t active() const {
    std::lock_guard lk(mutex_);
    return runs_.size();
  }
  std::size_t active(const std::string& client) const {
    std::lock_guard lk(mutex_);
    auto it = per_client_.find(client);
    return it == per_client_.end() ? 0 : it->second;
  }
  template <class F>
  void for_each(F f) const {
    std::vector<std::shared_ptr<run_core>> live;
    {
      std::lock_guard lk(mutex_);
      for (auto& [_, weak] : runs_)
        if (auto p = weak.lock()) live.push_back(std::move(p));
    }
    for (auto& r : live) f(*r);
  }

 private:
  void release_locked(const std::string& client) {
    auto it = per_client_.find(client);
    if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  }

  mutable std::mutex mutex_;
  std::unordered_map<const void*, std::weak_ptr<run_core>> runs_;
  std::unordered_map<std::string, std::size_t> per_client_;  // runs running per client address
};

}  // namespace river::detail
