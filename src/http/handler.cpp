// The River endpoint: request routing, the protocol's responses, event streams, token signing and
// metrics text. Everything that does not depend on the connection's stream type lives here.

#include <river/http/handler.hpp>
#include <river/detail/record_frame.hpp>
#include <river/http/detail/sse_writer.hpp>
#include <river/http/status.hpp>
#include <river/http/token_signing.hpp>

#include "common.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace river::http {

namespace beast_http = boost::beast::http;

// --- token signing -----------------------------------------------------------------------------

std::string token_signature(const resumption_token& token, std::string_view secret) {
  resumption_token canonical = token;
  canonical.signature.clear();
  const auto text = token_json(canonical);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), mac, &size);
  return river::detail::base64_encode(std::string_view(reinterpret_cast<const char*>(mac), size), true, false);
}

bool verify_token_signature(const resumption_token& token, std::string_view secret) {
  if (token.signature.empty()) return false;
  const auto expected = token_signature(token, secret);
  return expected.size() == token.signature.size() &&
         CRYPTO_memcmp(expected.data(), token.signature.data(), expected.size()) == 0;
}

caller_options signed_tokens(std::string secret) {
  caller_options o;
  if (secret.empty()) return o;
  auto key = std::make_shared<const std::string>(std::move(secret));
  o.sign_token = [key](resumption_token& t) { t.signature = token_signature(t, *key); };
  o.verify_token = [key](const resumption_token& t) { return verify_token_signature(t, *key); };
  return o;
}

// --- metrics -----------------------------------------------------------------------------------

std::string prometheus_text(const metrics& m, const caller_stats& runs) {
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
  return out;
}

// --- the handler -------------------------------------------------------------------------------

namespace {

// An event stream in progress, reachable from `close_streams`.
struct open_stream {
  explicit open_stream(executor e) : ex(std::move(e)) {}
  executor ex;
  asio::cancellation_signal signal;  // cancels the stream's wait for events
  bool waiting = false;              // on ex only
  bool stop = false;                 // on ex only
};

// Drops the first `n` bytes of a buffer sequence.
void consume_buffers(std::vector<asio::const_buffer>& buffers, std::size_t n) {
  auto it = buffers.begin();
  while (it != buffers.end() && n >= it->size()) n -= (it++)->size();
  buffers.erase(buffers.begin(), it);
  if (n > 0 && !buffers.empty()) buffers.front() += n;
}

bool acceptable_content_type(std::string_view value) {
  if (value.empty()) return true;
  auto media = value.substr(0, value.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  return boost::beast::iequals(media, "application/json") || boost::beast::iequals(media, "text/plain");
}

}  // namespace

struct handler::impl {
  impl(caller& c, handler_options o) : caller_(c), opts(std::move(o)) {}

  caller& caller_;
  const handler_options opts;
  mutable metrics counters;

  mutable std::mutex mutex;
  std::unordered_map<open_stream*, std::shared_ptr<open_stream>> streams;  // guarded by mutex
  bool closing = false;                                                   // guarded by mutex

  // The CORS header fields for a request's origin; empty when CORS does not apply.
  std::string cors_fields(const request& req) const {
    if (opts.cors_origins.empty()) return {};
    auto it = req.find(beast_http::field::origin);
    if (it == req.end()) return {};
    const auto origin = it->value();
    for (const auto& allowed : opts.cors_origins) {
      if (allowed == "*" || allowed == origin) {
        std::string out("Access-Control-Allow-Origin: ");
        out.append(origin.data(), origin.size());
        out.append("\r\nVary: Origin\r\n");
        return out;
      }
    }
    return {};
  }

  asio::awaitable<error_code> write(detail::response_writer& out, std::span<const asio::const_buffer> buffers) {
    auto ec = co_await out.write(buffers);
    if (!ec) counters.bytes_sent_total.fetch_add(asio::buffer_size(buffers), std::memory_order_relaxed);
    co_return ec;
  }

  // A complete response with a body.
  asio::awaitable<connection_action> respond(detail::response_writer& out, const request& req, unsigned status,
                                             std::string_view content_type, std::string body,
                                             std::string extra_fields = {}) {
    const bool keep = req.keep_alive();
    std::string head = detail::status_line(status);
    if (!content_type.empty()) head.append("Content-Type: ").append(content_type).append("\r\n");
    head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    head.append(cors_fields(req));
    head.append(extra_fields);
    if (!keep) head.append("Connection: close\r\n");
    head.append("\r\n");
    counters.requests_total.fetch_add(1, std::memory_order_relaxed);
    if (status >= 400) counters.errors_total.fetch_add(1, std::memory_order_relaxed);
    // A response to HEAD has the fields of the response to GET, and no body.
    const bool with_body = req.method() != beast_http::verb::head;
    const asio::const_buffer buffers[] = {asio::buffer(head), asio::buffer(body.data(), with_body ? body.size() : 0)};
    auto ec = co_await write(out, buffers);
    co_return (ec || !keep) ? connection_action::close : connection_action::keep_alive;
  }

