// The pipelined Redis connection: the multiplexer (sans-I/O) under a mutex, a writer coroutine
// that writes what it queued in one piece, a reader coroutine that hands out replies and pushes,
// and a loop that reconnects.

#include <river/redis/connection.hpp>
#include <river/redis/detail/multiplexer.hpp>

#include <river/detail/strand.hpp>
#include <river/detail/wakeup.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

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
  // A request in the multiplexer, with its caller's handler. Reused: finished ones go back to a
  // free list, so a request costs no allocation of its own in steady state.
  struct pending : detail::mux_entry {
    ~pending() {
      if (handler) handler->discard();
    }
    std::size_t commands = 0;
    detail::reply_handler* handler = nullptr;  // in `memory`
    detail::reply_memory memory;
  };

  // One established connection: its socket and the timer of its response timeout.
  struct session {
    explicit session(const executor& s) : socket(s), watchdog(s) {}
    asio::generic::stream_protocol::socket socket;
    asio::steady_timer watchdog;
    bool done = false;
    bool timed_out = false;  // ended by the watchdog
  };

  enum class state { idle, connecting, connected, backoff, closed };

  impl(executor ex, connection_config c, address a)
      : ex_(std::move(ex)), strand_(river::detail::make_strand(ex_)), cfg_(std::move(c)), addr_(std::move(a)),
        mux_(cfg_.max_read_buffer), backoff_timer_(strand_), write_wake_(strand_), expiry_wake_(strand_) {}

  // Requests still queued when the connection goes away without having closed (its executor
  // stopped before `close` ran there): their entries go with it, their handlers uncalled.
  ~impl() {
    for (auto* e : mux_.reset_in_flight()) delete static_cast<pending*>(e);
    for (auto* e : mux_.reset_waiting()) delete static_cast<pending*>(e);
  }

  executor ex_;
  executor strand_;  // a strand: the loops run on it
  const connection_config cfg_;
  const address addr_;
  std::function<void(value)> on_push_;
  std::function<void()> on_connect_;

  // Guarded by `mutex_`: requests arrive from any thread.
  std::mutex mutex_;
  state state_ = state::idle;
  error_code refused_when_closed_ = error::closed;  // a retired node's connection refuses as not connected
  detail::multiplexer mux_;
  std::vector<std::unique_ptr<pending>> free_;

  // On the strand.
  std::shared_ptr<session> session_;
  asio::steady_timer backoff_timer_;
  river::detail::wakeup write_wake_;   // queued bytes for the writer
  river::detail::wakeup expiry_wake_;  // requests wait for the connection

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

  void set_state(state s) {
    std::lock_guard lk(mutex_);
    state_ = s;
  }

  // Hands the handler its outcome (posted, never inline: it may make the next request) and
  // returns the entry to the free list. Not under `mutex_`.
  void complete(pending* p, error_code ec) {
    response replies;
    if (!ec) {
      requests_.fetch_add(1, std::memory_order_relaxed);
      commands_.fetch_add(p->commands, std::memory_order_relaxed);
      replies = std::move(p->replies);
    }
    // The handler leaves the entry's storage before the entry is free for the next request.
    std::exchange(p->handler, nullptr)->complete(ex_, ec, std::move(replies));
    std::lock_guard lk(mutex_);
    free_.emplace_back(p);
  }

  void fail(std::deque<detail::mux_entry*> entries, error_code ec) {
    for (auto* e : entries) complete(static_cast<pending*>(e), ec);
  }

  // Ends what is in flight (and what waits, with `waiting`) with those errors.
  void fail_queued(error_code in_flight, std::optional<error_code> waiting) {
    std::deque<detail::mux_entry*> flying, queued;
    {
      std::lock_guard lk(mutex_);
      flying = mux_.reset_in_flight();
      if (waiting) queued = mux_.reset_waiting();
    }
    fail(std::move(flying), in_flight);
    if (waiting) fail(std::move(queued), *waiting);
  }

  void exec(const request& req, detail::reply_handler_source& handler, detail::multiplexer::bytes how) {
    error_code refused;
    pending* p = nullptr;
    bool wake = false;
    {
      std::lock_guard lk(mutex_);
      switch (state_) {
        case state::closed: refused = refused_when_closed_; break;
        case state::idle: refused = error::not_connected; break;
        case state::backoff:
          if (cfg_.wait_for_connection.count() <= 0) {
            refused = error::not_connected;
            break;
          }
          [[fallthrough]];
        default:
          if (mux_.waiting() + mux_.in_flight() >= cfg_.max_requests) refused = error::queue_full;
      }
      if (!refused) {
        if (free_.empty()) {
          p = new pending;
        } else {
          p = free_.back().release();
          free_.pop_back();
        }
        p->handler = handler.place(p->memory);
        p->commands = req.commands();
        wake = !mux_.has_pending_write();
        if (state_ == state::backoff) expiry_wake_.notify();  // it waits for the connection: a bound
        if (!mux_.add(req, *p, clock::now(), how)) {
          // No reply to wait for.
          std::exchange(p->handler, nullptr)->complete(ex_, error_code{}, response{});
          free_.emplace_back(p);
          return;
        }
      }
    }
    if (refused) {
      // The handler is out of this memory before `complete` returns.
      detail::reply_memory scratch;
      handler.place(scratch)->complete(ex_, refused, response{});
      return;
    }
    if (wake) write_wake_.notify();
  }

  // Ends the connection for good: requests under way fail with `in_flight`, waiting ones with
  // `waiting`.
  void do_close(error_code in_flight, error_code waiting) {
    {
      std::lock_guard lk(mutex_);
      if (state_ == state::closed) return;
      state_ = state::closed;
      refused_when_closed_ = waiting;
    }
    connected_ = false;
    backoff_timer_.cancel();
    if (session_) end_session(*session_);
    write_wake_.notify();
    expiry_wake_.notify();
    fail_queued(in_flight, waiting);
  }

  void end_session(session& s) {
    if (s.done) return;
    s.done = true;
    error_code ignored;
    s.socket.shutdown(asio::socket_base::shutdown_both, ignored);
    s.socket.close(ignored);
    s.watchdog.cancel();
    write_wake_.notify();
  }

  bool is_closed() {
    std::lock_guard lk(mutex_);
    return state_ == state::closed;
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    auto delay = cfg_.reconnect_min;
    while (!is_closed()) {
      set_state(state::connecting);
      auto s = std::make_shared<session>(strand_);
      auto ec = co_await connect(s);
      if (is_closed()) break;
      if (!ec) {
        session_ = s;
        set_state(state::connected);
        connected_ = true;
        ++generation_;
        connects_.fetch_add(1, std::memory_order_relaxed);
        delay = cfg_.reconnect_min;
        if (on_connect_) on_connect_();
        asio::co_spawn(strand_, write_loop(s), asio::detached);
        if (cfg_.response_timeout.count() > 0) asio::co_spawn(strand_, watch(s), asio::detached);
        ec = co_await read_loop(*s);
        end_session(*s);
        session_.reset();
        connected_ = false;
        if (is_closed()) break;
        if (s->timed_out) {
          ec = error::response_timeout;
          set_error("No reply from Redis within " + std::to_string(cfg_.response_timeout.count()) + " ms");
        } else {
          set_error(ec.message());
        }
        if (s->timed_out) fail_queued(error::response_timeout, std::nullopt);
      }
      failures_.fetch_add(1, std::memory_order_relaxed);
      set_state(state::backoff);
      // What was in flight may have run: its callers decide. What waits keeps waiting when
      // requests may wait for the connection (`expiry_loop` bounds it).
      if (cfg_.wait_for_connection.count() > 0)
        fail_queued(error::connection_lost, std::nullopt);
      else
        fail_queued(error::connection_lost, error_code(error::not_connected));
      expiry_wake_.notify();
      backoff_timer_.expires_after(delay);
      co_await backoff_timer_.async_wait(tuple_awaitable);
      delay = std::min(cfg_.reconnect_max, delay * 2);
    }
  }

  // While the connection is down, fails the requests that waited for it longer than
  // `wait_for_connection`.
  asio::awaitable<void> expiry_loop() {
    auto self = shared_from_this();
    const auto limit = cfg_.wait_for_connection;
    for (;;) {
      std::optional<clock::time_point> oldest;
      std::deque<detail::mux_entry*> expired;
      {
        std::lock_guard lk(mutex_);
        if (state_ == state::closed) co_return;
        if (state_ != state::connected) {
          expired = mux_.expire_waiting(clock::now() - limit);
          if (const auto* e = mux_.oldest_waiting()) oldest = e->queued_at + limit;
        }
      }
      fail(std::move(expired), error::not_connected);
      (void)co_await expiry_wake_.wait(oldest.value_or(clock::time_point::max()));
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
    auto [rec, results] = co_await resolver.async_resolve(addr_.host, std::to_string(addr_.port), tuple_awaitable);
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
      if (is_closed()) break;
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
    // A Redis that is still loading its data (after a restart) answers PING with `-LOADING`: the
    // connection is not up until it serves, so requests wait for it instead of failing.
    req.push({"PING"});
    auto [wec, n] = co_await asio::async_write(s.socket, asio::buffer(req.payload()), tuple_awaitable);
    if (wec) co_return wec;
    detail::reply_parser parser(cfg_.max_read_buffer);
    std::array<char, 4096> buf;
    std::size_t got = 0;
    while (got < req.expected_replies()) {
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

  // Ends the session when the request in flight the longest has waited `response_timeout` for
  // its reply. One timer per connection, re-armed per oldest request, not per request.
  asio::awaitable<void> watch(std::shared_ptr<session> s) {
    auto self = shared_from_this();
    const auto limit = cfg_.response_timeout;
    while (!s->done) {
      const auto now = clock::now();
      std::optional<clock::time_point> oldest;
      {
        std::lock_guard lk(mutex_);
        if (const auto* e = mux_.oldest_in_flight()) oldest = e->written_at;
      }
      if (oldest && now - *oldest >= limit) {
        s->timed_out = true;
        end_session(*s);
        co_return;
      }
      s->watchdog.expires_at(oldest ? *oldest + limit : now + limit);
      co_await s->watchdog.async_wait(tuple_awaitable);
    }
  }

  asio::awaitable<void> write_loop(std::shared_ptr<session> s) {
    auto self = shared_from_this();
    std::vector<asio::const_buffer> buffers;
    for (;;) {
      if (s->done) co_return;
      buffers.clear();
      {
        std::lock_guard lk(mutex_);
        if (mux_.has_pending_write())
          for (auto piece : mux_.prepare_write()) buffers.emplace_back(piece.data(), piece.size());
      }
      if (buffers.empty()) {
        (void)co_await write_wake_.wait(clock::time_point::max());
        continue;
      }
      writes_.fetch_add(1, std::memory_order_relaxed);
      auto [ec, n] = co_await asio::async_write(s->socket, buffers, tuple_awaitable);
      if (ec) {
        // The reader sees the closed socket and ends the session.
        end_session(*s);
        co_return;
      }
    }
  }

  asio::awaitable<error_code> read_loop(session& s) {
    std::vector<char> buf(64 * 1024);
    std::vector<pending*> done;
    std::vector<value> pushes;
    for (;;) {
      auto [ec, n] = co_await s.socket.async_read_some(asio::buffer(buf), tuple_awaitable);
      if (ec) co_return error_code(error::connection_lost);
      {
        std::lock_guard lk(mutex_);
        if (auto fe = mux_.feed(buf.data(), n)) co_return fe;
      }
      for (;;) {
        error_code pe;
        {
          std::lock_guard lk(mutex_);
          while (done.size() < replies_per_turn) {
            detail::multiplexer::event ev;
            if ((pe = mux_.next(ev))) break;
            if (ev.type == detail::multiplexer::event::kind::none) break;
            if (ev.type == detail::multiplexer::event::kind::push)
              pushes.push_back(std::move(ev.message));
            else
              done.push_back(static_cast<pending*>(ev.entry));
          }
        }
        for (auto& m : pushes)
          if (on_push_) on_push_(std::move(m));
        pushes.clear();
        const bool full_turn = done.size() == replies_per_turn;
        for (auto* p : done) complete(p, {});
        done.clear();
        if (pe) co_return pe;
        if (!full_turn) break;
        // Let the callers of those replies run before handing out more.
        co_await asio::post(strand_, asio::use_awaitable);
        if (s.done) co_return error_code(error::connection_lost);
      }
    }
  }
};

connection::connection(executor_type ex, std::string_view url, const connection_config& cfg) {
  auto addr = parse_url(url);
  if (!addr) throw std::invalid_argument("river::redis::connection: invalid Redis URL: " + std::string(url));
  impl_ = std::make_shared<impl>(std::move(ex), cfg, std::move(*addr));
}

connection::connection(executor_type ex, std::string_view url) : connection(std::move(ex), url, connection_config{}) {}

connection::connection(executor_type ex, address where, const connection_config& cfg)
    : impl_(std::make_shared<impl>(std::move(ex), cfg, std::move(where))) {}

connection::~connection() { close(); }

connection::executor_type connection::get_executor() const noexcept { return impl_->ex_; }

void connection::set_push_handler(std::function<void(value)> handler) {
  impl_->on_push_ = std::move(handler);
  std::lock_guard lk(impl_->mutex_);
  impl_->mux_.detect_pushes(true);
}

void connection::set_connect_handler(std::function<void()> handler) { impl_->on_connect_ = std::move(handler); }

void connection::start() {
  {
    // Requests made from now on wait for the connection instead of failing.
    std::lock_guard lk(impl_->mutex_);
    if (impl_->state_ != impl::state::idle) return;
    impl_->state_ = impl::state::connecting;
  }
  asio::co_spawn(impl_->strand_, impl_->run(), asio::detached);
  if (impl_->cfg_.wait_for_connection.count() > 0)
    asio::co_spawn(impl_->strand_, impl_->expiry_loop(), asio::detached);
}

void connection::close() {
  asio::dispatch(impl_->strand_, [self = impl_] { self->do_close(error::closed, error::closed); });
}

void connection::retire() {
  asio::dispatch(impl_->strand_, [self = impl_] { self->do_close(error::connection_lost, error::not_connected); });
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

void connection::exec_impl(const request& req, detail::reply_handler_source& handler, bool in_place) {
  impl_->exec(req, handler, in_place ? detail::multiplexer::bytes::referenced : detail::multiplexer::bytes::copied);
}

}  // namespace river::redis
