#pragma once

#include <river/caller.hpp>

#include <atomic>
#include <cstdint>
#include <string>

namespace river::http {

/// Counters of an HTTP endpoint and its connections, updated from any thread.
struct metrics {
  std::atomic<std::uint64_t> connections_total{0};     ///< connections accepted
  std::atomic<std::int64_t> connections_open{0};       ///< connections open now
  std::atomic<std::uint64_t> connections_rejected{0};  ///< refused at the connection limit
  std::atomic<std::uint64_t> requests_total{0};        ///< requests answered
  std::atomic<std::uint64_t> errors_total{0};          ///< requests answered with a 4xx or 5xx status
  std::atomic<std::uint64_t> timeouts_total{0};        ///< connections dropped by a read or write timeout
  std::atomic<std::uint64_t> event_streams_total{0};   ///< event-stream responses begun
  std::atomic<std::int64_t> event_streams_open{0};     ///< event-stream responses in progress
  std::atomic<std::uint64_t> events_sent_total{0};     ///< events written to clients
  std::atomic<std::uint64_t> heartbeats_total{0};      ///< keep-alive comments written
  std::atomic<std::uint64_t> bytes_sent_total{0};      ///< response bytes written
  std::atomic<std::int64_t> bytes_queued{0};           ///< bytes waiting for slow readers to take them
  std::atomic<std::uint64_t> slow_reader_cuts_total{0};  ///< event streams cut to bound `bytes_queued`
  std::atomic<std::uint64_t> client_limited_total{0};  ///< starts refused by a per-client limit (429)
};

/// The Prometheus text exposition (format 0.0.4) of `m`, of the runs in `runs`, and of the storage
/// of every provider of `routes` (`river_storage_reachable`, `river_storage_outages_total`,
/// `river_storage_outage_seconds_total`, labelled by provider and storage).
std::string prometheus_text(const metrics& m, const caller_stats& runs, const router& routes);

}  // namespace river::http
