#pragma once

// A small raw HTTP/1.1 client for server tests: it sends bytes exactly as given and reads the
// response with Beast's parser, so tests control every byte of a request (hostile ones too) and
// see the dechunked body of an event stream as it arrives.

#include "support/sse_parsers.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cctype>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace river::test {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;

/// Percent-encodes a query parameter value (as encodeURIComponent does).
inline std::string url_encode(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '!' || c == '*' || c == '\'' ||
        c == '(' || c == ')') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char hex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

/// A POST start request, as the TypeScript client sends it by default (text/plain).
inline std::string post_request(std::string_view path, std::string_view body,
                                std::string_view content_type = "text/plain;charset=UTF-8",
                                std::string_view extra = {}) {
  std::string r = "POST " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!content_type.empty()) r += "Content-Type: " + std::string(content_type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += extra;
  r += "\r\n";
  r += body;
  return r;
}

/// A GET resume request; `after` goes in the `lastEventId` query parameter.
inline std::string get_request(std::string_view path, std::string_view token,
                               std::optional<std::string> after = std::nullopt, std::string_view extra = {}) {
  std::string r = "GET " + std::string(path) + "?resumeKey=" + url_encode(token);
  if (after) r += "&lastEventId=" + url_encode(*after);
  r += " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  r += extra;
  r += "\r\n";
  return r;
}

/// A DELETE cancel request.
inline std::string delete_request(std::string_view path, std::string_view token) {
  return "DELETE " + std::string(path) + "?resumeKey=" + url_encode(token) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
}

/// One client connection.
class http_connection {
 public:
  explicit http_connection(const asio::any_io_executor& ex) : socket_(ex) {}

  tcp::socket& socket() noexcept { return socket_; }

  /// Connects; returns the error, if any.
  asio::awaitable<boost::system::error_code> connect(tcp::endpoint ep) {
    auto [ec] = co_await socket_.async_connect(ep, asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }

  /// Sends bytes as they are.
  asio::awaitable<boost::system::error_code> send(std::string bytes) {
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }

  /// Reads the status line and the header fields of the next response.
  asio::awaitable<boost::system::error_code> read_head() {
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    auto [ec, n] = co_await beast_http::async_read_header(socket_, buffer_, *parser_, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }

  /// Reads more of the body; false once the response is complete or the connection failed.
  asio::awaitable<bool> read_some() {
    if (parser_->is_done()) co_return false;
    auto [ec, n] = co_await beast_http::async_read_some(socket_, buffer_, *parser_, asio::as_tuple(asio::use_awaitable));
    (void)n;
    if (ec) {
      error_ = ec;
      co_return false;
    }
    co_return true;
  }

  /// Reads the rest of the response.
  asio::awaitable<void> read_to_end() {
    // GCC 12 mishandles co_await in a loop condition: test inside the body.
    for (;;) {
      const bool more = co_await read_some();
      if (!more) break;
    }
  }

  /// Reads until the body holds at least `n` events (data messages), or the response ends.
  asio::awaitable<void> read_events(std::size_t n) {
    for (;;) {
      if (parse_like_river_client(body()).size() >= n) break;
      const bool more = co_await read_some();
      if (!more) break;
    }
  }

  unsigned status() const { return parser_->get().result_int(); }
  std::string header(std::string_view name) const {
    auto it = parser_->get().find(name);
    return it == parser_->get().end() ? std::string() : std::string(it->value());
  }
  bool has_header(std::string_view name) const { return parser_->get().find(name) != parser_->get().end(); }
  /// The body so far, dechunked.
  std::string& body() { return parser_->get().body(); }
  bool done() const { return parser_ && parser_->is_done(); }
  bool keep_alive() const { return parser_->get().keep_alive(); }
  boost::system::error_code error() const { return error_; }

  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  std::optional<beast_http::response_parser<beast_http::string_body>> parser_;
  boost::system::error_code error_;
};

/// A whole exchange: status, a few fields, and the dechunked body.
struct http_reply {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  bool complete = false;
  bool keep_alive = false;
  boost::system::error_code error;
};

/// Connects, sends `bytes`, reads one whole response.
inline asio::awaitable<http_reply> exchange(tcp::endpoint ep, std::string bytes) {
  http_connection c(co_await asio::this_coro::executor);
  http_reply r;
  if ((r.error = co_await c.connect(ep))) co_return r;
  if ((r.error = co_await c.send(std::move(bytes)))) co_return r;
  if ((r.error = co_await c.read_head())) co_return r;
  co_await c.read_to_end();
  r.status = c.status();
  r.content_type = c.header("Content-Type");
  r.body = c.body();
  r.complete = c.done();
  r.keep_alive = c.keep_alive();
  r.error = c.error();
  co_return r;
}

}  // namespace river::test
