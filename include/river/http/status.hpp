#pragma once

#include <river/errc.hpp>

namespace river::http {

/// The HTTP status that answers a failed request, for River's error codes: the one table the
/// adapter uses (docs/protocol.md lists it). Codes of other categories (a provider's own) map to 500.
///
/// | code | status |
/// | --- | --- |
/// | invalid_token, invalid_request, invalid_input, provider_mismatch, invalid_position | 400 |
/// | token_signature_mismatch | 403 |
/// | stream_not_found, run_not_found | 404 |
/// | not_resumable, run_already_finished | 409 |
/// | client_limit_exceeded | 429 (with `Retry-After`) |
/// | capacity_exceeded, storage_unavailable | 503 (with `Retry-After`, see `retry_after_of`) |
/// | storage_failure, run_too_large, malformed_event, operation_in_progress, not_open, invalid_chunk, run_closed (a runner's append after its end: the server's fault), others | 500 |
constexpr unsigned status_of(errc code) noexcept {
  switch (code) {
    case errc::invalid_token:
    case errc::invalid_request:
    case errc::invalid_input:
    case errc::provider_mismatch:
    case errc::invalid_position: return 400;
    case errc::token_signature_mismatch: return 403;
    case errc::stream_not_found:
    case errc::run_not_found: return 404;
    case errc::not_resumable:
    case errc::run_already_finished: return 409;
    case errc::client_limit_exceeded: return 429;
    case errc::capacity_exceeded:
    case errc::storage_unavailable: return 503;
    case errc::run_closed:
    case errc::storage_failure:
    case errc::run_too_large:
    case errc::malformed_event:
    case errc::operation_in_progress:
    case errc::not_open:
    case errc::invalid_chunk: return 500;
  }
  return 500;
}

/// The seconds a client should wait before it tries again (the `Retry-After` of a 503 or 429),
/// or 0.
constexpr unsigned retry_after_of(errc code) noexcept {
  switch (code) {
    case errc::capacity_exceeded:
    case errc::client_limit_exceeded: return 1;
    case errc::storage_unavailable: return 5;
    default: return 0;
  }
}

/// `status_of` for any error code: River's codes by the table, everything else 500.
inline unsigned status_of(const error_code& code) noexcept {
  if (code.category() != river_category()) return 500;
  return status_of(static_cast<errc>(code.value()));
}

}  // namespace river::http
