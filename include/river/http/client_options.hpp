#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace river::http {

/// Settings of a `river::http::client`. Every wait is bounded by one of the timeouts, and every
/// buffer by one of the sizes.
struct client_options {
  /// Headers added to every request (authorization, cookies, ...), in this order.
  std::vector<std::pair<std::string, std::string>> headers;

  /// Longest time to resolve the host, connect, and finish the TLS handshake. Name resolution
  /// itself is bounded by the system's resolver settings.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  /// Longest time from sending a request to the end of its response's header.
  std::chrono::milliseconds response_timeout = std::chrono::seconds(30);
  /// Longest silence within an event stream before the connection counts as lost (and the
  /// stream resumes). River servers send a heartbeat every 15 s by default: three go missing
  /// before this fires. TypeScript River servers send none: a run quieter than this is resumed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(45);

  /// Consecutive attempts to resume a stream after its connection was lost; an attempt that
  /// brings a new event resets the count. 0 turns automatic resumption off.
  unsigned max_resume_attempts = 5;
  /// The wait before the first attempt; it doubles with each further attempt, up to
  /// `max_backoff`, and each wait is drawn at random from its upper half (jitter). A `retry`
  /// field from the server replaces the first wait.
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(250);
  /// The longest wait between two attempts.
  std::chrono::milliseconds max_backoff = std::chrono::seconds(10);

  /// Largest event-stream message accepted (its JSON); a larger one fails the stream with
  /// `client_errc::event_too_large`, so a hostile server cannot exhaust memory.
  std::size_t max_event_size = std::size_t{1} << 20;
  /// Largest error response body read; the rest is ignored.
  std::size_t max_error_body_size = std::size_t{64} << 10;

  /// TLS settings for `https://` URLs. Null: a context of the client's own that trusts the
  /// system's certificate store (`set_default_verify_paths`) and verifies the server's
  /// certificate. Supply a context to trust other authorities (`add_certificate_authority`),
  /// present a client certificate, or (for development only) turn verification off. The
  /// context is shared by every connection of the client and must not change while in use.
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  /// Whether the server's certificate must name the URL's host (a DNS name or an IP address,
  /// RFC 6125). Applies when the context verifies peers.
  bool verify_host = true;
};

}  // namespace river::http
