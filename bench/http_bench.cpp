// HTTP server benchmark over loopback: a River server (river::http::server, in-memory provider) in
// a child process, load from this process. 64-byte chunks. Prints:
//   - time to first event of a POST start (new connection each time), p50/p99;
//   - chunks/s delivered with many concurrent streams whose runners append as fast as they can;
//   - end-to-end latency (append in the runner -> parsed by the client) with many concurrent
//     streams paced at a fixed rate each;
//   - server memory per open idle SSE connection;
//   - server CPU time (user + system, whole server process: runners, provider, HTTP) per
//     delivered chunk, for the two loads above.
//
//   http_bench [quick] [--server-threads N]
//
// The server runs `--server-threads` I/O threads (default 1) and the load generator one, so on a
// 2-core machine each side has a core.

#include <river/http/server.hpp>
#include <river/river.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace http_bench {

struct burst_input {
  int count = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(burst_input, count)

struct paced_input {
  int count = 0;
  int per_second = 100;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(paced_input, count, per_second)

}  // namespace http_bench

namespace {

using http_bench::burst_input;
using http_bench::paced_input;

constexpr std::size_t chunk_bytes = 64;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

// A 64-byte chunk whose text starts with the time of its append, in nanoseconds.
std::string stamped_chunk() {
  std::string s = std::to_string(now_ns());
  s.resize(chunk_bytes, 'x');
  return s;
}

// --- the server process ------------------------------------------------------------------------

int run_server_process(int pipe_fd, unsigned threads) {
  river::memory::config mc;
  mc.max_bytes = std::size_t{3} << 30;
  mc.max_runs = 100'000;
  mc.retention = 5s;
  auto provider = std::make_shared<river::memory::provider>(mc);
  river::router routes;
  routes.add("burst", river::stream<burst_input, std::string>().provider(provider).runner(
                          [](river::run_context<burst_input, std::string>& ctx) -> asio::awaitable<void> {
                            const std::string chunk(chunk_bytes, 'c');
                            // River yields for the runner (runner_budget): no hand-made yields.
                            for (int i = 0; i < ctx.input().count; ++i) co_await ctx.append(chunk);
                          }));
  routes.add("paced", river::stream<paced_input, std::string>().provider(provider).runner(
                          [](river::run_context<paced_input, std::string>& ctx) -> asio::awaitable<void> {
                            asio::steady_timer t(ctx.get_executor());
                            const auto step = std::chrono::nanoseconds(1'000'000'000 / ctx.input().per_second);
                            auto at = clock_type::now();
                            for (int i = 0; i < ctx.input().count; ++i) {
                              at += step;
                              t.expires_at(at);
                              co_await t.async_wait(asio::use_awaitable);
                              auto chunk = stamped_chunk();
                              co_await ctx.append(chunk);
                            }
                          }));
  routes.add("idle", river::stream<json, std::string>().provider(provider).runner(
                         [](river::run_context<json, std::string>& ctx) -> asio::awaitable<void> {
                           asio::steady_timer t(ctx.get_executor(), 1h);
                           co_await t.async_wait(asio::use_awaitable);
                         }));
  asio::io_context io(static_cast<int>(threads));
  river::http::server_options o;
  o.port = 0;
  o.max_connections = 50'000;
  // The load comes from one client that starts thousands of runs: no per-client limits.
  o.max_runs_per_client = 0;
  o.endpoint.start_rate_per_client.per_second = 0;
  river::http::server s(io.get_executor(), routes, o);
  if (auto ec = s.start()) {
    std::fprintf(stderr, "server: %s\n", ec.message().c_str());
    return 1;
  }
  const unsigned short port = s.local_endpoint().port();
  if (write(pipe_fd, &port, sizeof port) != sizeof port) return 1;
  close(pipe_fd);
  asio::signal_set stop(io, SIGTERM);
  stop.async_wait([&](auto, int) { io.stop(); });
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  std::_Exit(0);  // skip destructors of the runs still parked: the process ends anyway
}

// --- measuring the server process --------------------------------------------------------------

struct proc_sample {
  double cpu_seconds = 0;
  double rss_kib = 0;
};

proc_sample sample(pid_t pid) {
  proc_sample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  auto close_paren = text.rfind(')');
  std::istringstream fields(text.substr(close_paren + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  // Fields 14 and 15 of /proc/PID/stat (utime, stime); f[0] is field 3.
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stod(line.substr(6));
  return s;
}

// --- the load ----------------------------------------------------------------------------------

struct stream_stats {
  std::uint64_t chunks = 0;
  std::vector<double> latencies_us;
  bool ended = false;
  double first_event_us = -1;
};

std::string post(std::string_view stream, const json& input) {
  const auto body = json{{"routerStreamKey", stream}, {"input", input}}.dump();
  return "POST /api/river HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Opens one event stream and reads it to its terminal event (or `stop_after_first`), counting
// chunks and, for stamped chunks, their latency.
asio::awaitable<void> read_stream(tcp::endpoint ep, std::string request, stream_stats& st, bool stamped,
                                  bool stop_after_first = false, std::string* first_message = nullptr) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket s(ex);
  const auto began = clock_type::now();
  auto [cec] = co_await s.async_connect(ep, asio::as_tuple(asio::use_awaitable));
  if (cec) co_return;
  s.set_option(tcp::no_delay(true));
  auto [wec, wn] = co_await asio::async_write(s, asio::buffer(request), asio::as_tuple(asio::use_awaitable));
  (void)wn;
  if (wec) co_return;
  std::string buf;
  std::vector<char> tmp(64 * 1024);
  static constexpr std::string_view chunk_prefix = R"(data: {"type":"chunk","chunk":")";
  while (!st.ended) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(tmp), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    const auto arrived = now_ns();
    buf.append(tmp.data(), n);
    // A refusal (a limit, say) is no event stream: stop rather than wait for events.
    if (buf.size() >= 12 && buf.starts_with("HTTP/1.") && buf[9] != '2') {
      std::fprintf(stderr, "http_bench: the server answered %s\n", buf.substr(0, buf.find('\r')).c_str());
      break;
    }
    std::size_t pos = 0;
    for (;;) {
      const auto end = buf.find("\n\n", pos);
      if (end == std::string::npos) break;
      const std::string_view message(buf.data() + pos, end - pos);
      pos = end + 2;
      const auto d = message.find("data: ");
      if (d == std::string_view::npos) continue;
      const auto event = message.substr(d);
      if (st.first_event_us < 0) {
        st.first_event_us = std::chrono::duration<double, std::micro>(clock_type::now() - began).count();
        if (first_message) *first_message = std::string(event);
        if (stop_after_first) {
          st.ended = true;
          break;
        }
      }
      if (event.substr(0, chunk_prefix.size()) == chunk_prefix) {
        ++st.chunks;
        if (stamped) {
          std::int64_t t = 0;
          auto digits = event.substr(chunk_prefix.size());
          std::from_chars(digits.data(), digits.data() + digits.size(), t);
          st.latencies_us.push_back(static_cast<double>(arrived - t) / 1000.0);
        }
      } else if (event.find("stream_end") != std::string_view::npos ||
                 event.find("stream_fatal_error") != std::string_view::npos ||
                 event.find(R"({"type":"aborted"})") != std::string_view::npos) {
        st.ended = true;
      }
    }
    buf.erase(0, pos);
  }
  boost::system::error_code ignored;
  s.close(ignored);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

template <class Make>
void run_load(Make make, std::chrono::seconds limit) {
  asio::io_context io(1);
  asio::co_spawn(io, make(io), asio::detached);
  io.run_for(limit);
}

asio::awaitable<void> wait_all(asio::io_context& io, std::vector<stream_stats>& st, std::size_t expected_done) {
  for (;;) {
    std::size_t done = 0;
    for (auto& s : st) done += s.ended;
    if (done >= expected_done) co_return;
    asio::steady_timer t(io, 5ms);
    co_await t.async_wait(asio::use_awaitable);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  unsigned server_threads = 1;
  int paced_streams = 1000;
  std::string phases = "memory,first,throughput,latency";
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "quick") quick = true;
    else if (a == "--server-threads" && i + 1 < argc) server_threads = static_cast<unsigned>(std::atoi(argv[++i]));
    else if (a == "--paced-streams" && i + 1 < argc) paced_streams = std::atoi(argv[++i]);
    else if (a == "--phases" && i + 1 < argc) phases = argv[++i];
  }
  auto phase = [&](std::string_view name) { return phases.find(name) != std::string::npos; };
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) == 0) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
  int fds[2];
  if (pipe(fds) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    return run_server_process(fds[1], server_threads);
  }
  close(fds[1]);
  unsigned short port = 0;
  if (read(fds[0], &port, sizeof port) != sizeof port) return 1;
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  std::printf("river http_bench: server pid %d on 127.0.0.1:%u, %u server thread(s), 1 client thread, %zu-byte chunks\n",
              static_cast<int>(child), port, server_threads, chunk_bytes);

