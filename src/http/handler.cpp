// The River endpoint: request routing, the protocol's responses, event streams. Everything that
// does not depend on the connection's stream type lives here.

#include <river/http/handler.hpp>
#include <river/detail/record_frame.hpp>
#include <river/http/detail/request_plan.hpp>
#include <river/http/detail/sse_writer.hpp>
#include <river/http/status.hpp>
#include <river/http/token_signing.hpp>

#include "response_head.hpp"
#include "start_rate_limiter.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace river::http {

namespace beast_http = boost::beast::http;

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

// What an event stream's response needs of its request.
struct stream_response {
  bool chunked = true;  // HTTP/1.1: chunked; HTTP/1.0: the body ends with the connection
  bool keep_alive = true;
  std::string cors;  // the response's CORS fields
};

// What a request came to before its event stream: an answer written (`action`), or a stream to
// write (`log`).
struct opened_request {
  explicit opened_request(connection_action answered) : action(answered) {}
  opened_request(std::unique_ptr<log_reader> events, stream_response r)
      : log(std::move(events)), response(std::move(r)) {}
  connection_action action = connection_action::close;
  std::unique_ptr<log_reader> log;
  stream_response response;
};

// Drops the first `n` bytes of a buffer sequence.
void consume_buffers(std::vector<asio::const_buffer>& buffers, std::size_t n) {
  auto it = buffers.begin();
  while (it != buffers.end() && n >= it->size()) n -= (it++)->size();
  buffers.erase(buffers.begin(), it);
  if (n > 0 && !buffers.empty()) buffers.front() += n;
}

}  // namespace

struct handler::impl {
  impl(caller& c, handler_options o) : caller_(c), opts(std::move(o)), start_rate(opts.start_rate_per_client) {}

  caller& caller_;
  const handler_options opts;
  mutable metrics counters;
  detail::start_rate_limiter start_rate;

  mutable std::mutex mutex;
  std::unordered_map<open_stream*, std::shared_ptr<open_stream>> streams;  // guarded by mutex
  bool closing = false;                                                   // guarded by mutex

  std::string cors_fields(const request& req) const { return detail::cors_fields(req, opts); }

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
    const auto fields = cors_fields(req) + extra_fields;
    const auto head = detail::write_head({status, content_type, body.size(), fields, false, !keep});
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
    std::string fields;
    if (e.code.category() == river_category())
      if (const auto wait = retry_after_of(static_cast<errc>(e.code.value())))
        fields = "Retry-After: " + std::to_string(wait) + "\r\n";
    auto action = co_await respond_error(out, req, status, e, std::move(fields));
    co_return action;
  }

  bool is_closing() const {
    std::lock_guard lk(mutex);
    return closing;
  }

  // Runs are no longer started or followed once a shutdown began.
  asio::awaitable<connection_action> respond_closing(detail::response_writer& out, const request& req) {
    river::error e("The server is shutting down", error_type::internal);
    auto action = co_await respond_error(out, req, 503, e, "Retry-After: 1\r\n");
    co_return action;
  }

  // What an event stream's response needs of its request, which is gone by then.
  stream_response stream_response_of(const request& req) const {
    return {req.version() >= 11, req.keep_alive(), cors_fields(req)};
  }

  // A run just started or resumed, as a stream to write, or the answer why it could not be.
  asio::awaitable<opened_request> open_or_refuse(detail::response_writer& out, const request& req,
                                                 result<event_reader> opened) {
    if (!opened) {
      auto action = co_await respond_error(out, req, opened.error());
      co_return opened_request{action};
    }
    co_return opened_request{opened->release(), stream_response_of(req)};
  }

  asio::awaitable<opened_request> open(detail::response_writer& out, request req, std::string remote);
  asio::awaitable<opened_request> start(detail::response_writer& out, const request& req, detail::start_run plan,
                                        std::string remote);
  asio::awaitable<connection_action> cancel(detail::response_writer& out, const request& req, std::string token);
  asio::awaitable<connection_action> stream_events(detail::response_writer& out, stream_response response,
                                                   std::unique_ptr<log_reader> log);
  asio::awaitable<connection_action> pump(detail::response_writer& out, std::unique_ptr<log_reader> log,
                                          std::string head, stream_response response,
                                          std::shared_ptr<open_stream> st);
};

