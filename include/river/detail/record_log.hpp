#pragma once

// An append-only log of records kept as their frames (detail/record_frame.hpp) in pages of memory
// that never move: readers hold views into them, and consecutive records sit next to each other,
// so a reader that catches up writes many records in one piece. Pages grow geometrically up to a
// cap, so a run's storage costs about its bytes.
//
// A writer that stores records elsewhere first (the Redis provider's) stages each record's frame
// when it is appended and publishes it once stored: readers see published records only.
//
// A log may be a window: `trim_locked` drops whole pages from its front. Records keep their
// index (it counts from the log's first record ever), and a reader that needs its views to
// outlive a trim pins their pages (`read_locked` with `pins`).

#include <river/detail/record_frame.hpp>
#include <river/detail/wakeup.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace river::detail {

/// A reader's place in a log's list of sleepers; `queued` is guarded by the log's mutex.
struct log_sleeper {
  explicit log_sleeper(const executor& ex) : wake(ex) {}
  wakeup wake;
  bool queued = false;
};

/// Pages a reader keeps alive while it holds views into them.
using page_pins = std::vector<std::shared_ptr<const char[]>>;

class record_log {
 public:
  /// Pages grow geometrically from one OS page up to `max_page_bytes` (a bigger record gets a
  /// page of its own size).
  explicit record_log(std::size_t max_page_bytes = 256 * 1024)
      : max_page_size_(std::max(max_page_bytes, first_page_size)) {}

  /// Guards everything below; held by the owner around each call.
  mutable std::mutex mutex;

  /// Appends a record (copying `position` and `data` into its frame) and wakes the sleepers.
  /// Not while records are staged: they come first.
  void append_locked(std::string_view position, std::string_view data) {
    stage_locked(position, data);
    publish_locked(1);
  }

  /// Writes a record's frame without showing it to readers: a writer that stores records
  /// elsewhere first frames each as it is appended, while its bytes are at hand, and publishes
  /// it once it is stored. Returns the views of the frame, which stays where it is.
  record_view stage_locked(std::string_view position, std::string_view data) {
    const auto size = frame_size(data.size(), position.size());
    char* at = reserve(size);
    write_frame(at, position, data);
    index_.push_back(entry{at, static_cast<std::uint32_t>(size), static_cast<std::uint32_t>(data.size())});
    frame_bytes_ += size;
    ++staged_;
    return view_of(index_.back());
  }
  /// Shows the oldest `n` staged records to readers and wakes the sleepers.
  void publish_locked(std::size_t n) {
    staged_ -= std::min(n, staged_);
    wake_all_locked();
  }
  /// Drops the staged records (they will never be stored), newest first.
  void unstage_locked() {
    for (; staged_ > 0; --staged_) {
      while (pages_.size() > 1 && pages_.back().records == 0) {
        page_bytes_ -= pages_.back().capacity;
        pages_.pop_back();
      }
      // The newest record is the last one in the last page that holds any.
      auto& p = pages_.back();
      p.used -= index_.back().frame_size;
      --p.records;
      frame_bytes_ -= index_.back().frame_size;
      index_.pop_back();
    }
  }
  /// Records staged and not published yet.
  std::size_t staged_locked() const noexcept { return staged_; }

  /// Index of the first record kept (0 until a trim).
  std::size_t begin_locked() const noexcept { return base_; }
  /// Index past the last record readers may see.
  std::size_t end_locked() const noexcept { return base_ + index_.size() - staged_; }
  /// Records stored (the log never trimmed).
  std::size_t size_locked() const noexcept { return end_locked(); }

  /// The views of record `i` (in [begin, end)), valid while its page is kept.
  record_view view_locked(std::size_t i) const noexcept { return view_of(index_[i - base_]); }

  /// Adds records [from, from + n) to `out`; with `pins`, also the pages they lie in.
  void read_locked(std::size_t from, std::size_t n, std::vector<record_view>& out, page_pins* pins = nullptr) const {
    for (auto i = from; i < from + n; ++i) out.push_back(view_locked(i));
    if (pins && n > 0) {
      const auto last = page_of(from + n - 1);
      for (auto p = page_of(from); p <= last; ++p) pins->push_back(pages_[p - first_page_].bytes);
    }
  }

