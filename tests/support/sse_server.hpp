#pragma once

// A scripted HTTP server for client tests, on loopback: each request goes to a handler coroutine
// that writes the response byte by byte as the test wants it (event streams with or without
// positions, cut connections, stalls, error statuses), over plain TCP or TLS. Requests are
// recorded for the test to inspect.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace river::test {

namespace asio = boost::asio;
using asio::ip::tcp;

/// A request as the server received it.
struct http_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string server_name;  ///< the TLS SNI name, if any
  int index = 0;            ///< 0 for the server's first request, then 1, ...

  /// A header's value (names compared without case); empty when absent.
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
          }))
        return v;
    return {};
  }
  bool has_header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
          }))
        return true;
    return false;
  }
  /// The target's path, without its query.
  std::string path() const { return target.substr(0, target.find('?')); }
  /// A query parameter, percent-decoded; nullopt when absent.
  std::optional<std::string> query(std::string_view key) const {
    auto q = target.find('?');
    if (q == std::string::npos) return std::nullopt;
    std::string_view rest(target);
    rest.remove_prefix(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      auto part = rest.substr(0, amp);
      auto eq = part.find('=');
      if (part.substr(0, eq) == key)
        return decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
    return std::nullopt;
  }
  static std::string decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(s[i]);
      }
    }
    return out;
  }
};

/// Writes one response as the test scripts it.
class response_writer {
 public:
  response_writer(std::function<asio::awaitable<bool>(std::string)> write, std::function<void()> cut)
      : write_(std::move(write)), cut_(std::move(cut)) {}

  /// The status line and headers. `chunked` frames the body in chunks (ended by `finish`),
  /// otherwise the body ends when the connection closes.
  asio::awaitable<bool> head(int status, std::string content_type = "text/event-stream", bool chunked = false,
                             std::string extra_headers = {}) {
    chunked_ = chunked;
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    if (!content_type.empty()) h += "Content-Type: " + content_type + "\r\n";
    h += "Cache-Control: no-cache\r\nConnection: close\r\n";
    if (chunked) h += "Transfer-Encoding: chunked\r\n";
    h += extra_headers;
    h += "\r\n";
    co_return co_await write_(std::move(h));
  }

  /// A complete response with a body (Content-Length).
  asio::awaitable<bool> respond(int status, std::string body, std::string content_type = "application/json") {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    h += "Content-Type: " + content_type + "\r\nConnection: close\r\n";
    h += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    h += body;
    co_return co_await write_(std::move(h));
  }

  /// Body bytes, as they are (framed as one chunk when chunked).
  asio::awaitable<bool> send(std::string bytes) {
    if (bytes.empty()) co_return true;
    if (chunked_) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
      bytes = size + bytes + "\r\n";
    }
    co_return co_await write_(std::move(bytes));
  }

  /// One event: `data: JSON` and a blank line.
  asio::awaitable<bool> event(std::string_view json) { return send("data: " + std::string(json) + "\n\n"); }
  /// One position: `id: POS` and a blank line.
  asio::awaitable<bool> id(std::string_view pos) { return send("id: " + std::string(pos) + "\n\n"); }

  /// Ends a chunked body.
  asio::awaitable<bool> finish() {
    if (!chunked_) co_return true;
    co_return co_await write_("0\r\n\r\n");
  }

  /// Closes the connection at once, mid-response if need be.
  void cut() { cut_(); }

  static std::string reason(int status) {
    switch (status) {
      case 200:
        return "OK";
      case 204:
        return "No Content";
      case 400:
        return "Bad Request";
      case 403:
        return "Forbidden";
      case 404:
        return "Not Found";
      case 409:
        return "Conflict";
      case 500:
        return "Internal Server Error";
      case 502:
        return "Bad Gateway";
      case 503:
        return "Service Unavailable";
      default:
        return "Status";
    }
  }

 private:
  std::function<asio::awaitable<bool>(std::string)> write_;
  std::function<void()> cut_;
  bool chunked_ = false;
};

/// Serves one request: writes its response. The connection closes when it returns.
using request_handler = std::function<asio::awaitable<void>(const http_request&, response_writer&)>;