  asio::awaitable<connection_action> respond_error(detail::response_writer& out, const request& req, unsigned status,
                                                   const river::error& e, std::string extra_fields = {}) {
    auto body = to_json_text(e);
    auto action = co_await respond(out, req, status, "application/json", std::move(body), std::move(extra_fields));
    co_return action;
  }

  asio::awaitable<connection_action> respond_error(detail::response_writer& out, const request& req,
                                                   const river::error& e) {
    const auto status = status_of(e.code);
    auto action = co_await respond_error(out, req, status, e);
    co_return action;
  }

  bool is_closing() const {
    std::lock_guard lk(mutex);
    return closing;
  }

  // Runs are no longer started or followed once a shutdown began.
  asio::awaitable<connection_action> respond_closing(detail::response_writer& out, const request& req) {
    river::error e("The server is shutting down", error_type::internal);
    auto action = co_await respond_error(out, req, 503, e);
    co_return action;
  }

  // Streams the events of a run just started or resumed, or answers why it could not be.
  asio::awaitable<connection_action> stream_or_refuse(detail::response_writer& out, const request& req,
                                                      result<event_reader> opened) {
    if (!opened) {
      auto action = co_await respond_error(out, req, opened.error());
      co_return action;
    }
    auto action = co_await stream_events(out, req, opened->release());
    co_return action;
  }

