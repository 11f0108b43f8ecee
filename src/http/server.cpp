// The ready server: accepting, connections with their limits and timeouts, TLS, extra routes,
// graceful shutdown. The protocol itself is the handler's (handler.cpp).

#include <river/http/server.hpp>
#include <river/http/token_signing.hpp>

#include "request_framing.hpp"
#include "response_head.hpp"

#include <river/detail/strand.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace river::http {

namespace {

namespace beast_http = boost::beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

class connection_base {
 public:
  virtual ~connection_base() = default;
  /// Closes the connection when it waits for a request, and after its current one otherwise.
  virtual void stop() = 0;
  /// Closes the connection now, whatever it does.
  virtual void abort() = 0;
};

// One connection: its stream, and a watchdog that cancels the stream's operations once the
// current deadline passes (`timed_out_` then says why they failed). The deadline is a plain
// value; the timer is re-armed only when a deadline earlier than its expiry is set, so a
// streaming connection re-arms about once per write timeout, not once per write.
template <class Stream>
class connection final : public connection_base, public std::enable_shared_from_this<connection<Stream>> {
 public:
  template <class... Args>
  explicit connection(tcp::socket socket, Args&... args)
      : stream(std::move(socket), args...), watchdog_(stream.get_executor()) {}

  Stream stream;
  bool timed_out = false;  // all members: on the connection's strand only
  bool stopping = false;
  bool idle = false;
  std::string remote;

  void start_watchdog() { arm(); }

  void set_deadline(clock::time_point t) {
    deadline_ = t;
    if (t < watchdog_.expiry()) watchdog_.cancel();
  }
  void clear_deadline() noexcept { deadline_ = clock::time_point::max(); }

  void close() {
    if (closed_) return;
    closed_ = true;
    watchdog_.cancel();
    error_code ignored;
    stream.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream.lowest_layer().close(ignored);
  }

  void stop() override {
    asio::post(stream.get_executor(), [self = this->shared_from_this()] {
      self->stopping = true;
      if (self->idle) {
        error_code ignored;
        self->stream.lowest_layer().cancel(ignored);
      }
    });
  }

  void abort() override {
    asio::post(stream.get_executor(), [self = this->shared_from_this()] {
      self->stopping = true;
      error_code ignored;
      self->stream.lowest_layer().cancel(ignored);
      self->stream.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    });
  }

 private:
  void arm() {
    watchdog_.expires_at(deadline_);
    watchdog_.async_wait([self = this->shared_from_this()](error_code) { self->on_watchdog(); });
  }

  void on_watchdog() {
    if (closed_) return;
    if (clock::now() >= deadline_) {
      timed_out = true;
      deadline_ = clock::time_point::max();
      error_code ignored;
      stream.lowest_layer().cancel(ignored);
    }
    arm();
  }

  asio::steady_timer watchdog_;
  clock::time_point deadline_ = clock::time_point::max();
  bool closed_ = false;
};

// Writes a connection's responses, each write bounded by the write timeout.
template <class Stream>
class connection_writer final : public detail::response_writer {
 public:
  connection_writer(connection<Stream>& c, std::chrono::milliseconds timeout, metrics& m)
      : c_(c), timeout_(timeout), metrics_(m) {}

  asio::awaitable<error_code> write(std::span<const asio::const_buffer> buffers) override {
    c_.set_deadline(clock::now() + timeout_);
    auto [ec, n] = co_await asio::async_write(c_.stream, buffers, asio::as_tuple(asio::use_awaitable));
    (void)n;
    c_.clear_deadline();
    if (c_.timed_out) {
      metrics_.timeouts_total.fetch_add(1, std::memory_order_relaxed);
      ec = asio::error::timed_out;
    }
    co_return ec;
  }

  std::size_t try_write(std::span<const asio::const_buffer> buffers, error_code& ec) override {
    ec = {};
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      // The socket is in non-blocking mode: this takes what fits in its send buffer now.
      const auto n = c_.stream.write_some(buffers, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
      return n;
    } else {
      (void)buffers;
      return 0;
    }
  }

