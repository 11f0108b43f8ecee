#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace river::memory {

/// Settings of the in-memory provider. Every bound counts runs in progress too, but only
/// finished runs are ever evicted, oldest first.
struct config {
  /// The storage namespace written into resumption tokens.
  std::string storage_id = "default";
  /// How long a finished run stays readable.
  std::chrono::milliseconds retention = std::chrono::minutes(10);
  /// Most runs kept at once. A new run is refused (`errc::capacity_exceeded`) when every run kept
  /// is still in progress.
  std::size_t max_runs = 10'000;
  /// Most bytes of event text kept at once. An append that would pass it evicts finished runs;
  /// when there are none left, it is refused (`errc::capacity_exceeded`).
  std::size_t max_bytes = std::size_t{256} << 20;
  /// Most bytes of event text in one run; a larger append is refused (`errc::run_too_large`).
  /// The closing event is always accepted, so a refused run can still end cleanly.
  std::size_t max_run_bytes = std::size_t{16} << 20;
  /// The clock used for retention; tests replace it. Empty means `steady_clock::now`.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

}  // namespace river::memory
