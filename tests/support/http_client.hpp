#pragma once

// A small raw HTTP/1.1 client for server tests: it sends bytes exactly as given and reads the
// response with Beast's parser, so tests control every byte of a request (hostile ones too) and
// see the dechunked body of an event stream as it arrives. Compiled once (http_client.cpp).

#include "support/sse_parsers.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace river::test {

namespace asio = boost::asio;
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

/// One client connection. Its reading side is Beast's response parser, compiled once in
/// http_client.cpp rather than in every test.
class http_connection {
 public:
  explicit http_connection(const asio::any_io_executor& ex);
  ~http_connection();
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  tcp::socket& socket() noexcept;

  /// Connects; returns the error, if any.
  asio::awaitable<boost::system::error_code> connect(tcp::endpoint ep);
  /// Sends bytes as they are.
  asio::awaitable<boost::system::error_code> send(std::string bytes);
  /// Reads the status line and the header fields of the next response.
  asio::awaitable<boost::system::error_code> read_head();
  /// Connects, sends `bytes` and reads the response's head: the first error, if any.
  asio::awaitable<boost::system::error_code> open(tcp::endpoint ep, std::string bytes);
  /// Reads more of the body; false once the response is complete or the connection failed.
  asio::awaitable<bool> read_some();
  /// Reads the rest of the response.
  asio::awaitable<void> read_to_end();
  /// Reads until the body holds at least `n` events (data messages), or the response ends.
  asio::awaitable<void> read_events(std::size_t n);

  unsigned status() const;
  /// A header field of the response; empty when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  /// The body so far, dechunked.
  std::string& body();
  bool done() const;
  bool keep_alive() const;
  boost::system::error_code error() const;
  void close();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
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
asio::awaitable<http_reply> exchange(tcp::endpoint ep, std::string bytes);

}  // namespace river::test