 private:
  connection<Stream>& c_;
  std::chrono::milliseconds timeout_;
  metrics& metrics_;
};

// The 503 a connection past the limit gets, written without waiting: the socket is new, its
// send buffer empty, so a short write goes out whole or the client is gone anyway.
void reject(tcp::socket& socket) {
  river::error e("Too many connections", error_type::internal);
  const auto body = to_json_text(e);
  auto text = detail::write_head({503, "application/json", body.size(), "Retry-After: 1\r\n", false, true});
  text.append(body);
  error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(text), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

caller_options caller_options_of(const server_options& o) {
  auto c = signed_tokens(o.token_secret);
  c.max_runs_per_client = o.max_runs_per_client;
  c.log = o.log;
  return c;
}

// Descriptors open in this process now.
std::size_t open_descriptors() {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return ec ? 64 : n;
}

// Raises the soft descriptor limit to the hard one when asked, and returns how many connections
// fit under it: what is left after the descriptors open now and a reserve for the accept that
// rejects (a 503 needs a descriptor too), providers' connections and files.
std::size_t fit_connections(std::size_t wanted, bool raise) {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0) return wanted;
  if (raise && l.rlim_cur < l.rlim_max) {
    rlimit raised = l;
    raised.rlim_cur = l.rlim_max == RLIM_INFINITY ? std::max<rlim_t>(l.rlim_cur, 1 << 20) : l.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) l = raised;
  }
  if (l.rlim_cur == RLIM_INFINITY) return wanted;
  const std::size_t reserve = open_descriptors() + 64 + static_cast<std::size_t>(l.rlim_cur / 32);
  const auto limit = static_cast<std::size_t>(l.rlim_cur);
  return std::min(wanted, limit > reserve ? limit - reserve : std::size_t{1});
}

}  // namespace

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(executor executor_in, router router_in, server_options options_in)
      : ex(std::move(executor_in)),
        opts(std::move(options_in)),
        caller_(ex, std::move(router_in), caller_options_of(opts)),
        handler_(caller_, opts.endpoint),
        acceptor(river::detail::make_strand(ex)) {
    if (!opts.tls_certificate_file.empty() || !opts.tls_private_key_file.empty()) {
      try {
        tls_context.emplace(ssl::context::tls_server);
        tls_context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                 ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                                 ssl::context::single_dh_use);
        tls_context->use_certificate_chain_file(opts.tls_certificate_file);
        tls_context->use_private_key_file(opts.tls_private_key_file, ssl::context::pem);
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string("river::http::server: cannot load the TLS certificate or key: ") +
                                 e.what());
      }
    }
  }

  executor ex;
  const server_options opts;
  river::caller caller_;
  http::handler handler_;
  tcp::acceptor acceptor;  // on its own strand
  std::optional<ssl::context> tls_context;
  route_function routes;

  mutable std::mutex mutex;
  std::unordered_map<connection_base*, std::weak_ptr<connection_base>> connections;  // guarded by mutex
  bool stopping = false;                                                              // guarded by mutex
  tcp::endpoint local;
  std::size_t connection_limit = 0;  // set by start, before the first accept

  metrics& counters() { return handler_.get_metrics(); }

  std::vector<std::shared_ptr<connection_base>> live_connections() const {
    std::vector<std::shared_ptr<connection_base>> out;
    std::lock_guard lk(mutex);
    for (auto& [_, weak] : connections)
      if (auto c = weak.lock()) out.push_back(std::move(c));
    return out;
  }

  std::size_t connection_count() const {
    std::lock_guard lk(mutex);
    return connections.size();
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      tcp::socket socket(river::detail::make_strand(ex));
      tcp::endpoint peer;  // filled by the accept itself: no getpeername per connection
      auto [ec] = co_await acceptor.async_accept(socket, peer, asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
        // Out of descriptors, or a connection reset before it was accepted: try again shortly.
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(20));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      counters().connections_total.fetch_add(1, std::memory_order_relaxed);
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (opts.send_buffer_bytes > 0)
        socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(
                              std::min<std::size_t>(opts.send_buffer_bytes, INT_MAX / 2))),
                          ignored);
      // Responses are first written without waiting (connection_writer::try_write).
      socket.non_blocking(true, ignored);
      {
        std::unique_lock lk(mutex);
        if (stopping || connections.size() >= connection_limit) {
          lk.unlock();
          counters().connections_rejected.fetch_add(1, std::memory_order_relaxed);
          reject(socket);
          continue;
        }
      }
      if (tls_context)
        launch(std::make_shared<connection<ssl::stream<tcp::socket>>>(std::move(socket), *tls_context), peer);
      else
        launch(std::make_shared<connection<tcp::socket>>(std::move(socket)), peer);
    }
  }

  template <class Stream>
  void launch(std::shared_ptr<connection<Stream>> c, const tcp::endpoint& peer) {
    c->remote = peer.address().to_string();
    {
      std::lock_guard lk(mutex);
      connections.emplace(c.get(), c);
    }
    counters().connections_open.fetch_add(1, std::memory_order_relaxed);
    auto strand = c->stream.get_executor();
    asio::co_spawn(strand, session(shared_from_this(), std::move(c)), asio::detached);
  }

  template <class Stream>
  static asio::awaitable<void> session(std::shared_ptr<impl> self, std::shared_ptr<connection<Stream>> c) {
    try {
      co_await self->run_connection(*c);
    } catch (const std::exception&) {
      // Out of memory in a response, say: this connection ends, the server goes on.
    }
    c->close();
    {
      std::lock_guard lk(self->mutex);
      self->connections.erase(c.get());
    }
    self->counters().connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  template <class Stream>
  asio::awaitable<void> run_connection(connection<Stream>& c) {
    constexpr bool is_tls = !std::is_same_v<Stream, tcp::socket>;
    c.start_watchdog();
    if constexpr (is_tls) {
      c.set_deadline(clock::now() + opts.read_timeout);
      auto [ec] = co_await c.stream.async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
      c.clear_deadline();
      if (ec) co_return;
    }
    boost::beast::flat_buffer buffer(opts.max_header_bytes + 8192);
    connection_writer<Stream> out(c, opts.endpoint.write_timeout, counters());
    for (;;) {
      if (c.stopping) co_return;
      // The request is read in a frame of its own: an open event stream keeps none of it.
      auto req = co_await read_request(c, buffer, out);
      if (!req) co_return;
      auto action = co_await dispatch(out, std::move(*req), c.remote);
      if (action == connection_action::close) {
        co_await linger(c);
        co_return;
      }
    }
  }

  // Reads the connection's next request; nothing once the connection is done with (closed, timed
  // out, or answered with an error).
  template <class Stream>
  asio::awaitable<std::optional<request>> read_request(connection<Stream>& c, boost::beast::flat_buffer& buffer,
                                                       detail::response_writer& out) {
    if (buffer.size() == 0) {
      // Waiting for the next request: bounded by the idle timeout, and closed at shutdown.
      c.idle = true;
      c.set_deadline(clock::now() + opts.idle_timeout);
      auto [ec, n] = co_await c.stream.async_read_some(buffer.prepare(1024), asio::as_tuple(asio::use_awaitable));
      c.idle = false;
      c.clear_deadline();
      if (ec || c.stopping) co_return std::nullopt;
      buffer.commit(n);
    }
    // From its first byte, the whole request must arrive within the read timeout.
    c.set_deadline(clock::now() + opts.read_timeout);
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(opts.max_header_bytes, UINT32_MAX)));
    parser.body_limit(opts.endpoint.max_body_bytes);
    // The head whole first, so that its bytes can be checked as received.
    auto [ec, head_size] = co_await read_whole_head(c, buffer);
    std::string raw_head;
    if (!ec) raw_head.assign(static_cast<const char*>(buffer.data().data()), head_size);
    if (!ec) {
      auto [header_ec, n] = co_await beast_http::async_read_header(c.stream, buffer, parser,
                                                                   asio::as_tuple(asio::use_awaitable));
      (void)n;
      ec = header_ec;
    }
    if (!ec) {
      if (const auto problem = detail::framing_problem(raw_head, parser.get())) {
        c.clear_deadline();
        co_await respond_error(out, 400, river::error(std::string(*problem), error_type::validation), false);
        co_await linger(c);
        co_return std::nullopt;
      }
    }
    if (!ec && !parser.is_done()) {
      auto expect = parser.get().find(beast_http::field::expect);
      if (expect != parser.get().end() && boost::beast::iequals(expect->value(), "100-continue")) {
        static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
        const asio::const_buffer b[] = {asio::buffer(interim.data(), interim.size())};
        ec = co_await out.write(b);
        c.set_deadline(clock::now() + opts.read_timeout);
      }
      // Read piece by piece rather than with `async_read`, whose composed operation Boost
      // 1.81 mishandles when it completes into an awaitable after an earlier header read.
      while (!ec && !parser.is_done()) {
        auto [body_ec, body_n] =
            co_await beast_http::async_read_some(c.stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        (void)body_n;
        ec = body_ec;
      }
    }
    c.clear_deadline();
    if (ec) {
      co_await read_failed(c, out, ec);
      co_return std::nullopt;
    }
    if (buffer.size() == 0) buffer.shrink_to_fit();
    if (c.stopping) {
      river::error e("The server is shutting down", error_type::internal);
      co_await respond_error(out, 503, e, false);
      co_return std::nullopt;
    }
    co_return parser.release();
  }

  // Reads until the buffer holds a whole request head (up to its blank line); returns its size.
  // A head past the limit is `header_limit`; a connection that ends first, `partial_message`.
  template <class Stream>
  asio::awaitable<std::pair<error_code, std::size_t>> read_whole_head(connection<Stream>& c,
                                                                     boost::beast::flat_buffer& buffer) {
    static constexpr std::string_view blank_line = "\r\n\r\n";
    std::size_t searched = 0;
    for (;;) {
      const std::string_view have(static_cast<const char*>(buffer.data().data()), buffer.size());
      const auto end = have.find(blank_line, searched);
      if (end != std::string_view::npos) co_return std::pair{error_code(), end + blank_line.size()};
      searched = have.size() < blank_line.size() ? 0 : have.size() - (blank_line.size() - 1);
      if (have.size() >= opts.max_header_bytes || buffer.size() >= buffer.max_size())
        co_return std::pair{error_code(beast_http::error::header_limit), std::size_t{0}};
      const auto room = std::min<std::size_t>(4096, buffer.max_size() - buffer.size());
      auto [ec, n] = co_await c.stream.async_read_some(buffer.prepare(room), asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::eof) co_return std::pair{error_code(beast_http::error::partial_message), std::size_t{0}};
      if (ec) co_return std::pair{ec, std::size_t{0}};
      buffer.commit(n);
    }
  }

  // Answers a request that could not be read, when an answer makes sense.
  template <class Stream>
  asio::awaitable<void> read_failed(connection<Stream>& c, detail::response_writer& out, error_code ec) {
    unsigned status = 0;
    std::string message;
    if (c.timed_out) {
      counters().timeouts_total.fetch_add(1, std::memory_order_relaxed);
      c.timed_out = false;
      status = 408;
      message = "Request timeout: the request did not arrive in time";
    } else if (ec == beast_http::error::header_limit || ec == beast_http::error::buffer_overflow) {
      status = 431;
      message = "Request header fields too large";
    } else if (ec == beast_http::error::body_limit) {
      status = 413;
      message = "Request body too large";
    } else if (ec.category() == beast_http::make_error_code(beast_http::error::bad_method).category() &&
               ec != beast_http::error::end_of_stream && ec != beast_http::error::partial_message) {
      status = 400;
      message = "Malformed HTTP request";
    }
    if (status == 0 || c.stopping) co_return;
    river::error e(message, error_type::validation);
    if (status == 413) e.context = {{"limit", opts.endpoint.max_body_bytes}};
    if (status == 431) e.context = {{"limit", opts.max_header_bytes}};
    co_await respond_error(out, status, e, false);
    co_await linger(c);
  }

  // Before closing, stops sending and reads what the client still sends for a moment, so that a
  // client still writing its request reads the response instead of a connection reset.
  template <class Stream>
  asio::awaitable<void> linger(connection<Stream>& c) {
    if (c.stopping) co_return;
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      error_code ignored;
      c.stream.shutdown(tcp::socket::shutdown_send, ignored);
      c.set_deadline(clock::now() + std::min<std::chrono::milliseconds>(opts.read_timeout, std::chrono::milliseconds(500)));
      std::array<char, 4096> sink;
      std::size_t total = 0;
      while (total < opts.endpoint.max_body_bytes + opts.max_header_bytes) {
        auto [ec, n] = co_await c.stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
        if (ec) break;
        total += n;
      }
      c.clear_deadline();
    }
  }

  asio::awaitable<void> respond_error(detail::response_writer& out, unsigned status, const river::error& e,
                                      bool keep_alive) {
    const auto body = to_json_text(e);
    // A 503 here is the server shutting down: another instance may serve the request at once.
    const auto fields = status == 503 ? std::string("Retry-After: 1\r\n") : std::string();
    const auto head = detail::write_head({status, "application/json", body.size(), fields, false, !keep_alive});
    counters().requests_total.fetch_add(1, std::memory_order_relaxed);
    counters().errors_total.fetch_add(1, std::memory_order_relaxed);
    const asio::const_buffer b[] = {asio::buffer(head), asio::buffer(body)};
    auto ec = co_await out.write(b);
    if (!ec) counters().bytes_sent_total.fetch_add(head.size() + body.size(), std::memory_order_relaxed);
  }

  asio::awaitable<connection_action> respond(detail::response_writer& out, const request& req,
                                             const simple_response& r) {
    const bool keep = req.keep_alive();
    std::string fields;
    for (const auto& [name, value] : r.headers) fields.append(name).append(": ").append(value).append("\r\n");
    const auto head = detail::write_head({r.status, r.content_type, r.body.size(), fields, false, !keep});
    counters().requests_total.fetch_add(1, std::memory_order_relaxed);
    if (r.status >= 400) counters().errors_total.fetch_add(1, std::memory_order_relaxed);
    const bool with_body = req.method() != beast_http::verb::head;
    const asio::const_buffer b[] = {asio::buffer(head), asio::buffer(r.body.data(), with_body ? r.body.size() : 0)};
    auto ec = co_await out.write(b);
    if (!ec) counters().bytes_sent_total.fetch_add(head.size() + b[1].size(), std::memory_order_relaxed);
    co_return (ec || !keep) ? connection_action::close : connection_action::keep_alive;
  }

  // 200 "ok" while every provider reaches its storage; 503 naming those that do not.
  simple_response health() const {
    simple_response r;
    for (const auto& p : caller_.routes().providers()) {
      const auto h = p->health();
      if (h.reachable) continue;
      r.status = 503;
      r.body += "unavailable: " + h.storage + ": " + h.detail + " (for " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(h.down_for).count()) + " s)\n";
    }
    if (r.status == 200) r.body = "ok\n";
    return r;
  }

  asio::awaitable<connection_action> dispatch(detail::response_writer& out, request req, const std::string& remote) {
    if (handler_.matches(req.target())) {
      auto action = co_await handler_.serve(out, std::move(req), remote);
      co_return action;
    }
    const auto target = req.target();
    const auto path = std::string_view(target.data(), target.size()).substr(0, target.find('?'));
    std::optional<simple_response> answer;
    const bool get = req.method() == beast_http::verb::get || req.method() == beast_http::verb::head;
    if (opts.serve_health_and_metrics && get && path == "/healthz") {
      answer = health();
    } else if (opts.serve_health_and_metrics && get && path == "/metrics") {
      answer.emplace();
      answer->content_type = "text/plain; version=0.0.4; charset=utf-8";
      answer->body = prometheus_text(counters(), caller_.stats(), caller_.routes());
    } else if (routes) {
      answer = routes(req);
    }
    if (!answer) {
      river::error e("Not found", error_type::validation, {{"path", std::string(path)}});
      answer.emplace();
      answer->status = 404;
      answer->content_type = "application/json";
      answer->body = to_json_text(e);
    }
    auto action = co_await respond(out, req, *answer);
    co_return action;
  }

  asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(ex, d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  asio::awaitable<result<void>> shutdown(std::chrono::milliseconds grace) {
    {
      std::lock_guard lk(mutex);
      stopping = true;
    }
    asio::post(acceptor.get_executor(), [self = shared_from_this()] {
      error_code ignored;
      self->acceptor.close(ignored);
    });
    for (auto& c : live_connections()) c->stop();
    // Runs in progress may finish within the grace period; their streams go on meanwhile.
    const auto step = std::chrono::milliseconds(10);
    auto until = clock::now() + grace;
    while (caller_.active_runs() > 0 && clock::now() < until) co_await pause(step);
    if (caller_.active_runs() > 0) {
      caller_.cancel_all();
      until = clock::now() + std::chrono::seconds(2);
      while (caller_.active_runs() > 0 && clock::now() < until) co_await pause(step);
    }
    // Streams following a run end after its terminal event; any still open (a resumed run of
    // another server, a slow client) are ended cleanly now.
    handler_.close_streams();
    for (auto& c : live_connections()) c->stop();
    until = clock::now() + std::chrono::seconds(2);
    while (connection_count() > 0 && clock::now() < until) co_await pause(step);
    for (auto& c : live_connections()) c->abort();
    until = clock::now() + std::chrono::seconds(2);
    while (connection_count() > 0 && clock::now() < until) co_await pause(step);
    // Nothing reads or writes any more: the providers may let go of their storage.
    for (auto& p : caller_.routes().providers()) co_await p->close();
    co_return result<void>();
  }
};