/// The server: listens on 127.0.0.1 at a free port, one coroutine per connection, one request per
/// connection. With a TLS context, every connection is TLS.
class scripted_server {
 public:
  scripted_server(asio::any_io_executor ex, request_handler handler, std::shared_ptr<asio::ssl::context> tls = nullptr)
      : s_(std::make_shared<state>(ex, std::move(handler), std::move(tls))) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    s_->acceptor.open(ep.protocol());
    s_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    s_->acceptor.bind(ep);
    s_->acceptor.listen();
    asio::co_spawn(ex, accept_loop(s_), asio::detached);
  }
  scripted_server(const scripted_server&) = delete;
  ~scripted_server() { stop(); }

  unsigned short port() const { return s_->acceptor.local_endpoint().port(); }
  /// `scheme://127.0.0.1:PORT/api/river`
  std::string url(std::string_view scheme = "http", std::string_view host = "127.0.0.1") const {
    return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(port()) + "/api/river";
  }
  /// The requests received so far.
  const std::vector<http_request>& requests() const { return s_->requests; }
  /// TLS handshakes that failed.
  int failed_handshakes() const { return s_->failed_handshakes; }
  /// Connections accepted.
  int connections() const { return s_->connections; }

  /// Stops listening and closes every open connection.
  void stop() {
    error_code ec;
    s_->acceptor.close(ec);
    for (auto& close : s_->closers)
      if (close) close();
    s_->closers.clear();
  }

 private:
  using error_code = boost::system::error_code;
  static constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

  struct state {
    state(asio::any_io_executor ex, request_handler h, std::shared_ptr<asio::ssl::context> t)
        : acceptor(ex), handler(std::move(h)), tls(std::move(t)) {}
    tcp::acceptor acceptor;
    request_handler handler;
    std::shared_ptr<asio::ssl::context> tls;
    std::vector<http_request> requests;
    std::vector<std::function<void()>> closers;
    int failed_handshakes = 0;
    int connections = 0;
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<state> s) {
    for (;;) {
      auto [ec, socket] = co_await s->acceptor.async_accept(use_tuple);
      if (ec) co_return;
      ++s->connections;
      auto sock = std::make_shared<tcp::socket>(std::move(socket));
      s->closers.push_back([weak = std::weak_ptr<tcp::socket>(sock)] {
        if (auto p = weak.lock()) {
          error_code ignored;
          p->close(ignored);
        }
      });
      asio::co_spawn(s->acceptor.get_executor(), session(s, std::move(sock)), asio::detached);
    }
  }

  static asio::awaitable<void> session(std::shared_ptr<state> s, std::shared_ptr<tcp::socket> sock) {
    if (s->tls) {
      asio::ssl::stream<tcp::socket&> stream(*sock, *s->tls);
      auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
      if (ec) {
        ++s->failed_handshakes;
        co_return;
      }
      std::string name;
      if (const char* n = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) name = n;
      co_await serve(s, stream, *sock, std::move(name));
    } else {
      co_await serve(s, *sock, *sock, {});
    }
  }

  template <class Stream>
  static asio::awaitable<void> serve(std::shared_ptr<state> s, Stream& stream, tcp::socket& socket,
                                     std::string server_name) {
    std::string buf;
    auto [ec, n] = co_await asio::async_read_until(stream, asio::dynamic_buffer(buf, 1 << 20), "\r\n\r\n", use_tuple);
    if (ec) co_return;
    http_request req;
    req.server_name = std::move(server_name);
    std::string_view head(buf.data(), n - 4);
    auto line_end = head.find("\r\n");
    std::string_view request_line = head.substr(0, line_end);
    auto sp1 = request_line.find(' ');
    auto sp2 = request_line.rfind(' ');
    req.method = std::string(request_line.substr(0, sp1));
    req.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
    std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      auto end = head.find("\r\n", pos);
      if (end == std::string_view::npos) end = head.size();
      auto line = head.substr(pos, end - pos);
      auto colon = line.find(':');
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      req.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
      pos = end + 2;
    }
    std::size_t length = 0;
    if (auto cl = req.header("Content-Length"); !cl.empty()) length = std::stoul(cl);
    buf.erase(0, n);
    if (buf.size() < length) {
      auto need = length - buf.size();
      auto [rec, rn] = co_await asio::async_read(stream, asio::dynamic_buffer(buf, 1 << 20),
                                                 asio::transfer_exactly(need), use_tuple);
      if (rec) co_return;
    }
    req.body = buf.substr(0, length);
    req.index = static_cast<int>(s->requests.size());
    s->requests.push_back(req);

    bool open = true;
    response_writer writer(
        [&stream, &open](std::string bytes) -> asio::awaitable<bool> {
          if (!open) co_return false;
          auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(bytes), use_tuple);
          if (wec) open = false;
          co_return !wec;
        },
        [&socket, &open] {
          open = false;
          error_code ignored;
          socket.shutdown(tcp::socket::shutdown_both, ignored);
          socket.close(ignored);
        });
    co_await s->handler(req, writer);
    if (open) {
      error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
    }
  }

  std::shared_ptr<state> s_;
};

/// Suspends the calling coroutine for `d`.
inline asio::awaitable<void> pause(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace river::test
