#pragma once

#include <river/detail/event_writer.hpp>
#include <river/detail/record_log.hpp>
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

/// One run's log and what the store knows of it. The log lives as long as its last reader.
struct run_log {
  explicit run_log(std::string id) : run_id(std::move(id)) {}

  const std::string run_id;
  river::detail::record_log log;  // its mutex guards `bytes` too
  std::size_t bytes = 0;          // bytes of event text, as the store counts them

  // Guarded by the store's mutex.
  bool finished = false;
  bool evicted = false;
  clock::time_point finished_at;
  std::function<void()> on_cancel_request;
};

/// Reads a position as this provider writes them: a decimal sequence number without sign or
/// leading zeros; "0" is the place before the first record.
inline std::optional<std::size_t> parse_position(std::string_view text) {
  std::size_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  return n;
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
                                           const read_from& from, const executor& ex);
  result<void> cancel(const std::string& storage_id, const std::string& run_id);
  result<std::string> append(run_log& log, std::string_view data, bool last);
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
      std::lock_guard lk(log_->log.mutex);
      closed = log_->log.closed;
    }
    if (!closed) (void)store_->append(*log_, river::detail::abandoned_run_json(), true);
  }
  asio::awaitable<result<std::string>> append(std::string_view data, bool last) override {
    // The first append since the runner last waited (each append of a paced runner) resumes the
    // readers it wakes before the runner goes on, where they share its thread: their write
    // follows the append at once. The appends of a burst leave them queued, to write the burst
    // in one piece once the runner yields (run_core keeps its own yields out of this flag).
    const bool waited = co_await asio::detail::awaitable_thread_has_context_switched{};
    if (waited) co_return append_and_resume_readers(data, last);
    co_return store_->append(*log_, data, last);
  }

 private:
  result<std::string> append_and_resume_readers(std::string_view data, bool last) {
    river::detail::wakeup::inline_scope resume_readers;
    return store_->append(*log_, data, last);
  }

  std::shared_ptr<store> store_;
  std::shared_ptr<run_log> log_;
};

class reader final : public log_reader {
 public:
  reader(std::shared_ptr<run_log> log, std::size_t cursor, const executor& ex)
      : log_(std::move(log)), cursor_(cursor), sleeper_(ex) {}
  ~reader() override {
    std::lock_guard lk(log_->log.mutex);
    log_->log.forget_locked(sleeper_);
  }

  asio::awaitable<result<read_status>> read(std::vector<record_view>& out, std::size_t max,
                                            clock::time_point deadline) override {
    for (;;) {
      if (auto st = take(out, max, true); st != read_status::idle) co_return st;
      if (clock::now() >= deadline) co_return read_status::idle;
      auto [ec] = co_await sleeper_.wake.wait(deadline);
      if (river::detail::wakeup::cancelled(ec, co_await asio::this_coro::cancellation_state))
        co_return error::from_code(asio::error::operation_aborted, "read cancelled");
    }
  }

  read_status poll(std::vector<record_view>& out, std::size_t max) override { return take(out, max, false); }

  // Known from the last read, under its lock: the question costs no second lock per batch.
  bool finished() const override { return read_last_; }

 private:
  // Adds the records that follow the cursor, if any; otherwise registers to be woken when
  // `sleep` is set.
  read_status take(std::vector<record_view>& out, std::size_t max, bool sleep) {
    auto& log = log_->log;
    std::lock_guard lk(log.mutex);
    const auto size = log.size_locked();
    if (cursor_ < size) {
      const auto n = std::min(std::max<std::size_t>(max, 1), size - cursor_);
      log.read_locked(cursor_, n, out);
      cursor_ += n;
      read_last_ = log.closed && cursor_ == size;  // a closed log's last record is its last
      return read_status::records;
    }
    if (log.closed) return read_status::end;
    if (sleep) log.sleep_locked(sleeper_);
    return read_status::idle;
  }

  std::shared_ptr<run_log> log_;
  std::size_t cursor_;
  bool read_last_ = false;  // the last read took the log's last record
  river::detail::log_sleeper sleeper_;
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
                                                       const read_from& from, const executor& ex) {
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
  std::size_t size;
  {
    std::lock_guard lk(log->log.mutex);
    size = log->log.size_locked();
  }
  std::size_t cursor = 0;
  if (from.type() == read_from::kind::after) {
    auto parsed = parse_position(from.position());
    if (!parsed || *parsed > size)
      return error::from_code(errc::invalid_position, "Invalid resume position for this run",
                              {{"position", from.position()}});
    cursor = *parsed;
  } else if (from.type() == read_from::kind::last) {
    cursor = size - std::min(size, from.count());
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

inline result<std::string> store::append(run_log& log, std::string_view data, bool last) {
  const auto size = data.size();
  if (!last && bytes_.load(std::memory_order_relaxed) + size > cfg.max_bytes && !make_room(size))
    return error::from_code(errc::capacity_exceeded, "The provider's memory limit is reached");
  char digits[20];
  std::string_view position;
  {
    std::lock_guard lk(log.log.mutex);
    if (log.log.closed) return error::from_code(errc::run_closed, "The run has already ended");
    if (!last && log.bytes + size > cfg.max_run_bytes)
      return error::from_code(errc::run_too_large, "The run passed its size limit",
                              {{"limit", cfg.max_run_bytes}});
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, log.log.size_locked() + 1);
    (void)ec;
    position = std::string_view(digits, static_cast<std::size_t>(end - digits));
    log.log.closed = last;
    log.log.append_locked(position, data);
    log.bytes += size;
  }
  bytes_.fetch_add(size, std::memory_order_relaxed);
  if (last) {
    std::lock_guard lk(mutex_);
    auto it = runs_.find(log.run_id);
    if (it != runs_.end() && it->second.get() == &log) finish(it->second);
  }
  return std::string(position);
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
    std::lock_guard lk(log->log.mutex);
    bytes = log->bytes;
  }
  bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  log->evicted = true;
  ++evicted_;
}

}  // namespace river::memory::detail
