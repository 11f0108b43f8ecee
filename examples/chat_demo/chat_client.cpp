// chat_client: asks a River chat server for an answer and prints its tokens as they arrive.
//
//   chat_client [--url URL] [--stream NAME] [--drop-after N] "message"
//   chat_client [--url URL] --resume TOKEN [--position POS]
//
// The run's id and resumption token go to stderr, the answer to stdout. `--drop-after N` closes
// the connection after N tokens and resumes the run with its token from the last position, as an
// app that lost its network would; `--resume TOKEN` follows a run that is already under way (or
// replays one that ended), from its start or from POS.

#include <river/http/client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace asio = boost::asio;

namespace {

struct chat_chunk {
  std::string text;
};
// Chunks of the chat stream are {"text": "..."}; only reading them is needed here.
void from_json(const nlohmann::json& j, chat_chunk& c) { j.at("text").get_to(c.text); }

struct options {
  std::string url = "http://127.0.0.1:8080/api/river";
  std::string stream = "chat";
  std::string message;
  std::optional<std::string> resume_token;
  std::optional<std::string> position;
  std::size_t drop_after = 0;
};

[[noreturn]] void usage(const char* why) {
  std::cerr << "chat_client: " << why << "\n"
            << "usage: chat_client [--url URL] [--stream NAME] [--drop-after N] \"message\"\n"
            << "       chat_client [--url URL] --resume TOKEN [--position POS]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("an option lacks its value");
      return argv[++i];
    };
    if (arg == "--url") {
      o.url = value();
    } else if (arg == "--stream") {
      o.stream = value();
    } else if (arg == "--resume") {
      o.resume_token = value();
    } else if (arg == "--position") {
      o.position = value();
    } else if (arg == "--drop-after") {
      auto v = value();
      char* end = nullptr;
      auto n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n == 0) usage("--drop-after takes a positive number");
      o.drop_after = n;
    } else if (arg == "-h" || arg == "--help") {
      usage("help");
    } else if (!arg.empty() && arg.front() == '-') {
      usage("unknown option");
    } else if (o.message.empty()) {
      o.message = std::string(arg);
    } else {
      usage("one message only (quote it)");
    }
  }
  if (!o.resume_token && o.message.empty()) usage("a message, or --resume TOKEN");
  if (o.position && !o.resume_token) usage("--position goes with --resume");
  return o;
}

using chat_stream = river::http::basic_event_stream<chat_chunk>;

// Reads the run to its end; returns the exit status.
asio::awaitable<int> chat(river::http::client& client, const options& o) {
  river::result<chat_stream> opened = river::error();
  if (o.resume_token) {
    auto r = co_await client.resume<chat_chunk>(*o.resume_token, o.position);
    opened = std::move(r);
  } else {
    nlohmann::json input;
    input["message"] = o.message;
    auto r = co_await client.start<chat_chunk>(o.stream, std::move(input));
    opened = std::move(r);
  }
  if (!opened) {
    std::cerr << "chat_client: " << opened.error().message << "\n";
    co_return 1;
  }
  chat_stream stream = std::move(*opened);
  if (o.resume_token) std::cerr << "[following run " << stream.run_id() << "]\n";

  std::size_t tokens = 0;
  std::size_t events_seen = 0;  // for a server that sends no positions
  std::size_t skip = 0;
  bool dropped = false;
  for (;;) {
    auto r = co_await stream.try_next();
    if (!r) {
      std::cout << std::endl;
      std::cerr << "chat_client: " << r.error().message << "\n";
      co_return 1;
    }
    if (!*r) break;
    auto& ev = **r;
    if (skip > 0) {
      --skip;
      continue;
    }
    ++events_seen;
    if (auto* start = ev.get_if<river::events::start>()) {
      std::cerr << "[run " << start->run_id << "]\n[resume token " << start->resumption_token << "]\n";
    } else if (auto* chunk = ev.chunk()) {
      std::cout << chunk->text << std::flush;
      ++tokens;
      if (tokens == o.drop_after && !dropped) {
        dropped = true;
        auto token = stream.resumption_token();
        auto position = stream.position();
        stream.close();
        if (token.empty()) {
          std::cerr << "\nchat_client: the server gave no resumption token: cannot resume\n";
          co_return 1;
        }
        std::optional<std::string> from;
        if (!position.empty()) from = position;
        std::cerr << "\n[closed the connection after " << tokens << " tokens; resuming "
                  << (from ? "after position " + *from : std::string("from the start")) << "]\n";
        auto again = co_await client.resume<chat_chunk>(token, from);
        if (!again) {
          std::cerr << "chat_client: " << again.error().message << "\n";
          co_return 1;
        }
        stream = std::move(*again);
        // Without a position the run is replayed from its start: skip what was printed.
        if (!from) skip = events_seen;
      }
    } else if (auto* e = ev.get_if<river::events::error>()) {
      std::cerr << "\n[error: " << e->value.message << "]\n";
    } else if (auto* f = ev.get_if<river::events::fatal_error>()) {
      std::cout << std::endl;
      std::cerr << "[fatal error: " << f->value.message << "]\n";
      co_return 1;
    } else if (auto* end = ev.get_if<river::events::end>()) {
      std::cout << std::endl;
      std::cerr << "[done: " << end->total_chunks << " chunks in " << end->total_time_ms << " ms";
      if (stream.reconnections() > 0) std::cerr << ", " << stream.reconnections() << " reconnections";
      std::cerr << "]\n";
    } else {
      std::cout << std::endl;
      std::cerr << "[the run was cancelled]\n";
      co_return 1;
    }
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  asio::io_context io;
  std::optional<river::http::client> client;
  try {
    client.emplace(io.get_executor(), o.url);
  } catch (const std::invalid_argument& e) {
    std::cerr << "chat_client: " << e.what() << "\n";
    return 2;
  }
  int status = 1;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) io.stop();  // the run goes on at the server: --resume follows it again
  });
  asio::co_spawn(io, chat(*client, o), [&](std::exception_ptr e, int result) {
    signals.cancel();
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "chat_client: " << ex.what() << "\n";
      }
      return;
    }
    status = result;
  });
  io.run();
  return status;
}
