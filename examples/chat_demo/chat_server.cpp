// chat_server: a River server with a deterministic fake model that answers token by token, and a
// small web page at `/` that streams the answer and picks it up again after a reload.
//
//   chat_server [--host H] [--port P] [--path /api/river] [--delay-ms N] [--threads N]
//               [--cors ORIGIN]... [--secret S] [--tls-cert FILE --tls-key FILE]
//
// It prints `listening on http://H:P` once it accepts connections, and stops gracefully on
// SIGINT or SIGTERM.

#include <river/http/server.hpp>
#include <river/river.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/describe/class.hpp>

#include <charconv>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;

extern const std::string_view river_chat_page;

namespace chat_demo {

struct chat_input {
  std::string message;
};
BOOST_DESCRIBE_STRUCT(chat_input, (), (message))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(chat_input, message)

struct token_chunk {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(token_chunk, text)

}  // namespace chat_demo

namespace {

using chat_demo::chat_input;
using chat_demo::token_chunk;

// The fake model: the same message always gets the same answer, a few sentences picked by a
// hash of the message, split into word tokens (each with its following space).
std::vector<std::string> fake_answer(std::string_view message) {
  static constexpr std::string_view sentences[] = {
      "Rivers keep flowing whether or not anyone watches them.",
      "Every token of this answer is stored before it is sent, so nothing is lost.",
      "Reload the page in the middle and the answer goes on from where it was.",
      "A run belongs to the server, not to the connection that started it.",
      "Positions travel as SSE ids, so a browser can resume by itself.",
      "This model is fake, but the durability is real.",
      "Slow readers never slow the writer or the other readers.",
      "Heartbeats keep proxies from closing an idle stream.",
  };
  constexpr std::size_t count = std::size(sentences);
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : message) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  std::string text = "You said: \"";
  text.append(message.substr(0, 200));
  text.append("\". ");
  for (std::uint64_t i = 1; i <= 4; ++i) {
    text.append(sentences[h % count]);
    text.push_back(' ');
    h = h / count + std::uint64_t{0x9e3779b97f4a7c15} * i;
  }
  text.append("That is all.");
  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(' ', start);
    end = end == std::string::npos ? text.size() : end + 1;
    tokens.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return tokens;
}

std::string html_page(const std::string& endpoint) {
  std::string page(river_chat_page);
  const std::string marker = "\"__RIVER_ENDPOINT__\"";
  const auto at = page.find(marker);
  if (at != std::string::npos) page.replace(at, marker.size(), nlohmann::json(endpoint).dump());
  return page;
}

int usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " [--host H] [--port P] [--path /api/river] [--delay-ms N] [--threads N] [--cors ORIGIN]..."
               " [--secret S] [--tls-cert FILE --tls-key FILE]\n";
  return 2;
}

template <class T>
bool parse_number(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

int main(int argc, char** argv) {
  river::http::server_options options;
  options.address = "127.0.0.1";
  options.port = 8080;
  int delay_ms = 40;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(argv[0]), 0;
    if (i + 1 >= argc) return usage(argv[0]);
    const std::string_view value = argv[++i];
    if (arg == "--host") options.address = std::string(value);
    else if (arg == "--port") { if (!parse_number(value, options.port)) return usage(argv[0]); }
    else if (arg == "--path") options.endpoint.path = std::string(value);
    else if (arg == "--delay-ms") { if (!parse_number(value, delay_ms)) return usage(argv[0]); }
    else if (arg == "--threads") { if (!parse_number(value, options.threads)) return usage(argv[0]); }
    else if (arg == "--cors") options.endpoint.cors_origins.emplace_back(value);
    else if (arg == "--secret") options.endpoint.token_secret = std::string(value);
    else if (arg == "--tls-cert") options.tls_certificate_file = std::string(value);
    else if (arg == "--tls-key") options.tls_private_key_file = std::string(value);
    else return usage(argv[0]);
  }

  river::router routes;
  routes.add("chat", river::stream<chat_input, token_chunk>().runner(
                         [delay_ms](river::run_context<chat_input, token_chunk>& ctx) -> asio::awaitable<void> {
                           asio::steady_timer delay(ctx.get_executor());
                           for (const auto& token : fake_answer(ctx.input().message)) {
                             delay.expires_after(std::chrono::milliseconds(delay_ms));
                             co_await delay.async_wait(asio::use_awaitable);
                             token_chunk chunk{token};
                             co_await ctx.append(chunk);
                           }
                         }));

  const auto page = html_page(options.endpoint.path);
  river::http::route_function pages = [page](const river::http::request& req) -> std::optional<river::http::simple_response> {
    const auto target = req.target();
    const auto path = std::string_view(target.data(), target.size()).substr(0, target.find('?'));
    if (path != "/" && path != "/index.html") return std::nullopt;
    river::http::simple_response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = page;
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  };

  try {
    return river::http::run_server(
        std::move(routes), options,
        [](const river::http::server& s) {
          const auto ep = s.local_endpoint();
          const auto host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
          std::cout << "listening on " << (s.tls() ? "https" : "http") << "://" << host << ":" << ep.port()
                    << std::endl;
        },
        std::move(pages));
  } catch (const std::exception& e) {
    std::cerr << "chat_server: " << e.what() << "\n";
    return 1;
  }
}
