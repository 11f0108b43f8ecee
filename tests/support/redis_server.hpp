#pragma once

// A private redis-server for one test: a free loopback port, its own temporary directory, no
// snapshots, a child process of the test stopped by its pid. In CI (CI=true) a missing
// redis-server fails the test; elsewhere the test is skipped with a message.

#include "support/child_process.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace river::test {

/// Whether redis-server can be run here.
inline bool redis_server_installed() {
  return std::system("command -v redis-server >/dev/null 2>&1") == 0;
}

/// True when the test may use redis-server; otherwise fails the test in CI, or skips it.
inline bool redis_or_skip() {
  if (redis_server_installed()) return true;
  const char* ci = std::getenv("CI");
  if (ci && std::string(ci) == "true") {
    FAIL("redis-server is not installed (scripts/install-deps.sh installs it); CI never skips Redis tests");
  }
  WARN("redis-server is not installed: test skipped");
  return false;
}

/// Binds port 0 on loopback to find a free port.
inline std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

class redis_server {
 public:
  struct options {
    bool appendonly = false;   ///< `--appendonly yes --appendfsync always`
    std::string password;      ///< `--requirepass`
    bool cluster = false;      ///< `--cluster-enabled yes`, its node file in the server's directory
    int cluster_node_timeout_ms = 1000;  ///< how soon its peers take it for failed
    std::uint16_t port = 0;    ///< 0: a free one
  };

  redis_server() : redis_server(options()) {}
  explicit redis_server(options opts) : opts_(std::move(opts)) {
    char tmpl[] = "/tmp/river-redis-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    port_ = opts_.port ? opts_.port : free_loopback_port();
    start();
  }

  ~redis_server() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  std::string socket_path() const { return dir_ + "/redis.sock"; }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return process_ ? process_->pid() : 0; }

  /// Starts the server (again, on the same port and directory) and waits until it answers.
  void start() {
    REQUIRE_FALSE(process_);
    std::vector<std::string> args = {
        "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
        "--dir", dir_, "--logfile", dir_ + "/redis.log", "--daemonize", "no",
        "--unixsocket", socket_path(), "--unixsocketperm", "700", "--protected-mode", "no"};
    if (opts_.appendonly) {
      for (const char* a : {"--appendonly", "yes", "--appendfsync", "always"}) args.emplace_back(a);
    }
    if (opts_.cluster) {
      // A replica may always take over (however long it was cut off from its master): the
      // failover tests pause replicas on purpose.
      for (const char* a : {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0",
                            "--cluster-node-timeout"})
        args.emplace_back(a);
      args.push_back(std::to_string(opts_.cluster_node_timeout_ms));
    }
    if (!opts_.password.empty()) {
      args.emplace_back("--requirepass");
      args.push_back(opts_.password);
      if (opts_.cluster) {
        args.emplace_back("--masterauth");  // replicas log in to their masters
        args.push_back(opts_.password);
      }
    }
    process_.emplace(std::move(args));
    wait_until_ready();
  }

  /// Kills the server with SIGKILL (no chance to save or close cleanly) and reaps it.
  void kill() {
    if (process_) process_->kill(SIGKILL);
    process_.reset();
  }

  /// Stops the server with SIGTERM, then SIGKILL after 5 s.
  void stop() {
    if (process_) process_->stop(SIGTERM, std::chrono::seconds(5));
    process_.reset();
  }

 private:
  // Connects and sends PING until the server answers, for at most 10 s.
  void wait_until_ready() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (process_->exited()) {
        process_.reset();
        FAIL("redis-server exited at startup; see " << dir_ << "/redis.log");
      }
      if (ping()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("redis-server did not answer within 10 s on port " << port_);
  }

  bool ping() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      timeval tv{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      const char ping_cmd[] = "PING\r\n";
      if (::write(fd, ping_cmd, sizeof ping_cmd - 1) == static_cast<ssize_t>(sizeof ping_cmd - 1)) {
        char buf[64];
        const auto n = ::read(fd, buf, sizeof buf);
        // "+PONG", or "-NOAUTH" from a server with a password: either way it serves.
        ok = n > 0 && (buf[0] == '+' || buf[0] == '-') && std::string(buf, static_cast<std::size_t>(n)).find("LOADING") == std::string::npos;
      }
    }
    ::close(fd);
    return ok;
  }

  options opts_;
  std::string dir_;
  std::uint16_t port_ = 0;
  std::optional<child_process> process_;
};

}  // namespace river::test