// Everything but the event stream itself: the stream is written once this frame is gone, so that
// an open stream keeps only what it needs (its request is released here too).
asio::awaitable<opened_request> handler::impl::open(detail::response_writer& out, request req, std::string remote) {
  auto plan = detail::plan_request(req, opts);
  if (auto* a = std::get_if<detail::answer>(&plan)) {
    if (a->error) {
      auto action = co_await respond_error(out, req, a->status, *a->error, std::move(a->fields));
      co_return opened_request{action};
    }
    auto action = co_await respond(out, req, a->status, {}, {}, std::move(a->fields));
    co_return opened_request{action};
  }
  // Runs are no longer started or followed once a shutdown began.
  if (is_closing() && !std::holds_alternative<detail::cancel_run>(plan)) {
    auto action = co_await respond_closing(out, req);
    co_return opened_request{action};
  }
  if (auto* s = std::get_if<detail::start_run>(&plan)) {
    auto opened = co_await start(out, req, std::move(*s), std::move(remote));
    co_return opened;
  }
  if (auto* r = std::get_if<detail::resume_run>(&plan)) {
    auto resumed = co_await caller_.resume(std::move(r->token), std::move(r->from));
    auto opened = co_await open_or_refuse(out, req, std::move(resumed));
    co_return opened;
  }
  auto action = co_await cancel(out, req, std::move(std::get<detail::cancel_run>(plan).token));
  co_return opened_request{action};
}

asio::awaitable<opened_request> handler::impl::start(detail::response_writer& out, const request& req,
                                                     detail::start_run plan, std::string remote) {
  auto client = detail::client_of(req, remote, opts);
  if (!start_rate.try_start(client)) {
    counters.client_limited_total.fetch_add(1, std::memory_order_relaxed);
    auto e = river::error::from_code(errc::client_limit_exceeded, "Too many runs started by this client lately",
                                     {{"perSecond", opts.start_rate_per_client.per_second}});
    auto action = co_await respond_error(out, req, e);
    co_return opened_request{action};
  }
  request_metadata::header_list headers;
  for (const auto& f : req) headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  request_metadata metadata(std::move(headers), std::move(client));
  auto started = co_await caller_.start(std::move(plan.stream), std::move(plan.input), std::move(metadata));
  if (!started && started.error().code == errc::client_limit_exceeded)
    counters.client_limited_total.fetch_add(1, std::memory_order_relaxed);
  auto opened = co_await open_or_refuse(out, req, std::move(started));
  co_return opened;
}

