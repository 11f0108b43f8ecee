// An existing Beast application's session coroutine, after it read `req` from `stream`: a
// fragment here runs with the application's `caller` and decides the connection's `action`.
#include <river/http/handler.hpp>
#include <river/river.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace asio = boost::asio;

asio::awaitable<river::http::connection_action> session(river::caller& caller, boost::beast::tcp_stream& stream,
                                                        river::http::request req) {
  auto action = river::http::connection_action::close;
// @snippet
  co_return action;
}
