#pragma once

#include <river/detail/wakeup.hpp>
#include <river/detail/json_text.hpp>
#include <river/memory/config.hpp>
#include <river/provider.hpp>

#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace river::memory::detail {

using clock = std::chrono::steady_clock;

struct stored_record {
  std::string position;
  std::string data;
};

/// A reader's place in a log's list of sleepers; `queued` is guarded by the log's mutex.
struct sleeper {
  explicit sleeper(const executor& ex) : wake(ex) {}
  river::detail::wakeup wake;
  bool queued = false;
};

/// One run's log. Records live in a deque, which never moves them, so readers keep views into
/// them after the mutex is released; the log itself lives as long as its last reader.
struct run_log {
  explicit run_log(std::string id) : run_id(std::move(id)) {}

  const std::string run_id;

  // Guarded by `mutex`.
  std::mutex mutex;
  std::deque<stored_record> records;
  std::size_t bytes = 0;
  bool closed = false;
  std::vector<sleeper*> sleepers;

  // Guarded by the store's mutex.
  bool finished = false;
  bool evicted = false;
  clock::time_point finished_at;
  std::function<void()> on_cancel_request;

  void wake_all() {
    for (auto* s : sleepers) {
      s->queued = false;
      s->wake.notify();
    }
    sleepers.clear();
  }
};

/// The fatal error that closes a log whose writer went away without closing it.
inline std::string producer_lost_json() {
  std::string out(R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_fatal_error","error":)");
  out.append(
      R"({"__name__":"RiverError","message":"Run ended without a terminal event","type":"stream","cause":null,"context":{}})");
  out.append("}}");
  return out;
}

class store : public std::enable_shared_from_this<store> {
 public:
  struct counts {
    std::size_t runs, running, bytes;
    std::uint64_t evicted;
  };

  explicit store(config c) : cfg(std::move(c)) {}

  const config cfg;

  clock::time_point now() const { return cfg.clock ? cfg.clock() : clock::now(); }

  result<new_log> create(std::string run_id, std::function<void()> on_cancel, const executor& ex);
  result<std::unique_ptr<log_reader>> open(const std::string& storage_id, const std::string& run_id,
                                           const std::optional<std::string>& after, const executor& ex);
  result<void> cancel(const std::string& storage_id, const std::string& run_id);
  result<std::string> append(run_log& log, std::string data, bool last);
  void sweep() {
    std::lock_guard lk(mutex_);
    evict_expired_locked(now());
  }
  counts snapshot() const {
    std::lock_guard lk(mutex_);
    return {runs_.size(), running_, bytes_.load(std::memory_order_relaxed), evicted_};
  }

 private:
  void finish(const std::shared_ptr<run_log>& log);
  bool make_room(std::size_t size);
  void evict_expired_locked(clock::time_point now);
  void evict_oldest_locked();

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<run_log>> runs_;
  std::deque<std::shared_ptr<run_log>> finished_;  // in the order they finished: oldest first
  std::atomic<std::size_t> bytes_{0};
  std::size_t running_ = 0;
  std::uint64_t evicted_ = 0;
};

class writer final : public log_writer {
 public:
  writer(std::shared_ptr<store> s, std::shared_ptr<run_log> log) : store_(std::move(s)), log_(std::move(log)) {}
  ~writer() override {
    bool closed;
    {
      std::lock_guard lk(log_->mutex);
      closed = log_->closed;
    }
    if (!closed) (void)store_->append(*log_, producer_lost_json(), true);
  }
  asio::awaitable<result<std::string>> append(std::string data, bool last) override {
    co_return store_->append(*log_, std::move(data), last);
  }

 private:
  std::shared_ptr<store> store_;
  std::shared_ptr<run_log> log_;
};

class reader final : public log_reader {
 public:
  reader(std::shared_ptr<run_log> log, std::size_t cursor, const executor& ex)
      : log_(std::move(log)), cursor_(cursor), sleeper_(ex) {}
  ~reader() override {
    std::lock_guard lk(log_->mutex);
    if (sleeper_.queued) std::erase(log_->sleepers, &sleeper_);
  }

  asio::awaitable<result<read_status>> read(std::vector<record_view>& out, std::size_t max,
                                            clock::time_point deadline) override {
    max = std::max<std::size_t>(max, 1);
    for (;;) {
      {
        std::lock_guard lk(log_->mutex);
        const auto size = log_->records.size();
        if (cursor_ < size) {
          const auto n = std::min(max, size - cursor_);
          for (auto i = cursor_; i < cursor_ + n; ++i) {
            const auto& r = log_->records[i];
            out.push_back({r.position, r.data});
          }
          cursor_ += n;
          co_return read_status::records;
        }
        if (log_->closed) co_return read_status::end;
        if (!sleeper_.queued) {
          sleeper_.queued = true;
          log_->sleepers.push_back(&sleeper_);
        }
      }
      if (clock::now() >= deadline) co_return read_status::idle;
      if (auto ec = co_await sleeper_.wake.wait(deadline)) co_return error::from_code(ec, "read cancelled");
    }
  }