  // Memory first, on a fresh server whose heap holds nothing freed yet: many resumes of one
  // idle run, each an open SSE connection waiting for events.
  if (phase("memory")) {
    const int connections = quick ? 1000 : 5000;
    std::string token;
    asio::io_context io(1);
    std::vector<stream_stats> st(static_cast<std::size_t>(connections) + 1);
    std::string first;
    asio::co_spawn(io, read_stream(ep, post("idle", json::object()), st[0], false, false, &first), asio::detached);
    while (first.empty()) io.run_one_for(1s);
    token = json::parse(first.substr(6))["special"]["encodedResumptionToken"];
    io.run_for(100ms);
    const auto before = sample(child);
    for (int i = 1; i <= connections; ++i) {
      std::string req = "GET /api/river?resumeKey=" + token + " HTTP/1.1\r\nHost: b\r\nLast-Event-ID: 1\r\n\r\n";
      asio::co_spawn(io, read_stream(ep, std::move(req), st[static_cast<std::size_t>(i)], false), asio::detached);
    }
    io.run_for(quick ? 2s : 4s);
    const auto after = sample(child);
    std::printf("memory: %.1f KiB of server RSS per open idle SSE connection (%d connections, RSS %.0f -> %.0f KiB)\n",
                (after.rss_kib - before.rss_kib) / connections, connections, before.rss_kib, after.rss_kib);
    // Cancel the idle run: its streams end and their connections close before the next phase.
    stream_stats cancel;
    std::string del = "DELETE /api/river?resumeKey=" + token + " HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n";
    asio::co_spawn(io, read_stream(ep, std::move(del), cancel, false, true), asio::detached);
    io.run_for(2s);
  }

