// The README's quick start up to its router: a fragment that follows it continues its `main`.
#include <river/http/server.hpp>
#include <river/river.hpp>

#include <boost/asio.hpp>
#include <boost/describe/class.hpp>

#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;

struct ask {
  std::string question;
};
BOOST_DESCRIBE_STRUCT(ask, (), (question))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ask, question)

asio::awaitable<void> answer(river::run_context<ask, std::string>& ctx) {
  const std::vector<std::string> words = {"It ", "depends."};
  for (const auto& word : words) co_await ctx.append(word);
}

int main() {
  river::router routes;
  routes.add("ask", river::stream<ask, std::string>().runner(answer));
// @snippet
}
