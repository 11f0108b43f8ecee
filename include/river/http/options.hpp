#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace river::http {

/// Settings of a `handler`: what one River endpoint accepts and how it streams. Every field has a
/// working default.
struct handler_options {
  /// The path the endpoint serves (POST start, GET resume, DELETE cancel). Query strings are
  /// ignored when matching.
  std::string path = "/api/river";
  /// Largest request body accepted; a larger one gets 413.
  std::size_t max_body_bytes = std::size_t{1} << 20;
  /// Interval of `: keep-alive` comments on an idle event stream.
  std::chrono::milliseconds heartbeat_interval = std::chrono::seconds(15);
  /// Longest time one write of a response may take before the connection is dropped, so a client
  /// that stops reading cannot hold a response open.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  /// Most events written to the socket in one write.
  std::size_t max_batch_events = 256;
  /// Origins allowed to call the endpoint from a web page of another origin (CORS). "*" allows
  /// any origin. Empty: no CORS headers are sent.
  std::vector<std::string> cors_origins;
  /// Secret for signed resumption tokens (HMAC-SHA256). Used only by `server`, which builds its
  /// caller; with a `handler` of your own, pass `signed_tokens(secret)` to your caller.
  std::string token_secret;
};

/// Settings of a `server`: where it listens, its limits, and the endpoint it serves.
struct server_options {
  /// Address to listen on ("127.0.0.1", "::", "0.0.0.0").
  std::string address = "127.0.0.1";
  /// Port to listen on; 0 picks a free port (see `server::local_endpoint`).
  std::uint16_t port = 8080;
  /// The River endpoint.
  handler_options endpoint;
  /// Largest request header (request line and fields); a larger one gets 431.
  std::size_t max_header_bytes = 16 * 1024;
  /// Longest time a kept-alive connection may wait for its next request; it is then closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  /// Longest time to receive a whole request (header and body) once it began; 408 after.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(10);
  /// Most open connections. Past it new connections get 503 and are closed.
  std::size_t max_connections = 10'000;
  /// PEM certificate chain and private key files. Both set: the server speaks only HTTPS.
  std::string tls_certificate_file;
  std::string tls_private_key_file;
  /// Serve `/healthz` (200 "ok") and `/metrics` (Prometheus text).
  bool serve_health_and_metrics = true;
  /// Listen backlog.
  int backlog = 1024;
};

}  // namespace river::http
