#pragma once

#include <river/config.hpp>

#include <boost/beast/http/status.hpp>
#include <boost/system/error_category.hpp>

#include <string>
#include <type_traits>

namespace river::http {

/// What went wrong in River's HTTP client, beyond the transport's own codes (Asio, Beast and
/// OpenSSL keep theirs) and HTTP error statuses (`status_category`).
enum class client_errc {
  /// The connection ended before the run's terminal event, and the run cannot be resumed: the
  /// server gave no resumption token, or automatic resumption is turned off.
  connection_lost = 1,
  /// The connection ended before the run's terminal event, and every attempt to resume failed.
  retries_exhausted,
  /// An event-stream message is larger than `client_options::max_event_size`.
  event_too_large,
  /// A successful response that is not an event stream (its content type says otherwise).
  unexpected_content_type,
  /// A resumed response does not replay the events already delivered: another run, or a run log
  /// shorter than what was read before.
  replay_mismatch,
};

namespace detail {

// boost::system::error_category has a protected non-virtual destructor by design.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
#endif
class client_category final : public boost::system::error_category {
 public:
  constexpr client_category() noexcept : error_category(0x7269766572'0101ULL) {}
  const char* name() const noexcept override { return "river.http.client"; }
  std::string message(int value) const override {
    switch (static_cast<client_errc>(value)) {
      case client_errc::connection_lost:
        return "connection lost before the run's end";
      case client_errc::retries_exhausted:
        return "could not resume the stream after a lost connection";
      case client_errc::event_too_large:
        return "event-stream message too large";
      case client_errc::unexpected_content_type:
        return "response is not an event stream";
      case client_errc::replay_mismatch:
        return "resumed stream does not match the events already read";
    }
    return "unknown river.http.client error";
  }
};

class status_category final : public boost::system::error_category {
 public:
  constexpr status_category() noexcept : error_category(0x7269766572'0102ULL) {}
  const char* name() const noexcept override { return "river.http.status"; }
  std::string message(int value) const override {
    auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(value));
    std::string out = "HTTP " + std::to_string(value);
    if (!reason.empty() && reason != "<unknown-status>") {
      out.push_back(' ');
      out.append(reason.data(), reason.size());
    }
    return out;
  }
};
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

}  // namespace detail

/// The "river.http.client" error category.
inline const boost::system::error_category& client_category() noexcept {
  static const detail::client_category category;
  return category;
}

/// The "river.http.status" error category: an error status a server answered, as an error code
/// whose value is the status (404, 503, ...) and whose message is "HTTP 404 Not Found".
inline const boost::system::error_category& status_category() noexcept {
  static const detail::status_category category;
  return category;
}

/// Makes an error code of the "river.http.client" category (found by ADL).
inline error_code make_error_code(client_errc e) noexcept { return error_code(static_cast<int>(e), client_category()); }

/// The error code for an HTTP status a server answered.
inline error_code make_status_error(unsigned status) noexcept {
  return error_code(static_cast<int>(status), status_category());
}

}  // namespace river::http

template <>
struct boost::system::is_error_code_enum<river::http::client_errc> : std::true_type {};