server::server(executor_type ex, router routes, server_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(routes), std::move(options))) {}

server::~server() {
  asio::post(impl_->acceptor.get_executor(), [self = impl_] {
    error_code ignored;
    self->acceptor.close(ignored);
  });
  for (auto& c : impl_->live_connections()) c->abort();
}

server::executor_type server::get_executor() const noexcept { return impl_->ex; }
const server_options& server::options() const noexcept { return impl_->opts; }
river::caller& server::get_caller() noexcept { return impl_->caller_; }
http::handler& server::get_handler() noexcept { return impl_->handler_; }
void server::set_routes(route_function routes) { impl_->routes = std::move(routes); }
asio::ip::tcp::endpoint server::local_endpoint() const { return impl_->local; }
bool server::tls() const noexcept { return impl_->tls_context.has_value(); }
std::size_t server::open_connections() const { return impl_->connection_count(); }
std::size_t server::connection_limit() const noexcept { return impl_->connection_limit; }
std::string server::metrics_text() const { return impl_->handler_.metrics_text(); }

error_code server::start() {
  error_code ec;
  auto address = asio::ip::make_address(impl_->opts.address, ec);
  if (ec) return ec;
  tcp::endpoint ep(address, impl_->opts.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (ec) return ec;
  a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(impl_->opts.backlog, ec);
  if (!ec) impl_->local = a.local_endpoint(ec);
  if (ec) {
    error_code ignored;
    a.close(ignored);
    return ec;
  }
  impl_->connection_limit = fit_connections(impl_->opts.max_connections, impl_->opts.raise_fd_limit);
  auto strand = a.get_executor();
  asio::co_spawn(strand, impl_->accept_loop(), asio::detached);
  return {};
}

asio::awaitable<result<void>> server::shutdown(std::chrono::milliseconds grace) {
  auto self = impl_;
  auto r = co_await self->shutdown(grace);
  co_return r;
}

int run_server(router routes, server_options options, run_options run) {
  auto make_routes = [r = std::move(routes)](const executor&) mutable { return std::move(r); };
  return run_server(router_factory(std::move(make_routes)), std::move(options), std::move(run));
}

int run_server(router_factory make_routes, server_options options, run_options run) {
  const unsigned threads = std::max(1u, run.threads);
  asio::io_context io(static_cast<int>(threads));
  std::optional<server> s;
  try {
    s.emplace(io.get_executor(), make_routes(io.get_executor()), std::move(options));
  } catch (const std::exception& e) {
    std::cerr << "river: cannot build the server: " << e.what() << "\n";
    return 1;
  }
  if (run.routes) s->set_routes(std::move(run.routes));
  int status = 0;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  // Providers may hold connections: they are closed while the io_context still runs.
  auto fail = [&](std::string why) -> asio::awaitable<void> {
    std::cerr << "river: " << why << "\n";
    status = 1;
    signals.cancel();
    for (auto& p : s->get_caller().routes().providers()) co_await p->close();
  };
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Optionally, the storage first: a server that cannot store runs should not take any.
        const auto until = std::chrono::steady_clock::now() + run.wait_for_storage;
        for (auto& p : s->get_caller().routes().providers()) {
          while (run.wait_for_storage.count() > 0) {
            const auto h = p->health();
            if (h.reachable) break;
            if (std::chrono::steady_clock::now() >= until) {
              co_await fail("cannot reach " + h.storage + " within " + std::to_string(run.wait_for_storage.count()) +
                            " ms: " + h.detail);
              co_return;
            }
            asio::steady_timer pause(io, std::chrono::milliseconds(20));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        }
        if (auto ec = s->start()) {
          co_await fail("cannot listen on " + s->options().address + ":" + std::to_string(s->options().port) + ": " +
                        ec.message());
          co_return;
        }
        if (run.on_listening) run.on_listening(*s);
      },
      asio::detached);
  signals.async_wait([&](error_code ec, int) {
    if (ec) return;
    s->async_shutdown(run.grace, [&](error_code) { io.stop(); });
  });
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return status;
}

}  // namespace river::http
