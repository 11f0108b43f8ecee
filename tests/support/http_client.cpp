#include "support/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <limits>

namespace river::test {

namespace beast_http = boost::beast::http;

struct http_connection::impl {
  explicit impl(const asio::any_io_executor& ex) : socket(ex) {}
  tcp::socket socket;
  boost::beast::flat_buffer buffer;
  std::optional<beast_http::response_parser<beast_http::string_body>> parser;
  boost::system::error_code error;
};

http_connection::http_connection(const asio::any_io_executor& ex) : impl_(std::make_unique<impl>(ex)) {}
http_connection::~http_connection() = default;

tcp::socket& http_connection::socket() noexcept { return impl_->socket; }

asio::awaitable<boost::system::error_code> http_connection::connect(tcp::endpoint ep) {
  auto [ec] = co_await impl_->socket.async_connect(ep, asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

asio::awaitable<boost::system::error_code> http_connection::send(std::string bytes) {
  auto [ec, n] = co_await asio::async_write(impl_->socket, asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
  (void)n;
  co_return ec;
}

asio::awaitable<boost::system::error_code> http_connection::read_head() {
  auto& p = impl_->parser.emplace();
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  auto [ec, n] =
      co_await beast_http::async_read_header(impl_->socket, impl_->buffer, p, asio::as_tuple(asio::use_awaitable));
  (void)n;
  co_return ec;
}

asio::awaitable<bool> http_connection::read_some() {
  if (impl_->parser->is_done()) co_return false;
  auto [ec, n] = co_await beast_http::async_read_some(impl_->socket, impl_->buffer, *impl_->parser,
                                                      asio::as_tuple(asio::use_awaitable));
  (void)n;
  if (ec) {
    impl_->error = ec;
    co_return false;
  }
  co_return true;
}

asio::awaitable<boost::system::error_code> http_connection::open(tcp::endpoint ep, std::string bytes) {
  auto ec = co_await connect(ep);
  if (!ec) ec = co_await send(std::move(bytes));
  if (!ec) ec = co_await read_head();
  co_return ec;
}

asio::awaitable<void> http_connection::read_to_end() {
  // GCC 12 mishandles co_await in a loop condition: test inside the body.
  for (;;) {
    const bool more = co_await read_some();
    if (!more) break;
  }
}

asio::awaitable<void> http_connection::read_events(std::size_t n) {
  for (;;) {
    if (parse_like_river_client(body()).size() >= n) break;
    const bool more = co_await read_some();
    if (!more) break;
  }
}

unsigned http_connection::status() const { return impl_->parser->get().result_int(); }

std::string http_connection::header(std::string_view name) const {
  const auto& res = impl_->parser->get();
  auto it = res.find(name);
  return it == res.end() ? std::string() : std::string(it->value());
}

bool http_connection::has_header(std::string_view name) const {
  const auto& res = impl_->parser->get();
  return res.find(name) != res.end();
}

std::string& http_connection::body() { return impl_->parser->get().body(); }
bool http_connection::done() const { return impl_->parser && impl_->parser->is_done(); }
bool http_connection::keep_alive() const { return impl_->parser->get().keep_alive(); }
boost::system::error_code http_connection::error() const { return impl_->error; }

void http_connection::close() {
  boost::system::error_code ignored;
  impl_->socket.shutdown(tcp::socket::shutdown_both, ignored);
  impl_->socket.close(ignored);
}

asio::awaitable<http_reply> exchange(tcp::endpoint ep, std::string bytes) {
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
