#pragma once

#include <chrono>

namespace river {

/// What happens to a run when its readers go away (set per stream with `stream::disconnect`).
///
/// A run executes detached from whoever started it, so by default it goes on to its end whether
/// or not anyone reads it: the client resumes later and finds it complete. Some runs are only
/// worth their cost while someone waits for them (a model's answer nobody reads any more): with
/// `cancel_when_unwatched`, a run that no reader has followed for `grace` is cancelled and ends
/// with `aborted`, as a `cancel` would end it. A reader anywhere counts, another server instance
/// on the same Redis included; a client that comes back within the grace keeps the run going.
/// That is what a TypeScript River client's `abort()` (which only disconnects) means to its app.
struct disconnect_policy {
  enum class action {
    continue_run,           ///< the run goes on to its end (the default)
    cancel_when_unwatched,  ///< the run is cancelled once it has had no reader for `grace`
  };

  action when_unwatched = action::continue_run;
  /// How long a run may go without a reader before it is cancelled. River checks for readers
  /// four times per grace (at most once a second), so the cancel comes after at least the grace
  /// and at most one and a half of it.
  std::chrono::milliseconds grace{3000};

  /// Runs outlive their readers.
  static disconnect_policy continue_run() noexcept { return {}; }
  /// Runs are cancelled when nobody has read them for `grace`.
  static disconnect_policy cancel_when_unwatched(std::chrono::milliseconds grace = std::chrono::seconds(3)) noexcept {
    return {action::cancel_when_unwatched, grace};
  }

  bool cancels() const noexcept { return when_unwatched == action::cancel_when_unwatched; }
};

}  // namespace river
