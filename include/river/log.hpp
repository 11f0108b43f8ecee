#pragma once

// What River reports to the application's log: one record per failure worth a line.

#include <functional>
#include <string>
#include <string_view>

namespace river {

/// One failure River reports: a run that ended without succeeding, a storage that went away.
/// Fields are views, valid during the call.
struct log_record {
  std::string_view event;       ///< what happened: "run_failed", "run_refused", ...
  std::string_view stream;      ///< the stream's name, when the record is about a run
  std::string_view run_id;      ///< the run's id, when the record is about a run
  std::string_view storage_id;  ///< the run's storage id
  std::string_view outcome;     ///< how the run ended: "fatal_error", "aborted", ...
  std::string_view cause;       ///< why, in words
};

/// Receives River's log records. Called from any thread; keep it short and thread-safe.
using log_function = std::function<void(const log_record&)>;

/// The record as one logfmt line, without the newline:
/// `river event=run_failed stream=chat run=… storage=default outcome=fatal_error cause="…"`.
std::string to_logfmt(const log_record& r);

/// A `log_function` that writes `to_logfmt` lines to standard error, a line at a time.
log_function log_to_stderr();

}  // namespace river

#include <river/impl/log.ipp>
