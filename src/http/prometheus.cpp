// The Prometheus text exposition (format 0.0.4) of an endpoint's counters, its caller's runs and
// its providers' storage.

#include <river/http/metrics.hpp>

#include <chrono>
#include <string>

namespace river::http {

std::string prometheus_text(const metrics& m, const caller_stats& runs, const router& routes) {
  std::string out;
  out.reserve(2048);
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help, auto value,
                    std::string_view labels = {}) {
    if (!help.empty()) {
      out.append("# HELP ").append(name).append(" ").append(help).append("\n");
      out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(std::to_string(value)).append("\n");
  };
  auto load = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  metric("river_runs_started_total", "counter", "Runs started.", runs.runs_started);
  metric("river_runs_active", "gauge", "Runs whose runner is still running.", runs.runs_active);
  metric("river_runs_finished_total", "counter", "Runs finished, by outcome.", runs.runs_ended, "outcome=\"end\"");
  metric("river_runs_finished_total", "counter", "", runs.runs_failed, "outcome=\"fatal_error\"");
  metric("river_runs_finished_total", "counter", "", runs.runs_aborted, "outcome=\"aborted\"");
  metric("river_events_appended_total", "counter", "Events appended by runs.", runs.events_appended);
  metric("river_http_connections_open", "gauge", "Open HTTP connections.", load(m.connections_open));
  metric("river_http_connections_total", "counter", "HTTP connections accepted.", load(m.connections_total));
  metric("river_http_connections_rejected_total", "counter", "Connections refused at the connection limit.",
         load(m.connections_rejected));
  metric("river_http_requests_total", "counter", "HTTP requests answered.", load(m.requests_total));
  metric("river_http_request_errors_total", "counter", "HTTP requests answered with an error status.",
         load(m.errors_total));
  metric("river_http_timeouts_total", "counter", "Connections dropped by a read or write timeout.",
         load(m.timeouts_total));
  metric("river_http_event_streams_total", "counter", "Event-stream responses begun.", load(m.event_streams_total));
  metric("river_http_event_streams_open", "gauge", "Event-stream responses in progress.", load(m.event_streams_open));
  metric("river_http_events_sent_total", "counter", "Events written to clients.", load(m.events_sent_total));
  metric("river_http_heartbeats_sent_total", "counter", "Keep-alive comments written.", load(m.heartbeats_total));
  metric("river_http_bytes_sent_total", "counter", "Response bytes written.", load(m.bytes_sent_total));
  metric("river_http_bytes_queued", "gauge", "Bytes waiting for slow readers to take them.", load(m.bytes_queued));
  metric("river_http_slow_reader_cuts_total", "counter", "Event streams cut to bound the bytes queued for slow readers.",
         load(m.slow_reader_cuts_total));
  metric("river_http_client_limited_total", "counter", "Starts refused by a per-client limit (429).",
         load(m.client_limited_total));
  // One series per provider, labelled with what it stores to.
  bool first = true;
  for (const auto& p : routes.providers()) {
    const auto h = p->health();
    std::string labels = "provider=\"";
    labels.append(p->id()).append("\",storage=\"");
    for (char c : h.storage) {
      if (c == '"' || c == '\\') labels.push_back('\\');
      if (c != '\n') labels.push_back(c);
    }
    labels.push_back('"');
    const auto help = [&](std::string_view text) { return first ? text : std::string_view(); };
    metric("river_storage_reachable", "gauge", help("Whether the provider reaches its storage now (1) or not (0)."),
           h.reachable ? 1 : 0, labels);
    metric("river_storage_outages_total", "counter", help("Outages of the provider's storage so far."), h.outages, labels);
    metric("river_storage_outage_seconds_total", "counter", help("Seconds the provider's storage was unreachable."),
           std::chrono::duration<double>(h.down_total + h.down_for).count(), labels);
    first = false;
  }
  return out;
}

}  // namespace river::http
