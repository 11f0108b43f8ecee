// chat_server: a River server with a deterministic fake model that answers token by token, and a
// small web page at `/` that streams the answer and picks it up again after a reload.
//
//   chat_server [--host H] [--port P] [--path /api/river] [--delay-ms N] [--threads N]
//               [--cors ORIGIN]... [--secret S] [--tls-cert FILE --tls-key FILE]
//               [--redis URL [--storage-id ID] [--producer-lost-ms N]]
//
// `--redis` takes `redis://...`, `unix:///...` or a Redis Cluster's `redis+cluster://host:port,...`.
//
// Runs live in memory by default. With `--redis URL` they live in Redis, so any number of
// chat_server processes that share one Redis serve the same runs: a run started on one can be
// resumed, followed or cancelled through any other.
//
// It prints `listening on http://H:P` once it accepts connections, and stops gracefully on
// SIGINT or SIGTERM.

#include "fake_model.hpp"

#include <river/http/server.hpp>
#include <river/redis/provider.hpp>
#include <river/river.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/describe/class.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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

std::string html_page(const std::string& endpoint) {
  std::string page(river_chat_page);
  const std::string marker = "\"__RIVER_ENDPOINT__\"";
  const auto at = page.find(marker);
  if (at != std::string::npos) page.replace(at, marker.size(), nlohmann::json(endpoint).dump());
  return page;
}

constexpr std::string_view help_text =
    "  --host H              address to listen on (default 127.0.0.1)\n"
    "  --port P              port to listen on; 0 picks a free one (default 8080)\n"
    "  --path P              the River endpoint's path (default /api/river)\n"
    "  --delay-ms N          pause of the fake model before each token (default 40)\n"
    "  --threads N           I/O threads (default 1)\n"
    "  --cors ORIGIN         allow a page on ORIGIN to call the endpoint (repeatable; * for any)\n"
    "  --secret S            sign resumption tokens with S (give every instance the same one)\n"
    "  --tls-cert FILE, --tls-key FILE   serve HTTPS with this PEM certificate chain and key\n"
    "  --redis URL           keep runs in Redis (redis://[[user]:password@]host[:port][/db] or\n"
    "                        unix:///path[?db=N]) or a Redis Cluster\n"
    "                        (redis+cluster://[[user]:password@]host:port[,host:port...]) instead\n"
    "                        of in memory; instances sharing one Redis and storage id serve the\n"
    "                        same runs\n"
    "  --storage-id ID       with --redis: the runs' key namespace (default chat)\n"
    "  --producer-lost-ms N  with --redis: bound on how long readers wait after the instance\n"
    "                        running a run died before they get a fatal error (default 10000)\n";

void usage(std::ostream& out, const char* argv0) {
  out << "usage: " << argv0
      << " [--host H] [--port P] [--path /api/river] [--delay-ms N] [--threads N] [--cors ORIGIN]...\n"
         "       [--secret S] [--tls-cert FILE --tls-key FILE]\n"
         "       [--redis URL [--storage-id ID] [--producer-lost-ms N]]\n"
      << help_text;
}

int bad_usage(const char* argv0) {
  usage(std::cerr, argv0);
  return 2;
}

// Where the runs are kept, for the startup line; without the password of the URL.
std::string describe(const std::vector<river::redis::address>& nodes, bool cluster, const std::string& storage_id) {
  std::string where;
  for (const auto& a : nodes) {
    if (!where.empty()) where += ",";
    where += a.kind == river::redis::address::transport::unix_socket ? "unix:" + a.path : a.host + ":" + std::to_string(a.port);
    if (a.database != 0) where += " db " + std::to_string(a.database);
  }
  return std::string(cluster ? "keeping runs in Redis Cluster at " : "keeping runs in Redis at ") + where +
         ", storage id \"" + storage_id + "\"";
}