  /// Drops whole pages from the front while at least `keep` published records stay (staged
  /// records come after them: their pages stay).
  void trim_locked(std::size_t keep) {
    while (pages_.size() > 1 && index_.size() - staged_ >= keep + pages_.front().records) {
      const auto n = pages_.front().records;
      for (std::size_t i = 0; i < n; ++i) frame_bytes_ -= index_[i].frame_size;
      index_.erase(index_.begin(), index_.begin() + static_cast<std::ptrdiff_t>(n));
      page_bytes_ -= pages_.front().capacity;
      pages_.erase(pages_.begin());
      base_ += n;
      ++first_page_;
    }
  }

  /// Bytes held: pages (used or not) and the index.
  std::size_t bytes_locked() const noexcept { return page_bytes_ + index_.size() * sizeof(entry); }
  /// Bytes of frames stored.
  std::size_t frame_bytes_locked() const noexcept { return frame_bytes_; }

  /// Closed logs take no more records; readers end once they read the last one.
  bool closed = false;

  /// Registers a reader to be woken by the next append or `wake_all_locked`.
  void sleep_locked(log_sleeper& s) {
    if (s.queued) return;
    s.queued = true;
    sleepers_.push_back(&s);
  }
  void forget_locked(log_sleeper& s) {
    if (!s.queued) return;
    s.queued = false;
    std::erase(sleepers_, &s);
  }
  void wake_all_locked() {
    for (auto* s : sleepers_) {
      s->queued = false;
      s->wake.notify();
    }
    sleepers_.clear();
  }

 private:
  struct entry {
    const char* frame;
    std::uint32_t frame_size;
    std::uint32_t data_size;
  };
  struct page {
    std::shared_ptr<char[]> bytes;
    std::size_t capacity;
    std::size_t used;
    std::size_t records;
  };

  static record_view view_of(const entry& e) noexcept {
    const auto position_size = e.frame_size - e.data_size - frame_size(0, 0);
    return record_view{std::string_view(e.frame + frame_size(e.data_size, 0) - frame_suffix.size(), position_size),
                       std::string_view(e.frame + frame_data_prefix.size(), e.data_size),
                       std::string_view(e.frame, e.frame_size)};
  }

  // One page of the OS: most runs fill it, and a run of a few KiB then takes one allocation.
  static constexpr std::size_t first_page_size = 4 * 1024;

  // The number (counting from the first page ever) of the page that holds record `i`.
  std::size_t page_of(std::size_t i) const noexcept {
    auto rel = i - base_;
    std::size_t p = 0;
    while (rel >= pages_[p].records) rel -= pages_[p++].records;
    return first_page_ + p;
  }

  char* reserve(std::size_t size) {
    if (pages_.empty() || pages_.back().capacity - pages_.back().used < size) {
      const auto grown = pages_.empty() ? first_page_size : std::min(pages_.back().capacity * 2, max_page_size_);
      const auto capacity = std::max(grown, size);
      pages_.push_back(page{std::make_shared_for_overwrite<char[]>(capacity), capacity, 0, 0});
      page_bytes_ += capacity;
    }
    auto& p = pages_.back();
    char* at = p.bytes.get() + p.used;
    p.used += size;
    ++p.records;
    return at;
  }

  std::vector<page> pages_;  // few: they grow geometrically (a deque would cost half a KiB per log)
  std::deque<entry> index_;
  std::vector<log_sleeper*> sleepers_;
  std::size_t max_page_size_;
  std::size_t base_ = 0;        // records trimmed from the front
  std::size_t staged_ = 0;      // the newest records of `index_`, not published yet
  std::size_t first_page_ = 0;  // pages trimmed from the front
  std::size_t page_bytes_ = 0;
  std::size_t frame_bytes_ = 0;
};

}  // namespace river::detail