  // Time to first event: a POST on a new connection until its start event is read.
  if (phase("first")) {
    const int n = quick ? 200 : 1000;
    std::vector<double> t;
    run_load(
        [&](asio::io_context&) -> asio::awaitable<void> {
          for (int i = 0; i < n; ++i) {
            stream_stats st;
            json input = {{"count", 1}};
            co_await read_stream(ep, post("burst", input), st, false, true);
            t.push_back(st.first_event_us);
          }
        },
        60s);
    std::printf("time to first event (new connection, POST start): p50 %.0f us, p99 %.0f us (%zu starts)\n",
                percentile(t, 0.5), percentile(t, 0.99), t.size());
  }

  // Throughput: many concurrent streams, runners appending as fast as they can.
  for (int streams : {100, 1000}) {
    if (!phase("throughput")) break;
    const int per_stream = (quick ? 200'000 : 1'000'000) / streams;
    std::vector<stream_stats> st(static_cast<std::size_t>(streams));
    std::vector<std::string> starts(st.size());
    const auto before = sample(child);
    const auto t0 = clock_type::now();
    run_load(
        [&](asio::io_context& io) -> asio::awaitable<void> {
          for (std::size_t i = 0; i < st.size(); ++i) {
            json input = {{"count", per_stream}};
            asio::co_spawn(io, read_stream(ep, post("burst", input), st[i], false, false, &starts[i]), asio::detached);
          }
          co_await wait_all(io, st, st.size());
        },
        120s);
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    const auto after = sample(child);
    std::uint64_t chunks = 0;
    for (auto& s : st) chunks += s.chunks;
    std::printf(
        "throughput, %d concurrent streams x %d chunks: %.0f chunks/s delivered (%llu in %.2f s); server CPU %.3f us/chunk\n",
        streams, per_stream, static_cast<double>(chunks) / secs, static_cast<unsigned long long>(chunks), secs,
        (after.cpu_seconds - before.cpu_seconds) * 1e6 / static_cast<double>(chunks));

    // The same runs again, now stored: every stream resumed from its start. Only delivery costs
    // the server here (no runner produces anything), which isolates the HTTP side.
    std::vector<stream_stats> again(st.size());
    const auto before_replay = sample(child);
    const auto t1 = clock_type::now();
    run_load(
        [&](asio::io_context& io) -> asio::awaitable<void> {
          for (std::size_t i = 0; i < st.size(); ++i) {
            auto token = json::parse(starts[i].substr(6))["special"]["encodedResumptionToken"].get<std::string>();
            std::string req = "GET /api/river?resumeKey=" + token + " HTTP/1.1\r\nHost: b\r\n\r\n";
            asio::co_spawn(io, read_stream(ep, std::move(req), again[i], false), asio::detached);
          }
          co_await wait_all(io, again, again.size());
        },
        120s);
    const double replay_secs = std::chrono::duration<double>(clock_type::now() - t1).count();
    const auto after_replay = sample(child);
    std::uint64_t replayed = 0;
    for (auto& s : again) replayed += s.chunks;
    std::printf(
        "replay, %d concurrent resumes of stored runs: %.0f chunks/s delivered (%llu in %.2f s); server CPU %.3f us/chunk\n",
        streams, static_cast<double>(replayed) / replay_secs, static_cast<unsigned long long>(replayed), replay_secs,
        (after_replay.cpu_seconds - before_replay.cpu_seconds) * 1e6 / static_cast<double>(replayed));
  }

  // Latency: 1000 concurrent streams at 100 chunks/s each.
  if (phase("latency")) {
    const int streams = paced_streams, rate = 100, seconds = quick ? 3 : 10;
    const auto t0 = clock_type::now();
    std::vector<stream_stats> st(static_cast<std::size_t>(streams));
    const auto before = sample(child);
    run_load(
        [&](asio::io_context& io) -> asio::awaitable<void> {
          for (auto& s : st) {
            json input = {{"count", rate * seconds}, {"per_second", rate}};
            asio::co_spawn(io, read_stream(ep, post("paced", input), s, true), asio::detached);
          }
          co_await wait_all(io, st, st.size());
        },
        std::chrono::seconds(seconds + 60));
    const auto after = sample(child);
    const double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
    std::vector<double> all;
    std::uint64_t chunks = 0;
    for (auto& s : st) {
      all.insert(all.end(), s.latencies_us.begin(), s.latencies_us.end());
      chunks += s.chunks;
    }
    std::printf(
        "latency, %d streams x %d chunks/s for %d s: p50 %.0f us, p99 %.0f us, max %.0f us (%llu chunks in %.1f s); "
        "server CPU %.3f us/chunk\n",
        streams, rate, seconds, percentile(all, 0.5), percentile(all, 0.99), percentile(all, 1.0),
        static_cast<unsigned long long>(chunks), wall,
        (after.cpu_seconds - before.cpu_seconds) * 1e6 / static_cast<double>(chunks));
  }

  kill(child, SIGTERM);
  int status = 0;
  waitpid(child, &status, 0);
  return 0;
}
