// Starts a run of a small stream in process, prints its events as they arrive, then resumes the
// same run from the middle with its token, the way a reconnecting client would.

#include <river/river.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/describe/class.hpp>

#include <chrono>
#include <iostream>
#include <sstream>

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct greet_input {
  std::string name;
};
BOOST_DESCRIBE_STRUCT(greet_input, (), (name))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(greet_input, name)

struct token_chunk {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(token_chunk, text)

using greet_context = river::run_context<greet_input, token_chunk>;

// A runner that "types" a greeting word by word.
asio::awaitable<void> greet(greet_context& ctx) {
  std::istringstream words("Hello " + ctx.input().name + ", this answer is durable and resumable.");
  asio::steady_timer delay(ctx.get_executor());
  for (std::string word; words >> word;) {
    delay.expires_after(20ms);
    co_await delay.async_wait(asio::use_awaitable);
    token_chunk chunk{word + " "};
    co_await ctx.append(chunk);
  }
}

asio::awaitable<void> demo(river::caller& caller) {
  nlohmann::json input = {{"name", "River"}};
  // Typed: chunks are read back as token_chunk.
  auto events = (co_await caller.start<token_chunk>("greet", input)).value();
  std::cout << "run " << events.run_id() << "\n";
  std::string middle;
  int seen = 0;
  while (auto ev = co_await events.next()) {
    std::cout << "  [" << ev->position << "] " << river::to_json_text(*ev) << "\n";
    if (++seen == 4) middle = ev->position;
  }
  std::cout << "resumed after position " << middle << ":\n  ";
  auto again = (co_await caller.resume<token_chunk>(events.resumption_token(), middle)).value();
  while (auto ev = co_await again.next()) {
    if (auto chunk = ev->chunk()) std::cout << chunk->text;
  }
  std::cout << "\n";
  // A dashboard joining the finished run at its tail: the last two events only.
  auto tail = (co_await caller.resume(events.resumption_token(), river::read_from::last(2))).value();
  while (auto ev = co_await tail.next()) std::cout << "  tail [" << ev->position << "] " << river::to_json_text(*ev) << "\n";

  nlohmann::json bad = {{"name", 42}};
  auto refused = co_await caller.start("greet", bad);
  std::cout << "invalid input is refused: " << river::to_json_text(refused.error()) << "\n";
}

int main() {
  river::router routes;
  routes.add("greet", river::stream<greet_input, token_chunk>().runner(greet));
  asio::io_context io;
  river::caller caller(io.get_executor(), routes);
  int status = 1;
  asio::co_spawn(io, demo(caller), [&](std::exception_ptr e) {
    status = 0;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "failed: " << ex.what() << "\n";
        status = 1;
      }
    }
  });
  io.run();
  return status;
}
