// The pipelined Redis connection: a reader coroutine that matches replies to requests in order,
// a writer coroutine that coalesces queued requests into one write, and a loop that reconnects.

#include <river/redis/connection.hpp>
#include <river/redis/detail/resp.hpp>

#include <river/detail/strand.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <stdexcept>

namespace river::redis {

namespace {
using clock = std::chrono::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
// Replies handed out before the reader lets their callers run: the requests those queue are
// written while later replies are still being handed out, so Redis works on the next batch in
// the meantime instead of waiting for the whole previous one (twice the append rate with 100 runs).
constexpr std::size_t replies_per_turn = 8;
}  // namespace

struct connection::impl : std::enable_shared_from_this<impl> {
  // Built in one go: Asio 1.26's any_completion_handler move assignment recurses forever, so
  // the handler is only ever move-constructed.
  struct pending {
    pending(request r, handler_type h) : req(std::move(r)), expected(req.commands()), handler(std::move(h)) {}
    request req;
    std::size_t expected = 0;
    std::vector<value> replies;
    handler_type handler;
    clock::time_point written_at{};  // when its write began
  };

  // One established connection: its socket and the timer that wakes its writer.
  struct session {
    explicit session(const executor& s) : socket(s), wake(s), watchdog(s) {}
    asio::generic::stream_protocol::socket socket;
    asio::steady_timer wake;
    asio::steady_timer watchdog;  // the response timeout
    std::string write_buffer;
    bool done = false;
    bool timed_out = false;  // ended by the watchdog
  };

  enum class state { idle, connecting, connected, backoff, closed };

  impl(executor ex, connection_config c, address a)
      : ex_(std::move(ex)), strand_(river::detail::make_strand(ex_)), cfg_(std::move(c)), addr_(std::move(a)),
        backoff_timer_(strand_) {}

  executor ex_;
  executor strand_;  // a strand
  const connection_config cfg_;
  const address addr_;

  // Guarded by the strand.
  state state_ = state::idle;
  std::deque<std::unique_ptr<pending>> waiting_, in_flight_;
  std::shared_ptr<session> session_;
  asio::steady_timer backoff_timer_;

  // Read from any thread.
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> generation_{0};
  // Counters: relaxed atomics, as they are bumped on every request. The last error takes a lock.
  std::atomic<std::uint64_t> requests_{0}, commands_{0}, writes_{0}, connects_{0}, failures_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;

  void set_error(std::string text) {
    std::lock_guard lk(error_mutex_);
    last_error_ = std::move(text);
  }

  void complete(std::unique_ptr<pending> p, error_code ec) {
    if (!ec) {
      requests_.fetch_add(1, std::memory_order_relaxed);
      commands_.fetch_add(p->expected, std::memory_order_relaxed);
    } else {
      p->replies.clear();
    }
    // Posted, never inline: the handler may start the next request. `post` to our executor then
    // dispatches to the handler's own executor, when it has one.
    asio::post(ex_, asio::append(std::move(p->handler), ec, std::move(p->replies)));
  }

  void fail_all(std::deque<std::unique_ptr<pending>>& q, error_code ec) {
    auto taken = std::move(q);
    q.clear();
    for (auto& p : taken) complete(std::move(p), ec);
  }

  // On the strand.
  void enqueue(std::unique_ptr<pending> p) {
    switch (state_) {
      case state::closed: return complete(std::move(p), error::closed);
      case state::idle:
      case state::backoff: return complete(std::move(p), error::not_connected);
      default: break;
    }
    if (waiting_.size() + in_flight_.size() >= cfg_.max_requests) return complete(std::move(p), error::queue_full);
    waiting_.push_back(std::move(p));
    if (session_ && waiting_.size() == 1) session_->wake.cancel();
  }

  void do_close() {
    if (state_ == state::closed) return;
    state_ = state::closed;
    connected_ = false;
    backoff_timer_.cancel();
    if (session_) end_session(*session_);
    fail_all(in_flight_, error::closed);
    fail_all(waiting_, error::closed);
  }