template <class T>
bool parse_number(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

int main(int argc, char** argv) {
  river::http::server_options options;
  river::http::run_options run;
  options.address = "127.0.0.1";
  options.port = 8080;
  int delay_ms = 40;
  std::optional<river::redis::config> redis_cfg;
  std::string storage_id = "chat";
  std::int64_t producer_lost_ms = 0;  // 0: the provider's default
  bool redis_settings = false;        // --storage-id or --producer-lost-ms given
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(std::cout, argv[0]), 0;
    if (i + 1 >= argc) return bad_usage(argv[0]);
    const std::string_view value = argv[++i];
    if (arg == "--host") options.address = std::string(value);
    else if (arg == "--port") { if (!parse_number(value, options.port)) return bad_usage(argv[0]); }
    else if (arg == "--path") options.endpoint.path = std::string(value);
    else if (arg == "--delay-ms") { if (!parse_number(value, delay_ms) || delay_ms < 0) return bad_usage(argv[0]); }
    else if (arg == "--threads") { if (!parse_number(value, run.threads)) return bad_usage(argv[0]); }
    else if (arg == "--cors") options.endpoint.cors_origins.emplace_back(value);
    else if (arg == "--secret") options.token_secret = std::string(value);
    else if (arg == "--tls-cert") options.tls_certificate_file = std::string(value);
    else if (arg == "--tls-key") options.tls_private_key_file = std::string(value);
    else if (arg == "--redis") {
      redis_cfg.emplace();
      redis_cfg->url = std::string(value);
    }
    else if (arg == "--storage-id") {
      storage_id = std::string(value);
      redis_settings = true;
      if (storage_id.empty()) return bad_usage(argv[0]);
    }
    else if (arg == "--producer-lost-ms") {
      redis_settings = true;
      if (!parse_number(value, producer_lost_ms) || producer_lost_ms < 100) return bad_usage(argv[0]);
    }
    else return bad_usage(argv[0]);
  }

  if (redis_settings && !redis_cfg) {
    std::cerr << "chat_server: --storage-id and --producer-lost-ms need --redis\n";
    return bad_usage(argv[0]);
  }
  std::vector<river::redis::address> redis_nodes;
  const bool cluster = redis_cfg && river::redis::is_cluster_url(redis_cfg->url);
  if (redis_cfg) {
    if (cluster) {
      if (auto seeds = river::redis::parse_cluster_url(redis_cfg->url)) redis_nodes = *seeds;
    } else if (auto one = river::redis::parse_url(redis_cfg->url)) {
      redis_nodes.push_back(*one);
    }
    if (redis_nodes.empty()) {
      std::cerr << "chat_server: not a Redis URL: " << redis_cfg->url << "\n";
      return bad_usage(argv[0]);
    }
    redis_cfg->storage_id = storage_id;
    if (producer_lost_ms > 0) redis_cfg->producer_lost_timeout = std::chrono::milliseconds(producer_lost_ms);
  }

  const auto page = html_page(options.endpoint.path);
  run.routes = [page](const river::http::request& req) -> std::optional<river::http::simple_response> {
    const auto target = req.target();
    const auto path = std::string_view(target.data(), target.size()).substr(0, target.find('?'));
    if (path != "/" && path != "/index.html") return std::nullopt;
    river::http::simple_response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = page;
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  };
  run.on_listening = [&](const river::http::server& server) {
    if (!redis_nodes.empty()) std::cout << describe(redis_nodes, cluster, storage_id) << "\n";
    const auto ep = server.local_endpoint();
    const auto host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    std::cout << "listening on " << (server.tls() ? "https" : "http") << "://" << host << ":" << ep.port()
              << std::endl;
  };
  // SIGINT or SIGTERM: runs in progress get 10 s to finish, then stop. Runs kept in Redis that are
  // cancelled then end with `aborted`; a run whose process is killed outright is closed by the
  // readers' instances ("producer lost").
  return river::http::run_server(
      [&](const river::executor& ex) {
        auto chat = river::stream<chat_input, token_chunk>().runner(
            [delay_ms](river::run_context<chat_input, token_chunk>& ctx) -> asio::awaitable<void> {
              asio::steady_timer delay(ctx.get_executor());
              for (const auto& token : chat_demo::fake_answer(ctx.input().message)) {
                delay.expires_after(std::chrono::milliseconds(delay_ms));
                co_await delay.async_wait(asio::use_awaitable);
                token_chunk chunk{token};
                co_await ctx.append(chunk);
              }
            });
        // Without --redis: the router's in-memory provider.
        if (redis_cfg) chat.provider(std::make_shared<river::redis::provider>(ex, *redis_cfg));
        river::router routes;
        routes.add("chat", std::move(chat));
        return routes;
      },
      options, std::move(run));
}