 private:
  std::shared_ptr<run_log> log_;
  std::size_t cursor_;
  sleeper sleeper_;
};

inline result<new_log> store::create(std::string run_id, std::function<void()> on_cancel, const executor& ex) {
  auto log = std::make_shared<run_log>(run_id);
  log->on_cancel_request = std::move(on_cancel);
  {
    std::lock_guard lk(mutex_);
    evict_expired_locked(now());
    if (runs_.size() >= cfg.max_runs) {
      if (finished_.empty())
        return error::from_code(errc::capacity_exceeded,
                                "Too many runs in progress (" + std::to_string(runs_.size()) + ")");
      evict_oldest_locked();
    }
    if (!runs_.emplace(run_id, log).second)
      return error::from_code(errc::storage_failure, "A run with this id already exists");
    ++running_;
  }
  new_log out;
  out.writer = std::make_shared<writer>(shared_from_this(), log);
  out.reader = std::make_unique<reader>(log, 0, ex);
  return out;
}

inline result<std::unique_ptr<log_reader>> store::open(const std::string& storage_id, const std::string& run_id,
                                                       const std::optional<std::string>& after,
                                                       const executor& ex) {
  auto not_found = [&] {
    return error::from_code(errc::run_not_found, "Run not found", {{"streamRunId", run_id}});
  };
  if (storage_id != cfg.storage_id) return not_found();
  std::shared_ptr<run_log> log;
  {
    std::lock_guard lk(mutex_);
    evict_expired_locked(now());
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return not_found();
    log = it->second;
  }
  std::size_t cursor = 0;
  if (after) {
    const auto& text = *after;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), cursor);
    std::size_t size;
    {
      std::lock_guard lk(log->mutex);
      size = log->records.size();
    }
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || cursor > size)
      return error::from_code(errc::invalid_position, "Invalid resume position for this run",
                              {{"position", text}});
  }
  return std::unique_ptr<log_reader>(std::make_unique<reader>(std::move(log), cursor, ex));
}

inline result<void> store::cancel(const std::string& storage_id, const std::string& run_id) {
  std::function<void()> hook;
  {
    std::lock_guard lk(mutex_);
    auto it = storage_id == cfg.storage_id ? runs_.find(run_id) : runs_.end();
    if (it == runs_.end())
      return error::from_code(errc::run_not_found, "Run not found", {{"streamRunId", run_id}});
    if (it->second->finished)
      return error::from_code(errc::run_already_finished, "Run already finished", {{"streamRunId", run_id}});
    hook = it->second->on_cancel_request;
  }
  if (hook) hook();
  return {};
}

inline result<std::string> store::append(run_log& log, std::string data, bool last) {
  const auto size = data.size();
  if (!last && bytes_.load(std::memory_order_relaxed) + size > cfg.max_bytes && !make_room(size))
    return error::from_code(errc::capacity_exceeded, "The provider's memory limit is reached");
  std::string position;
  {
    std::lock_guard lk(log.mutex);
    if (log.closed) return error::from_code(errc::run_closed, "The run has already ended");
    if (!last && log.bytes + size > cfg.max_run_bytes)
      return error::from_code(errc::run_too_large, "The run passed its size limit",
                              {{"limit", cfg.max_run_bytes}});
    position = std::to_string(log.records.size() + 1);
    log.records.push_back({position, std::move(data)});
    log.bytes += size;
    log.closed = last;
    log.wake_all();
  }
  bytes_.fetch_add(size, std::memory_order_relaxed);
  if (last) {
    std::lock_guard lk(mutex_);
    auto it = runs_.find(log.run_id);
    if (it != runs_.end() && it->second.get() == &log) finish(it->second);
  }
  return position;
}

// Called with mutex_ held.
inline void store::finish(const std::shared_ptr<run_log>& log) {
  log->finished = true;
  log->finished_at = now();
  log->on_cancel_request = nullptr;
  --running_;
  finished_.push_back(log);
  evict_expired_locked(log->finished_at);
  while (runs_.size() > cfg.max_runs && !finished_.empty()) evict_oldest_locked();
  while (bytes_.load(std::memory_order_relaxed) > cfg.max_bytes && !finished_.empty()) evict_oldest_locked();
}

inline bool store::make_room(std::size_t size) {
  std::lock_guard lk(mutex_);
  evict_expired_locked(now());
  while (bytes_.load(std::memory_order_relaxed) + size > cfg.max_bytes && !finished_.empty()) evict_oldest_locked();
  return bytes_.load(std::memory_order_relaxed) + size <= cfg.max_bytes;
}

inline void store::evict_expired_locked(clock::time_point now) {
  // Runs finish in order and share one retention, so the expired ones are at the front.
  while (!finished_.empty() && finished_.front()->finished_at + cfg.retention <= now) evict_oldest_locked();
}

inline void store::evict_oldest_locked() {
  auto log = std::move(finished_.front());
  finished_.pop_front();
  runs_.erase(log->run_id);
  std::size_t bytes;
  {
    std::lock_guard lk(log->mutex);
    bytes = log->bytes;
  }
  bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  log->evicted = true;
  ++evicted_;
}

}  // namespace river::memory::detail
