#pragma once

#include <river/config.hpp>
#include <river/errc.hpp>

#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace river {

/// The kind of a `river::error`, as the wire protocol names it.
enum class error_type {
  custom,      ///< raised by application code (a runner's own error)
  stream,      ///< the run itself failed
  network,     ///< a transport failed
  storage,     ///< the provider failed to store or read events
  unknown,     ///< an error of unknown origin
  internal,    ///< River or its adapter failed to process a request
  validation,  ///< input or request data did not validate
};

/// The wire name of an error type ("custom", "stream", ...).
constexpr std::string_view to_string(error_type t) noexcept {
  switch (t) {
    case error_type::custom: return "custom";
    case error_type::stream: return "stream";
    case error_type::network: return "network";
    case error_type::storage: return "storage";
    case error_type::unknown: return "unknown";
    case error_type::internal: return "internal";
    case error_type::validation: return "validation";
  }
  return "unknown";
}

/// Parses a wire error type name; `std::nullopt` for a name the protocol does not define.
constexpr std::optional<error_type> parse_error_type(std::string_view s) noexcept {
  for (auto t : {error_type::custom, error_type::stream, error_type::network, error_type::storage,
                 error_type::unknown, error_type::internal, error_type::validation}) {
    if (to_string(t) == s) return t;
  }
  return std::nullopt;
}

/// The error type that River reports for one of its codes.
inline error_type error_type_of(const error_code& code) noexcept {
  if (code.category() != river_category()) return error_type::internal;
  switch (static_cast<errc>(code.value())) {
    // What the client sent cannot be served (HTTP 4xx): the request did not validate.
    case errc::invalid_token:
    case errc::token_signature_mismatch:
    case errc::invalid_request:
    case errc::stream_not_found:
    case errc::invalid_input:
    case errc::run_not_found:
    case errc::provider_mismatch:
    case errc::not_resumable:
    case errc::invalid_position:
    case errc::run_already_finished:
    case errc::client_limit_exceeded: return error_type::validation;
    case errc::capacity_exceeded:
    case errc::run_too_large:
    case errc::storage_unavailable:
    case errc::storage_failure: return error_type::storage;
    case errc::run_closed:
    case errc::invalid_chunk:
    case errc::malformed_event: return error_type::stream;
    default: return error_type::internal;
  }
}

/// The error of PROTOCOL.md section 6: the body of an HTTP error and the payload of error events.
///
/// `code` is not on the wire: it tells C++ code what went wrong (`errc::run_not_found`, or a
/// provider's own code) while `message`, `type`, `cause` and `context` travel to clients.
struct error {
  std::string message;
  error_type type = error_type::unknown;
  nlohmann::json cause;                                  ///< any JSON; null when absent
  nlohmann::json context = nlohmann::json::object();     ///< details, such as the offending field
  error_code code;                                       ///< local only, never serialized

  error() = default;
  error(std::string msg, error_type t, nlohmann::json ctx = nlohmann::json::object())
      : message(std::move(msg)), type(t), context(std::move(ctx)) {}

  /// An error for one of River's codes (or any code), typed by `error_type_of(code)`.
  static error from_code(error_code ec, std::string msg,
                         nlohmann::json ctx = nlohmann::json::object()) {
    error e(std::move(msg), error_type_of(ec), std::move(ctx));
    e.code = ec;
    return e;
  }

  /// Compares what travels on the wire (not `code`).
  friend bool operator==(const error& a, const error& b) {
    return a.message == b.message && a.type == b.type && a.cause == b.cause &&
           a.context == b.context;
  }
};

/// A value or a `river::error`: what River's awaitable operations return where failure is
/// expected (bad tokens, unknown runs) and must not cost an exception.
template <class T>
using result = boost::system::result<T, error>;

/// Lets `result<T>::value()` throw: a `boost::system::system_error` with the error's code and text.
[[noreturn]] inline void throw_exception_from_error(const error& e, const boost::source_location&) {
  throw boost::system::system_error(e.code ? e.code : make_error_code(errc::storage_failure),
                                    e.message);
}

/// The compact JSON of an error, with keys in the protocol's order:
/// `{"__name__":"RiverError","message":…,"type":…,"cause":…,"context":…}`.
std::string to_json_text(const error& e);

/// Reads an error the way the TypeScript client does: anything that is not an object named
/// "RiverError" becomes `error("Unknown error", unknown)`; missing parts take their defaults.
error error_from_json(const nlohmann::json& j);

}  // namespace river

#include <river/impl/error.ipp>