asio::awaitable<connection_action> handler::impl::cancel(detail::response_writer& out, const request& req,
                                                         std::string token) {
  auto decoded = decode_token(token);
  auto cancelled = co_await caller_.cancel(std::move(token));
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

asio::awaitable<connection_action> handler::impl::stream_events(detail::response_writer& out,
                                                                stream_response response,
                                                                std::unique_ptr<log_reader> log) {
  const bool chunked = response.chunked;
  const bool keep_alive = response.keep_alive;
  const auto stream_fields = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n" + response.cors;
  auto head = detail::write_head({200, "text/event-stream", std::nullopt, stream_fields, chunked, !chunked});
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
  auto child = pump(out, std::move(log), std::move(head), std::move(response), st);
  auto completion = asio::bind_cancellation_slot(st->signal.slot(), asio::as_tuple(asio::use_awaitable));
  auto [failure, action] = co_await asio::co_spawn(ex, std::move(child), std::move(completion));
  {
    std::lock_guard lk(mutex);
    streams.erase(st.get());
  }
  // The child's frame may still be in its slot's handler as it completes: let it go first.
  co_await asio::post(ex, asio::use_awaitable);
  if (failure) co_return connection_action::close;
  if (!keep_alive || !chunked) co_return connection_action::close;
  co_return action;
}

asio::awaitable<connection_action> handler::impl::pump(detail::response_writer& out, std::unique_ptr<log_reader> log,
                                                       std::string head, stream_response response,
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
  const bool chunked = response.chunked;
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
  unsigned drain_turns = 0;  // once stopped
  static constexpr unsigned max_drain_turns = 8;
  bool full_batch = true;  // the first look polls: a replay is ready at once
  // The first read only polls: a resumed run that is idle must still get its headers now.
  auto deadline = clock::now();
  // But first a run just started takes its first turn (its runner was queued before this): what
  // it appends at once goes out with the headers in one write rather than in a second one.
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  for (;;) {
    bool ended = false;
    bool run_over = false;  // the run's terminal event (or the provider's failure) is in this batch
    bool idle = false;
    body.clear();
    batch.clear();
    if (st->stop) {
      // Closing: what is ready now still goes out, then the response is cut. A run that ended
      // just before (a local run cancelled at shutdown) still delivers its terminal event.
      // A run still writing fast gets a few turns, not the rest of its life.
      const auto status = log->poll(batch, max_batch);
      if (status == read_status::end)
        ended = run_over = true;
      else if (status == read_status::idle || ++drain_turns > max_drain_turns)
        ended = true;
    } else {
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
        // A read interrupted by `close_streams` sends nothing: the next turn drains and cuts.
        if (!st->stop) {
          // The provider failed while reading: tell the client why, then end the response.
          body.append(river::detail::frame_data_prefix);
          river::detail::append_error_event(body, true, status.error());
          body.append(river::detail::frame_suffix);
          ended = run_over = true;
        }
      } else if (*status == read_status::end) {
        ended = run_over = true;
      } else if (*status == read_status::idle) {
        idle = true;
      } else if (!full_batch && log->finished()) {
        // The run's last records: the response ends with them, in the same write.
        ended = run_over = true;
      }
    }
    // A response stopped by `close_streams` before its run's end is cut: no last chunk, so that
    // every client sees a failed response and resumes, where a clean end would look finished to
    // the TypeScript River client (docs/protocol.md, section 4).
    const bool cut = ended && !run_over;
    if (run_over && !head_sent && batch.empty() && body.empty()) {
      // A resume after the terminal event of an ended run has nothing to send: 204 tells a client
      // (and an EventSource) that the run is over, where an empty stream would ask it to come back.
      const auto ended_fields = "Cache-Control: no-cache\r\n" + response.cors;
      const auto ended_head = detail::write_head({204, {}, std::nullopt, ended_fields, false, !chunked});
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
      if (run_over) buffers.push_back(asio::buffer(last_chunk.data(), last_chunk.size()));
    }
    if (!buffers.empty()) {
      // What the connection takes at once is written without an operation; the rest waits.
      const auto total = asio::buffer_size(buffers);
      error_code ec;
      const auto now_written = out.try_write(buffers, ec);
      if (!ec && now_written < total) {
        // The reader takes less than is sent: the rest waits here, within the budget shared by
        // every stream. Past it this stream is cut, and its client resumes when it can keep up.
        const auto rest = static_cast<std::int64_t>(total - now_written);
        const auto queued = counters.bytes_queued.fetch_add(rest, std::memory_order_relaxed) + rest;
        if (static_cast<std::uint64_t>(queued) > opts.max_queued_bytes) {
          counters.bytes_queued.fetch_sub(rest, std::memory_order_relaxed);
          counters.slow_reader_cuts_total.fetch_add(1, std::memory_order_relaxed);
          co_return connection_action::close;
        }
        consume_buffers(buffers, now_written);
        ec = co_await out.write(buffers);
        counters.bytes_queued.fetch_sub(rest, std::memory_order_relaxed);
      }
      if (ec) co_return connection_action::close;
      counters.bytes_sent_total.fetch_add(total, std::memory_order_relaxed);
      head_sent = true;
      counters.events_sent_total.fetch_add(batch.size(), std::memory_order_relaxed);
    }
    if (ended) co_return cut ? connection_action::close : connection_action::keep_alive;
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
  auto opened = co_await self->open(out, std::move(req), std::move(remote_address));
  if (!opened.log) co_return opened.action;
  auto action = co_await self->stream_events(out, std::move(opened.response), std::move(opened.log));
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

std::string handler::metrics_text() const {
  return prometheus_text(impl_->counters, impl_->caller_.stats(), impl_->caller_.routes());
}

}  // namespace river::http
