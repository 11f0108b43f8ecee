// The body of a runner whose chunks are `token_chunk`, with a `word` to append.
#include <river/river.hpp>

#include <boost/asio.hpp>

#include <string>

namespace asio = boost::asio;

struct token_chunk {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(token_chunk, text)

asio::awaitable<void> runner(river::run_context<nlohmann::json, token_chunk>& ctx, std::string word) {
// @snippet
}