  void end_session(session& s) {
    if (s.done) return;
    s.done = true;
    error_code ignored;
    s.socket.shutdown(asio::socket_base::shutdown_both, ignored);
    s.socket.close(ignored);
    s.wake.cancel();
    s.watchdog.cancel();
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    auto delay = cfg_.reconnect_min;
    while (state_ != state::closed) {
      state_ = state::connecting;
      auto s = std::make_shared<session>(strand_);
      auto ec = co_await connect(s);
      if (state_ == state::closed) break;
      if (!ec) {
        session_ = s;
        state_ = state::connected;
        connected_ = true;
        ++generation_;
        connects_.fetch_add(1, std::memory_order_relaxed);
        delay = cfg_.reconnect_min;
        asio::co_spawn(strand_, write_loop(s), asio::detached);
        if (cfg_.response_timeout.count() > 0) asio::co_spawn(strand_, watch(s), asio::detached);
        ec = co_await read_loop(*s);
        end_session(*s);
        session_.reset();
        connected_ = false;
        if (state_ == state::closed) break;
        if (s->timed_out) {
          ec = error::response_timeout;
          set_error("No reply from Redis within " + std::to_string(cfg_.response_timeout.count()) + " ms");
          fail_all(in_flight_, ec);
        } else {
          set_error(ec.message());
        }
      }
      failures_.fetch_add(1, std::memory_order_relaxed);
      state_ = state::backoff;
      fail_all(in_flight_, error::connection_lost);
      fail_all(waiting_, error::not_connected);
      backoff_timer_.expires_after(delay);
      co_await backoff_timer_.async_wait(tuple_awaitable);
      delay = std::min(cfg_.reconnect_max, delay * 2);
    }
  }

  // Resolves, connects and logs in, within the connect timeout.
  asio::awaitable<error_code> connect(std::shared_ptr<session> s) {
    auto self = shared_from_this();
    asio::steady_timer watchdog(strand_, cfg_.connect_timeout);
    auto timed_out = std::make_shared<bool>(false);
    watchdog.async_wait([s, timed_out, self](error_code ec) {
      if (ec) return;
      *timed_out = true;
      error_code ignored;
      s->socket.close(ignored);
    });
    // Name resolution is not interrupted by the watchdog; the OS resolver bounds it.
    auto ec = co_await open_socket(*s);
    if (!ec && !*timed_out) ec = co_await handshake(*s);
    watchdog.cancel();
    if (*timed_out) ec = error::connect_timeout;
    if (ec && ec != error::handshake_failed) set_error(ec.message());
    co_return ec;
  }

  asio::awaitable<error_code> open_socket(session& s) {
    if (addr_.kind == address::transport::unix_socket) {
      asio::generic::stream_protocol::endpoint ep{asio::local::stream_protocol::endpoint(addr_.path)};
      auto [ec] = co_await s.socket.async_connect(ep, tuple_awaitable);
      co_return ec;
    }
    asio::ip::tcp::resolver resolver(strand_);
    auto [rec, results] =
        co_await resolver.async_resolve(addr_.host, std::to_string(addr_.port), tuple_awaitable);
    if (rec) co_return rec;
    error_code last = asio::error::host_not_found;
    for (const auto& entry : results) {
      error_code ignored;
      s.socket.close(ignored);
      asio::generic::stream_protocol::endpoint ep{entry.endpoint()};
      auto [ec] = co_await s.socket.async_connect(ep, tuple_awaitable);
      if (!ec) {
        s.socket.set_option(asio::ip::tcp::no_delay(true), ignored);
        co_return error_code{};
      }
      last = ec;
      if (state_ == state::closed) break;
    }
    co_return last;
  }

  asio::awaitable<error_code> handshake(session& s) {
    request req;
    if (!addr_.password.empty()) {
      if (addr_.user.empty())
        req.push({"AUTH", addr_.password});
      else
        req.push({"AUTH", addr_.user, addr_.password});
    }
    if (addr_.database != 0) {
      auto db = std::to_string(addr_.database);
      req.push({"SELECT", db});
    }
    if (!cfg_.client_name.empty()) req.push({"CLIENT", "SETNAME", cfg_.client_name});
    if (req.empty()) co_return error_code{};
    auto [wec, n] = co_await asio::async_write(s.socket, asio::buffer(req.payload()), tuple_awaitable);
    if (wec) co_return wec;
    detail::reply_parser parser(cfg_.max_read_buffer);
    std::array<char, 4096> buf;
    std::size_t got = 0;
    while (got < req.commands()) {
      auto [rec, r] = co_await s.socket.async_read_some(asio::buffer(buf), tuple_awaitable);
      if (rec) co_return rec;
      if (auto ec = parser.feed(buf.data(), r)) co_return ec;
      for (;;) {
        std::optional<value> v;
        if (auto ec = parser.next(v)) co_return ec;
        if (!v) break;
        ++got;
        if (v->is_error()) {
          set_error("Redis refused the handshake: " + v->text);
          co_return error::handshake_failed;
        }
      }
    }
    co_return error_code{};
  }

