#pragma once

#include <river/config.hpp>

#include <string>
#include <type_traits>

namespace river {

/// What went wrong, as River's own error codes (category "river").
///
/// The HTTP adapter maps each code to a status in one table; the wire form of a failure is
/// `river::error`, built from a code plus readable text.
enum class errc {
  /// A resumption token that is not base64, not JSON, or lacks its fields.
  invalid_token = 1,
  /// A signed resumption token whose signature does not match.
  token_signature_mismatch,
  /// A start request without a usable body or stream name.
  invalid_request,
  /// No stream of that name in the router.
  stream_not_found,
  /// The input does not decode into the stream's input type.
  invalid_input,
  /// No run with that id in the provider: it never existed, or it expired.
  run_not_found,
  /// The token names another provider than the stream's.
  provider_mismatch,
  /// The provider cannot resume runs.
  not_resumable,
  /// A resume position that is malformed or past the end of the run.
  invalid_position,
  /// An append after the run's terminal event.
  run_closed,
  /// A cancel of a run that has already ended.
  run_already_finished,
  /// The provider's bounds leave no room for a new run or event.
  capacity_exceeded,
  /// A run log grew past the provider's per-run limit.
  run_too_large,
  /// The provider failed to store or read a run log.
  storage_failure,
  /// A stored or received event is not a valid River event.
  malformed_event,
  /// A second read was started while one is pending on the same reader.
  operation_in_progress,
  /// The object was used after it was closed or moved from.
  not_open,
  /// A chunk given as JSON text (`json_text`) that is not valid JSON.
  invalid_chunk,
  /// The provider cannot reach its storage now; try again later.
  storage_unavailable,
  /// The client has as many runs running, or started as many lately, as it may; try again later.
  client_limit_exceeded,
};

namespace detail {

// boost::system::error_category has a protected non-virtual destructor by design.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
#endif
class river_category final : public boost::system::error_category {
 public:
  constexpr river_category() noexcept : error_category(0x7269766572'0001ULL) {}
  const char* name() const noexcept override { return "river"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_token: return "invalid resumption token";
      case errc::token_signature_mismatch: return "resumption token signature does not match";
      case errc::invalid_request: return "invalid request";
      case errc::stream_not_found: return "stream not found";
      case errc::invalid_input: return "input does not match the stream's input type";
      case errc::run_not_found: return "run not found";
      case errc::provider_mismatch: return "resumption token names another provider";
      case errc::not_resumable: return "provider cannot resume runs";
      case errc::invalid_position: return "invalid resume position";
      case errc::run_closed: return "run already ended";
      case errc::run_already_finished: return "run already finished";
      case errc::invalid_chunk: return "chunk is not valid JSON";
      case errc::storage_unavailable: return "storage unavailable";
      case errc::client_limit_exceeded: return "client limit exceeded";
      case errc::capacity_exceeded: return "provider capacity exceeded";
      case errc::run_too_large: return "run log too large";
      case errc::storage_failure: return "storage failure";
      case errc::malformed_event: return "malformed event";
      case errc::operation_in_progress: return "operation already in progress";
      case errc::not_open: return "object is not open";
    }
    return "unknown river error";
  }
};
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

}  // namespace detail

/// The "river" error category.
inline const boost::system::error_category& river_category() noexcept {
  static const detail::river_category category;
  return category;
}

/// Makes an error code of the "river" category (found by ADL).
inline error_code make_error_code(errc e) noexcept {
  return error_code(static_cast<int>(e), river_category());
}

}  // namespace river

template <>
struct boost::system::is_error_code_enum<river::errc> : std::true_type {};
