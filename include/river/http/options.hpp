#pragma once

#include <river/log.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace river::http {

/// A request as the handler receives it.
using request = boost::beast::http::request<boost::beast::http::string_body>;

/// How fast one client may start runs: a bucket of `burst` starts, refilled at `per_second`.
struct start_rate {
  double per_second = 20;  ///< 0: no limit
  double burst = 40;
};

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
  /// Most bytes, over all event streams, waiting for their readers beyond what the kernel's send
  /// buffers took. A stream whose write would pass it is cut (its client resumes when it keeps up
  /// again), so slow readers together cannot hold more than this. A stream waits with at most
  /// one batch; the default leaves room for thousands of them.
  std::size_t max_queued_bytes = std::size_t{1} << 30;
  /// Origins allowed to call the endpoint from a web page of another origin (CORS). "*" allows
  /// any origin (echoed when it is one a browser sends: `scheme://host[:port]` or `null`).
  /// Empty: no CORS headers are sent.
  std::vector<std::string> cors_origins;
  /// How fast one client may start runs; past it a start gets 429 with `Retry-After`. (How many
  /// runs one client may have running at once is the caller's `max_runs_per_client`.)
  river::http::start_rate start_rate_per_client;
  /// The client a request comes from: the key of the per-client limits, and the runner's
  /// `request_metadata::remote_address`. Empty: the connection's peer address (an IPv6 address
  /// by its /64 prefix, which one user typically holds whole). Behind a reverse proxy every
  /// client is the proxy: return the address the proxy puts in a header it sets itself (such as
  /// the last entry of `X-Forwarded-For`).
  std::function<std::string(const request&, std::string_view peer)> client_address;
};

/// Settings of a `server`: where it listens, its limits, and the endpoint it serves.
struct server_options {
  /// Address to listen on ("127.0.0.1", "::", "0.0.0.0").
  std::string address = "127.0.0.1";
  /// Port to listen on; 0 picks a free port (see `server::local_endpoint`).
  std::uint16_t port = 8080;
  /// The River endpoint.
  handler_options endpoint;
  /// Secret for signed resumption tokens (HMAC-SHA256): the server's caller signs every token it
  /// hands out and refuses tokens whose signature does not match (403). Empty: tokens are not
  /// signed. (With a `handler` of your own, give your caller `signed_tokens(secret)`.)
  std::string token_secret;
  /// Largest request header (request line and fields); a larger one gets 431.
  std::size_t max_header_bytes = 16 * 1024;
  /// Longest time a kept-alive connection may wait for its next request; it is then closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  /// Longest time to receive a whole request (header and body) once it began; 408 after.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(10);
  /// Most open connections. Past it new connections get 503 and are closed. `start` lowers it to
  /// what the process's descriptor limit leaves room for (see `server::connection_limit`), so the
  /// 503 still reaches clients when descriptors run short.
  std::size_t max_connections = 10'000;
  /// Raise the process's soft limit of open descriptors to its hard limit at `start` (the common
  /// soft limit of 1024 would otherwise cap the connections far below `max_connections`).
  bool raise_fd_limit = true;
  /// A fixed kernel send buffer for each connection (SO_SNDBUF; Linux doubles it for bookkeeping).
  /// It bounds what a reader that stops reading pins in the kernel, but it also turns the kernel's
  /// autotuning off, and then readers of large chunks that keep up stall now and then for 200 ms
  /// to over a second (measured on loopback with 16 KiB chunks and a 256 KiB buffer, in most runs;
  /// limiting unsent bytes with TCP_NOTSENT_LOWAT stalled them more). 0 (the default): the kernel
  /// sizes it, as nginx and Node leave it, within its own memory limits (`net.ipv4.tcp_wmem`,
  /// `tcp_mem`); what a stream cannot write waits in the stream either way, counted against
  /// `endpoint.max_queued_bytes`.
  std::size_t send_buffer_bytes = 0;
  /// Most runs one client may have running at once (the caller's `max_runs_per_client`); past it
  /// a start gets 429 with `Retry-After`. Clients are told apart by `endpoint.client_address`.
  /// 0: no limit.
  std::size_t max_runs_per_client = 100;
  /// Where the server's caller reports run failures, one record each (see `log_record`). Empty:
  /// nowhere.
  log_function log = log_to_stderr();
  /// PEM certificate chain and private key files. Both set: the server speaks only HTTPS.
  std::string tls_certificate_file;
  std::string tls_private_key_file;
  /// Serve `/healthz` (200 "ok"; 503 naming each provider that cannot reach its storage) and
  /// `/metrics` (Prometheus text).
  bool serve_health_and_metrics = true;
  /// Listen backlog.
  int backlog = 1024;
};

}  // namespace river::http
