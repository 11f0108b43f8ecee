#pragma once

// A private Redis Cluster for tests: redis-servers with `--cluster-enabled yes` on free loopback
// ports, joined by `redis-cli --cluster create`, each stopped by its pid with the cluster. In CI
// (CI=true) a missing redis-server or redis-cli fails the test; elsewhere it is skipped.

#include "support/redis_server.hpp"

#include <algorithm>
#include <memory>
#include <sstream>

namespace river::test {

/// True when the test may start a cluster; otherwise fails the test in CI, or skips it.
inline bool redis_cluster_or_skip() {
  if (!redis_or_skip()) return false;
  if (std::system("command -v redis-cli >/dev/null 2>&1") == 0) return true;
  const char* ci = std::getenv("CI");
  if (ci && std::string(ci) == "true") FAIL("redis-cli is not installed (scripts/install-deps.sh installs it)");
  WARN("redis-cli is not installed: test skipped");
  return false;
}

/// Whether nothing listens on loopback `port` (binding it works).
inline bool loopback_port_free(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return free;
}

/// A port for a cluster node: it and its bus port (10000 higher) free, and below 55536 as Redis
/// requires; drawn at random in 20000..55535, below the usual ephemeral range.
inline std::uint16_t free_cluster_port() {
  static std::uint32_t state = static_cast<std::uint32_t>(::getpid()) * 2654435761u;
  for (int tries = 0; tries < 1000; ++tries) {
    state = state * 1664525u + 1013904223u;
    const auto port = static_cast<std::uint16_t>(20000 + (state >> 8) % 35536);
    if (loopback_port_free(port) && loopback_port_free(static_cast<std::uint16_t>(port + 10000))) return port;
  }
  FAIL("no free port pair for a cluster node");
  return 0;
}

/// What `redis-cli -p PORT ARGS...` prints (stdout and stderr), its last newline removed.
inline std::string redis_cli(std::uint16_t port, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  child_process cli(std::move(argv));
  std::string out;
  while (auto line = cli.read_line(std::chrono::seconds(30))) out += *line + "\n";
  if (!out.empty()) out.pop_back();
  return out;
}

class redis_cluster {
 public:
  struct options {
    int masters = 3;
    int replicas = 0;  ///< per master
    int node_timeout_ms = 1000;
    std::string password;  ///< every node's `requirepass` and `masterauth`
  };

  redis_cluster() : redis_cluster(options()) {}
  explicit redis_cluster(options opts) : opts_(opts) {
    redis_server::options node;
    node.cluster = true;
    node.cluster_node_timeout_ms = opts.node_timeout_ms;
    node.password = opts.password;
    const int count = opts.masters * (1 + opts.replicas);
    for (int i = 0; i < count; ++i) {
      node.port = free_cluster_port();
      nodes_.push_back(std::make_unique<redis_server>(node));
    }
    std::vector<std::string> create = {"--cluster", "create"};
    for (auto& n : nodes_) create.push_back("127.0.0.1:" + std::to_string(n->port()));
    create.push_back("--cluster-replicas");
    create.push_back(std::to_string(opts.replicas));
    create.push_back("--cluster-yes");
    const auto out = cli_on(nodes_.front()->port(), create);
    INFO(out);
    REQUIRE(out.find("All 16384 slots covered") != std::string::npos);
    wait_until_ok();
  }

  /// `redis+cluster://` with every node as a seed.
  std::string url() const {
    std::string u = "redis+cluster://";
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (i) u += ",";
      u += "127.0.0.1:" + std::to_string(nodes_[i]->port());
    }
    return u;
  }

  std::size_t size() const { return nodes_.size(); }
  redis_server& node(std::size_t i) { return *nodes_.at(i); }

  /// The node listening on `port`.
  redis_server& node_on(std::uint16_t port) {
    for (auto& n : nodes_)
      if (n->port() == port) return *n;
    FAIL("no cluster node on port " << port);
    return *nodes_.front();  // not reached: FAIL throws
  }

  /// `redis-cli` against the node at index `i`.
  std::string cli(std::size_t i, const std::vector<std::string>& args) { return cli_on(node(i).port(), args); }

  /// `redis-cli` against the node on `port`, logged in.
  std::string cli_on(std::uint16_t port, std::vector<std::string> args) const {
    if (!opts_.password.empty()) args.insert(args.begin(), {"-a", opts_.password, "--no-auth-warning"});
    return redis_cli(port, args);
  }

  /// The port of the master that serves `slot` now, as the first live node's `CLUSTER NODES`
  /// says; 0 while none does (a failover in progress).
  std::uint16_t master_of(unsigned slot) {
    for (auto& n : nodes_) {
      if (!n->pid()) continue;
      std::istringstream in(cli_on(n->port(), {"CLUSTER", "NODES"}));
      // id host:port@bus flags master ping pong epoch link slot-range...
      for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::vector<std::string> f;
        for (std::string x; fields >> x;) f.push_back(x);
        if (f.size() < 9 || f[2].find("master") == std::string::npos || f[2].find("fail") != std::string::npos) continue;
        for (std::size_t i = 8; i < f.size(); ++i) {
          if (f[i].front() == '[') continue;  // a slot being migrated or imported
          const auto dash = f[i].find('-');
          const unsigned first = static_cast<unsigned>(std::stoul(f[i].substr(0, dash)));
          const unsigned last = dash == std::string::npos ? first : static_cast<unsigned>(std::stoul(f[i].substr(dash + 1)));
          if (slot >= first && slot <= last) {
            const auto at = f[1].find(':'), bus = f[1].find('@');
            return static_cast<std::uint16_t>(std::stoul(f[1].substr(at + 1, bus - at - 1)));
          }
        }
      }
      break;
    }
    return 0;
  }

  /// The port of a replica of the master on `port`, as `CLUSTER REPLICAS` says (0: none).
  std::uint16_t replica_of(std::uint16_t port) {
    std::istringstream in(cli_on(port, {"CLUSTER", "REPLICAS", id_of(port)}));
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      std::string id, where;
      fields >> id >> where;
      const auto at = where.find(':'), bus = where.find('@');
      if (at != std::string::npos && bus != std::string::npos)
        return static_cast<std::uint16_t>(std::stoul(where.substr(at + 1, bus - at - 1)));
    }
    return 0;
  }

  /// The node id of the node on `port`.
  std::string id_of(std::uint16_t port) { return cli_on(port, {"CLUSTER", "MYID"}); }

  /// Waits until every live node says the cluster is ok, and every master has its replicas
  /// online (synchronized).
  void wait_until_ok(std::chrono::seconds limit = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      bool ok = true;
      for (auto& n : nodes_) {
        if (!n->pid()) continue;
        const auto info = cli_on(n->port(), {"CLUSTER", "INFO"});
        if (info.find("cluster_state:ok") == std::string::npos ||
            info.find("cluster_slots_ok:16384") == std::string::npos) {
          ok = false;
          break;
        }
        const auto replication = cli_on(n->port(), {"INFO", "replication"});
        if (replication.find("role:master") != std::string::npos) {
          std::size_t online = 0;
          for (auto at = replication.find("state=online"); at != std::string::npos; at = replication.find("state=online", at + 1)) ++online;
          if (online < static_cast<std::size_t>(opts_.replicas)) {
            ok = false;
            break;
          }
        }
      }
      if (ok) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL("the Redis Cluster did not become ok within " << limit.count() << " s");
  }

 private:
  options opts_;
  std::vector<std::unique_ptr<redis_server>> nodes_;
};

}  // namespace river::test
