// A producer for the lease tests: starts a run on the Redis provider, appends two records,
// prints "ready", then keeps its lease alive until it is killed.
//   river_redis_producer URL STORAGE RUN_ID PRODUCER_LOST_TIMEOUT_MS

#include <river/redis/provider.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  namespace asio = boost::asio;
  if (argc != 5) {
    std::cerr << "usage: river_redis_producer URL STORAGE RUN_ID PRODUCER_LOST_TIMEOUT_MS\n";
    return 2;
  }
  asio::io_context io;
  river::redis::config cfg;
  cfg.url = argv[1];
  cfg.storage_id = argv[2];
  cfg.producer_lost_timeout = std::chrono::milliseconds(std::stol(argv[4]));
  river::redis::provider p(io.get_executor(), cfg);
  std::shared_ptr<river::log_writer> writer;
  int status = 1;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto log = co_await p.create_log(argv[3], nullptr);
    if (!log) {
      std::cerr << log.error().message << "\n";
      io.stop();
      co_return;
    }
    writer = log->writer;
    auto a = co_await writer->append(R"({"type":"chunk","chunk":1})", false);
    auto b = co_await writer->append(R"({"type":"chunk","chunk":2})", false);
    if (!a || !b) {
      io.stop();
      co_return;
    }
    std::cout << "ready" << std::endl;
    status = 0;
  }, asio::detached);
  io.run();  // runs until killed: the provider renews the lease
  return status;
}
