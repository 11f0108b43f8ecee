// The README's quick start, compiled so that it stays true.
#include <river/river.hpp>

#include <boost/asio.hpp>
#include <boost/describe/class.hpp>

#include <iostream>

namespace asio = boost::asio;

struct ask {
  std::string question;
};
BOOST_DESCRIBE_STRUCT(ask, (), (question))  // optional: names mistyped fields in errors
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ask, question)

asio::awaitable<void> answer(river::run_context<ask, std::string>& ctx) {
  const std::vector<std::string> words = {"It ", "depends."};
  for (const auto& word : words) co_await ctx.append(word);
}  // returning ends the run with stream_end; a throw ends it with stream_fatal_error

int main() {
  river::router routes;
  routes.add("ask", river::stream<ask, std::string>().runner(answer));  // in-memory provider

  asio::io_context io;
  river::caller caller(io.get_executor(), routes);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    nlohmann::json input = {{"question", "Why?"}};
    auto events = (co_await caller.start("ask", input)).value();
    while (auto ev = co_await events.next()) std::cout << river::to_json_text(*ev) << "\n";
    // Later, anywhere in the process: the same events again, from any position.
    auto again = (co_await caller.resume(events.resumption_token(), "2")).value();
    while (auto ev = co_await again.next()) std::cout << "again: " << river::to_json_text(*ev) << "\n";
  }, asio::detached);
  io.run();
}