  // Ends the session when the oldest request written has waited `response_timeout` for its
  // reply (replies come in order, so the front of `in_flight_` is the oldest). One timer per
  // connection, re-armed per oldest request, not per request.
  asio::awaitable<void> watch(std::shared_ptr<session> s) {
    auto self = shared_from_this();
    const auto limit = cfg_.response_timeout;
    while (!s->done) {
      const auto now = clock::now();
      if (!in_flight_.empty() && now - in_flight_.front()->written_at >= limit) {
        s->timed_out = true;
        end_session(*s);
        co_return;
      }
      s->watchdog.expires_at(in_flight_.empty() ? now + limit : in_flight_.front()->written_at + limit);
      co_await s->watchdog.async_wait(tuple_awaitable);
    }
  }

  asio::awaitable<void> write_loop(std::shared_ptr<session> s) {
    auto self = shared_from_this();
    for (;;) {
      if (s->done) co_return;
      if (waiting_.empty()) {
        s->wake.expires_at(clock::time_point::max());
        co_await s->wake.async_wait(tuple_awaitable);
        continue;
      }
      s->write_buffer.clear();
      const auto now = clock::now();
      while (!waiting_.empty()) {
        auto p = std::move(waiting_.front());
        waiting_.pop_front();
        s->write_buffer += p->req.payload();
        p->req = request();
        p->written_at = now;
        in_flight_.push_back(std::move(p));
      }
      writes_.fetch_add(1, std::memory_order_relaxed);
      auto [ec, n] = co_await asio::async_write(s->socket, asio::buffer(s->write_buffer), tuple_awaitable);
      if (ec) {
        // The reader sees the closed socket and ends the session.
        end_session(*s);
        co_return;
      }
    }
  }

  asio::awaitable<error_code> read_loop(session& s) {
    detail::reply_parser parser(cfg_.max_read_buffer);
    std::vector<char> buf(64 * 1024);
    for (;;) {
      auto [ec, n] = co_await s.socket.async_read_some(asio::buffer(buf), tuple_awaitable);
      if (ec) co_return error_code(error::connection_lost);
      if (auto fe = parser.feed(buf.data(), n)) co_return fe;
      std::size_t completed = 0;
      for (;;) {
        std::optional<value> v;
        if (auto pe = parser.next(v)) co_return pe;
        if (!v) break;
        if (completed == replies_per_turn) {
          completed = 0;
          co_await asio::post(strand_, asio::use_awaitable);
          if (s.done) co_return error_code(error::connection_lost);
        }
        if (in_flight_.empty()) co_return error_code(error::protocol_error);
        auto& front = *in_flight_.front();
        front.replies.push_back(std::move(*v));
        if (front.replies.size() == front.expected) {
          auto done = std::move(in_flight_.front());
          in_flight_.pop_front();
          complete(std::move(done), {});
          ++completed;
        }
      }
    }
  }
};

connection::connection(executor_type ex, connection_config cfg) {
  auto addr = parse_url(cfg.url);
  if (!addr) throw std::invalid_argument("river::redis::connection: invalid Redis URL: " + cfg.url);
  impl_ = std::make_shared<impl>(std::move(ex), std::move(cfg), std::move(*addr));
}

connection::~connection() { close(); }

connection::executor_type connection::get_executor() const noexcept { return impl_->ex_; }

void connection::start() {
  asio::dispatch(impl_->strand_, [self = impl_] {
    if (self->state_ != impl::state::idle) return;
    self->state_ = impl::state::connecting;
    asio::co_spawn(self->strand_, self->run(), asio::detached);
  });
}

void connection::close() {
  asio::dispatch(impl_->strand_, [self = impl_] { self->do_close(); });
}

bool connection::connected() const noexcept { return impl_->connected_; }
std::uint64_t connection::generation() const noexcept { return impl_->generation_; }

connection::stats connection::get_stats() const {
  const auto& i = *impl_;
  stats s;
  s.requests = i.requests_.load(std::memory_order_relaxed);
  s.commands = i.commands_.load(std::memory_order_relaxed);
  s.writes = i.writes_.load(std::memory_order_relaxed);
  s.connects = i.connects_.load(std::memory_order_relaxed);
  s.failures = i.failures_.load(std::memory_order_relaxed);
  return s;
}

std::string connection::last_error() const {
  std::lock_guard lk(impl_->error_mutex_);
  return impl_->last_error_;
}

void connection::exec_impl(request req, handler_type handler) {
  auto p = std::make_unique<impl::pending>(std::move(req), std::move(handler));
  asio::post(impl_->strand_, [self = impl_, p = std::move(p)]() mutable {
    if (p->expected == 0) return self->complete(std::move(p), {});
    self->enqueue(std::move(p));
  });
}

}  // namespace river::redis
