#pragma once

// What redis_bench's measurements share: a private server's plumbing, timing, the runs' payload.

#include <river/redis/provider.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

namespace redis_bench {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline const std::string payload = R"({"type":"chunk","chunk":{"text":"a token of an answer, about sixty bytes"}})";

inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline pid_t spawn(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

inline std::string run_and_capture(const std::string& command) {
  std::string out;
  if (FILE* f = ::popen(command.c_str(), "r")) {
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    ::pclose(f);
  }
  return out;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

template <class F>
void run(F f) {
  asio::io_context io;
  asio::co_spawn(io, f(io), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}

inline asio::awaitable<void> sleep_for(clock_type::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

inline river::redis::config config_for(const std::string& url) {
  river::redis::config cfg;
  cfg.url = url;
  return cfg;
}

// The rate `redis-benchmark -q` printed ("...: 123456.78 requests per second, ...").
inline double requests_per_second(const std::string& out) {
  const auto pos = out.find(" requests per second");
  if (pos == std::string::npos) return 0;
  const auto start = out.rfind(' ', pos - 1);
  return std::atof(out.c_str() + (start == std::string::npos ? 0 : start + 1));
}

inline double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// Commands the servers on `ports` ran so far (each answering INFO adds one).
inline std::uint64_t redis_commands(const std::vector<std::uint16_t>& ports) {
  std::uint64_t n = 0;
  for (auto port : ports) {
    const auto info = run_and_capture("redis-cli -p " + std::to_string(port) + " INFO commandstats");
    for (auto at = info.find("calls="); at != std::string::npos; at = info.find("calls=", at + 1))
      n += std::strtoull(info.c_str() + at + 6, nullptr, 10);
  }
  return n;
}


/// Appends `total` events spread over `runs` concurrent runs on the provider at `url` (with
/// `config::wait_replicas` = `wait_replicas`); appends per second (redis_bench.cpp).
/// `appends_per_write` is set to the provider's appends per socket write.
double append_rate(const std::string& url, int runs, int total, std::size_t wait_replicas = 0);
inline double appends_per_write = 0;

struct reader_cost {
  double cpu_us = 0;
  double commands = 0;
};
/// A remote reader's process CPU and Redis commands per event while its instance follows
/// `followed` idle runs (redis_bench.cpp); `ports` are the servers whose commands count.
reader_cost remote_reader_cost(const std::string& url, const std::vector<std::uint16_t>& ports, int followed, int events);

/// The --cluster measurements (redis_cluster_bench.cpp).
int cluster_bench(int events);

}  // namespace redis_bench