  asio::awaitable<connection_action> serve(detail::response_writer& out, request req, std::string remote);
  asio::awaitable<connection_action> start(detail::response_writer& out, request& req, std::string remote);
  asio::awaitable<connection_action> resume(detail::response_writer& out, request& req,
                                            const boost::urls::url_view& url);
  asio::awaitable<connection_action> cancel(detail::response_writer& out, request& req,
                                            const boost::urls::url_view& url);
  asio::awaitable<connection_action> stream_events(detail::response_writer& out, const request& req,
                                                   std::unique_ptr<log_reader> log);
  asio::awaitable<connection_action> pump(detail::response_writer& out, std::unique_ptr<log_reader> log,
                                          std::string head, std::string ended_head, bool chunked,
                                          std::shared_ptr<open_stream> st);
};

namespace {

// A query parameter, percent-decoded (the first of that name).
std::optional<std::string> query_param(const boost::urls::url_view& url, std::string_view key) {
  for (auto p : url.params()) {
    if (p.key == key) return std::move(p.value);
  }
  return std::nullopt;
}

// The `resumeKey` of a resume or cancel request, or the error that answers its absence.
river::result<std::string> resume_key(const boost::urls::url_view& url) {
  auto token = query_param(url, "resumeKey");
  if (!token || token->empty())
    return river::error::from_code(errc::invalid_request, "Must send a resume key", {{"field", "resumeKey"}});
  // A '+' left unencoded by a client arrives decoded as a space; base64 has no spaces.
  std::replace(token->begin(), token->end(), ' ', '+');
  return std::move(*token);
}

}  // namespace

asio::awaitable<connection_action> handler::impl::serve(detail::response_writer& out, request req,
                                                        std::string remote) {
  auto parsed = boost::urls::parse_origin_form(req.target());
  if (!parsed) {
    river::error e("The request target is not a valid URL path", error_type::validation);
    auto action = co_await respond_error(out, req, 400, e);
    co_return action;
  }
  const boost::urls::url_view url = *parsed;
  if (url.encoded_path() != opts.path) {
    river::error e("Not found", error_type::internal, {{"path", std::string(url.encoded_path())}});
    auto action = co_await respond_error(out, req, 404, e);
    co_return action;
  }
  switch (req.method()) {
    case beast_http::verb::post: {
      auto action = co_await start(out, req, std::move(remote));
      co_return action;
    }
    case beast_http::verb::get: {
      auto action = co_await resume(out, req, url);
      co_return action;
    }
    case beast_http::verb::delete_: {
      auto action = co_await cancel(out, req, url);
      co_return action;
    }
    case beast_http::verb::options: {
      std::string fields = "Allow: GET, POST, DELETE, OPTIONS\r\n";
      auto cors = cors_fields(req);
      if (!cors.empty()) {
        fields.append("Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n");
        auto requested = req.find(beast_http::field::access_control_request_headers);
        if (requested != req.end())
          fields.append("Access-Control-Allow-Headers: ").append(requested->value()).append("\r\n");
        else
          fields.append("Access-Control-Allow-Headers: Content-Type, Last-Event-ID\r\n");
        fields.append("Access-Control-Max-Age: 600\r\n");
      }
      const std::string_view no_type;
      std::string no_body;
      auto action = co_await respond(out, req, 204, no_type, std::move(no_body), std::move(fields));
      co_return action;
    }
    default: {
      river::error e("Method not allowed", error_type::validation, {{"method", std::string(req.method_string())}});
      std::string fields = "Allow: GET, POST, DELETE, OPTIONS\r\n";
      auto action = co_await respond_error(out, req, 405, e, std::move(fields));
      co_return action;
    }
  }
}

asio::awaitable<connection_action> handler::impl::start(detail::response_writer& out, request& req,
                                                        std::string remote) {
  auto ct = req.find(beast_http::field::content_type);
  if (ct != req.end() && !acceptable_content_type(ct->value())) {
    river::error e("Unsupported content type: send JSON", error_type::validation,
                   {{"contentType", std::string(ct->value())}});
    auto action = co_await respond_error(out, req, 415, e);
    co_return action;
  }
  if (req.body().size() > opts.max_body_bytes) {
    river::error e("Request body too large", error_type::validation, {{"limit", opts.max_body_bytes}});
    auto action = co_await respond_error(out, req, 413, e);
    co_return action;
  }
  auto body = nlohmann::json::parse(req.body(), nullptr, false);
  if (body.is_discarded()) {
    auto e = river::error::from_code(errc::invalid_request, "Failed to parse request body: not JSON");
    auto action = co_await respond_error(out, req, e);
    co_return action;
  }
  if (!body.is_object()) {
    auto e = river::error::from_code(errc::invalid_request, "Invalid request body: not a JSON object");
    auto action = co_await respond_error(out, req, e);
    co_return action;
  }
  auto key = body.find("routerStreamKey");
  if (key == body.end() || !key->is_string()) {
    auto e = river::error::from_code(errc::invalid_request, "Invalid request body: 'routerStreamKey' must be a string",
                                     {{"field", "routerStreamKey"}});
    auto action = co_await respond_error(out, req, e);
    co_return action;
  }
  if (is_closing()) {
    auto action = co_await respond_closing(out, req);
    co_return action;
  }
  std::string name = key->get<std::string>();
  nlohmann::json input;
  if (auto in = body.find("input"); in != body.end()) input = std::move(*in);
  request_metadata::header_list headers;
  for (const auto& f : req) headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  request_metadata metadata(std::move(headers), std::move(remote));
  auto started = co_await caller_.start(std::move(name), std::move(input), std::move(metadata));
  auto action = co_await stream_or_refuse(out, req, std::move(started));
  co_return action;
}

asio::awaitable<connection_action> handler::impl::resume(detail::response_writer& out, request& req,
                                                         const boost::urls::url_view& url) {
  auto token = resume_key(url);
  if (!token) {
    auto action = co_await respond_error(out, req, token.error());
    co_return action;
  }
  std::optional<std::string> after;
  // EventSource reconnects to its original URL and sends its newest position in the header, so
  // the header wins over a query parameter that may be stale.
  if (auto h = req.find("Last-Event-ID"); h != req.end() && !h->value().empty())
    after = std::string(h->value());
  else if (auto q = query_param(url, "lastEventId"); q && !q->empty())
    after = std::move(*q);
  if (is_closing()) {
    auto action = co_await respond_closing(out, req);
    co_return action;
  }
  auto resumed = co_await caller_.resume(std::move(*token), std::move(after));
  auto action = co_await stream_or_refuse(out, req, std::move(resumed));
  co_return action;
}

asio::awaitable<connection_action> handler::impl::cancel(detail::response_writer& out, request& req,
                                                         const boost::urls::url_view& url) {
  auto token = resume_key(url);
  if (!token) {
    auto action = co_await respond_error(out, req, token.error());
    co_return action;
  }
  auto decoded = decode_token(*token);
  auto cancelled = co_await caller_.cancel(std::move(*token));
  if (!cancelled) {
    auto action = co_await respond_error(out, req, cancelled.error());
    co_return action;
  }
  std::string body(R"({"streamRunId":)");
  river::detail::append_json_string(body, decoded ? decoded->stream_run_id : std::string());
  body.append(R"(,"cancelRequested":true})");
  auto action = co_await respond(out, req, 202, "application/json", std::move(body));
  co_return action;
}

asio::awaitable<connection_action> handler::impl::stream_events(detail::response_writer& out, const request& req,
                                                                std::unique_ptr<log_reader> log) {
  const bool chunked = req.version() >= 11;
  std::string head = detail::status_line(200);
  head.append(
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "X-Accel-Buffering: no\r\n");
  head.append(cors_fields(req));
  head.append(chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
  head.append("\r\n");
  // A resume after the terminal event of an ended run has nothing to send: 204 tells a client
  // (and an EventSource) that the run is over, where an empty stream would ask it to come back.
  std::string ended_head = detail::status_line(204);
  ended_head.append("Cache-Control: no-cache\r\n");
  ended_head.append(cors_fields(req));
  if (!chunked) ended_head.append("Connection: close\r\n");
  ended_head.append("\r\n");
  counters.requests_total.fetch_add(1, std::memory_order_relaxed);

  auto ex = co_await asio::this_coro::executor;
  auto st = std::make_shared<open_stream>(ex);
  {
    std::lock_guard lk(mutex);
    if (closing) st->stop = true;
    streams.emplace(st.get(), st);
  }
  // The stream's loop runs as a child bound to the stream's own cancellation signal, so that
  // `close_streams` can interrupt its wait for events whatever the awaiting coroutine is bound to.
  auto child = pump(out, std::move(log), std::move(head), std::move(ended_head), chunked, st);
  auto completion = asio::bind_cancellation_slot(st->signal.slot(), asio::as_tuple(asio::use_awaitable));
  auto [failure, action] = co_await asio::co_spawn(ex, std::move(child), std::move(completion));
  {
    std::lock_guard lk(mutex);
    streams.erase(st.get());
  }
  // The child's frame may still be in its slot's handler as it completes: let it go first.
  co_await asio::post(ex, asio::use_awaitable);
  if (failure) co_return connection_action::close;
  if (!req.keep_alive() || !chunked) co_return connection_action::close;
  co_return action;
}

asio::awaitable<connection_action> handler::impl::pump(detail::response_writer& out, std::unique_ptr<log_reader> log,
                                                       std::string head, std::string ended_head, bool chunked,
                                                       std::shared_ptr<open_stream> st) {
  co_await asio::this_coro::throw_if_cancelled(false);
  using clock = std::chrono::steady_clock;
  counters.event_streams_total.fetch_add(1, std::memory_order_relaxed);
  counters.event_streams_open.fetch_add(1, std::memory_order_relaxed);
  struct open_guard {
    metrics& m;
    ~open_guard() { m.event_streams_open.fetch_sub(1, std::memory_order_relaxed); }
  } guard{counters};

  static constexpr std::string_view crlf = "\r\n";
  static constexpr std::string_view last_chunk = "0\r\n\r\n";
  const auto interval = opts.heartbeat_interval;
  // The heartbeat deadline moves only when an eighth of the interval passed since it last moved,
  // so a busy stream does not re-arm its timer on every batch.
  const auto refresh = interval / 8;
  const std::size_t max_batch = std::max<std::size_t>(opts.max_batch_events, 1);

  std::vector<record_view> batch;
  std::vector<asio::const_buffer> buffers;
  std::string body;       // what is not a stored frame: records of providers without frames, errors
  std::string size_line;  // the chunk's size line
  bool head_sent = false;
  bool full_batch = true;  // the first look polls: a replay is ready at once
  // The first read only polls: a resumed run that is idle must still get its headers now.
  auto deadline = clock::now();
  for (;;) {
    bool ended = st->stop;
    bool idle = false;
    body.clear();
    batch.clear();
    if (!ended) {
      // After a full batch more records are likely ready: take them without a coroutine. After a
      // partial one the log is likely drained, and the coroutine read waits.
      result<read_status> status = read_status::idle;
      if (full_batch) status = log->poll(batch, max_batch);
      if (*status == read_status::idle) {
        st->waiting = true;
        status = co_await log->read(batch, max_batch, deadline);
        st->waiting = false;
      }
      full_batch = batch.size() >= max_batch;
      if (!status) {
        if (!st->stop) {
          // The provider failed while reading: tell the client why, then end the response.
          body.append(river::detail::frame_data_prefix);
          river::detail::append_error_event(body, true, status.error());
          body.append(river::detail::frame_suffix);
        }
        ended = true;
      } else if (*status == read_status::end) {
        ended = true;
      } else if (*status == read_status::idle) {
        idle = true;
      }
    }
    if (ended && !head_sent && batch.empty() && body.empty() && !st->stop) {
      const asio::const_buffer only_head = asio::buffer(ended_head);
      auto ec = co_await write(out, std::span<const asio::const_buffer>(&only_head, 1));
      if (ec) co_return connection_action::close;
      co_return chunked ? connection_action::keep_alive : connection_action::close;
    }
    // The records' frames as they are stored, adjacent ones in one piece; a provider that keeps
    // no frames gets its records formatted here.
    const bool framed = std::all_of(batch.begin(), batch.end(), [](const record_view& r) { return !r.frame.empty(); });
    if (!framed) {
      std::string formatted;
      for (const auto& rec : batch) river::detail::append_frame(formatted, rec.position, rec.data);
      body.insert(0, formatted);
    }
    if (idle && head_sent) {
      body.append(detail::sse_keep_alive);
      counters.heartbeats_total.fetch_add(1, std::memory_order_relaxed);
    }
    buffers.clear();
    if (!head_sent) buffers.push_back(asio::buffer(head));
    const auto size_at = buffers.size();
    std::size_t payload = 0;
    if (chunked) buffers.emplace_back();  // the size line, once the size is known
    if (framed) {
      for (const auto& rec : batch) {
        payload += rec.frame.size();
        auto& last = buffers.back();
        if (buffers.size() > size_at + (chunked ? 1u : 0u) &&
            static_cast<const char*>(last.data()) + last.size() == rec.frame.data())
          last = asio::const_buffer(last.data(), last.size() + rec.frame.size());
        else
          buffers.push_back(asio::buffer(rec.frame.data(), rec.frame.size()));
      }
    }
    if (!body.empty()) {
      payload += body.size();
      buffers.push_back(asio::buffer(body));
    }
    if (chunked) {
      if (payload == 0) {
        buffers.erase(buffers.begin() + static_cast<std::ptrdiff_t>(size_at));
      } else {
        size_line.clear();
        detail::append_chunk_size(size_line, payload);
        buffers[size_at] = asio::buffer(size_line);
        buffers.push_back(asio::buffer(crlf.data(), crlf.size()));
      }
      if (ended) buffers.push_back(asio::buffer(last_chunk.data(), last_chunk.size()));
    }
    if (!buffers.empty()) {
      // What the connection takes at once is written without an operation; the rest waits.
      const auto total = asio::buffer_size(buffers);
      error_code ec;
      const auto now_written = out.try_write(buffers, ec);
      if (!ec && now_written < total) {
        consume_buffers(buffers, now_written);
        ec = co_await out.write(buffers);
      }
      if (ec) co_return connection_action::close;
      counters.bytes_sent_total.fetch_add(total, std::memory_order_relaxed);
      head_sent = true;
      counters.events_sent_total.fetch_add(batch.size(), std::memory_order_relaxed);
    }
    if (ended) co_return st->stop ? connection_action::close : connection_action::keep_alive;
    const auto now = clock::now();
    if (now + interval - deadline >= refresh || idle) deadline = now + interval;
    if (idle) {
      // An idle stream keeps little: give back what a burst made the buffers grow to.
      batch.shrink_to_fit();
      buffers.shrink_to_fit();
      body.shrink_to_fit();
    }
  }
}

handler::handler(caller& c, handler_options options) : impl_(std::make_shared<impl>(c, std::move(options))) {}
handler::~handler() = default;

const handler_options& handler::options() const noexcept { return impl_->opts; }
caller& handler::get_caller() const noexcept { return impl_->caller_; }
metrics& handler::get_metrics() const noexcept { return impl_->counters; }

bool handler::matches(std::string_view target) const noexcept {
  const auto path = target.substr(0, target.find('?'));
  return path == impl_->opts.path;
}

asio::awaitable<connection_action> handler::serve(detail::response_writer& out, request req,
                                                  std::string remote_address) {
  // Hold the state: a handler destroyed while streams are open is a misuse, but not a crash here.
  auto self = impl_;
  auto action = co_await self->serve(out, std::move(req), std::move(remote_address));
  co_return action;
}

void handler::close_streams() {
  std::vector<std::shared_ptr<open_stream>> open;
  {
    std::lock_guard lk(impl_->mutex);
    impl_->closing = true;
    for (auto& [_, st] : impl_->streams) open.push_back(st);
  }
  for (auto& st : open) {
    asio::post(st->ex, [st] {
      st->stop = true;
      if (st->waiting) st->signal.emit(asio::cancellation_type::terminal);
    });
  }
}

std::size_t handler::open_streams() const {
  std::lock_guard lk(impl_->mutex);
  return impl_->streams.size();
}

std::string handler::metrics_text() const { return prometheus_text(impl_->counters, impl_->caller_.stats()); }

}  // namespace river::http
