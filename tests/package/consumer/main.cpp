// A program that uses the installed River package: one in-process run, read to its end.
#include <river/http/client.hpp>
#include <river/river.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
  namespace asio = boost::asio;
  using json = nlohmann::json;
  river::router routes;
  routes.add("count", river::stream<json, int>().runner([](river::run_context<json, int>& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) co_await ctx.append(i);
  }));
  asio::io_context io;
  river::caller caller(io.get_executor(), routes);
  int chunks = 0;
  std::string last;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    json input = json::object();
    auto events = (co_await caller.start("count", input)).value();
    while (auto ev = co_await events.next()) {
      if (ev->chunk()) ++chunks;
      if (ev->kind() == river::event_kind::end) last = "stream_end";
    }
  }, asio::detached);
  io.run();
  // The compiled HTTP client links too (Beast, Boost.URL, OpenSSL).
  river::http::client client(io.get_executor(), "https://127.0.0.1:8443/api/river");
  std::cout << "consumer: " << chunks << " chunks, " << last << ", client for " << client.url() << "\n";
  return chunks == 3 && last == "stream_end" ? 0 : 1;
}
