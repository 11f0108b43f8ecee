#pragma once

// How fast each client may start runs: a token bucket per client address.

#include <river/http/options.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace river::http::detail {

class start_rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  explicit start_rate_limiter(start_rate rate) : rate_(rate) {}

  /// Takes one start from `client`'s bucket: true when there was one. Clients with an empty
  /// address and limiters of rate 0 always start.
  bool try_start(const std::string& client, clock::time_point now = clock::now()) {
    if (rate_.per_second <= 0 || client.empty()) return true;
    std::lock_guard lk(mutex_);
    prune(now);
    auto [it, fresh] = buckets_.try_emplace(client, bucket{rate_.burst, now});
    auto& b = it->second;
    if (!fresh) {
      const std::chrono::duration<double> elapsed = now - b.refilled;
      b.tokens = std::min(rate_.burst, b.tokens + elapsed.count() * rate_.per_second);
      b.refilled = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /// Clients with a bucket now (full buckets are dropped from time to time).
  std::size_t tracked() const {
    std::lock_guard lk(mutex_);
    return buckets_.size();
  }

 private:
  struct bucket {
    double tokens;
    clock::time_point refilled;
  };

  // Every few seconds, forgets the clients whose bucket has refilled: they are as new ones, and
  // a flood of addresses leaves nothing behind.
  void prune(clock::time_point now) {
    if (now - pruned_ < std::chrono::seconds(5)) return;
    pruned_ = now;
    const auto full_after = std::chrono::duration<double>(rate_.burst / rate_.per_second);
    std::erase_if(buckets_, [&](const auto& entry) { return now - entry.second.refilled >= full_after; });
  }

  const start_rate rate_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;  // guarded by mutex_
  clock::time_point pruned_{};                       // guarded by mutex_
};

}  // namespace river::http::detail
