// redis_bench --cluster: Redis Clusters of 1, 2 and 3 masters on loopback, each measured beside
// `redis-benchmark --cluster` on the same nodes: durable appends/s with 1000 concurrent runs, and
// a remote reader's cost per event (process CPU, Redis commands over every node).

#include "redis_bench_support.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <iostream>
#include <random>
#include <thread>

namespace redis_bench {

namespace {

struct local_cluster {
  std::string dir;
  std::vector<std::uint16_t> ports;
  std::vector<pid_t> pids;

  std::string url() const {
    std::string u = "redis+cluster://";
    for (std::size_t i = 0; i < ports.size(); ++i) u += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
    return u;
  }
  std::string cli(std::size_t node, const std::string& args) const {
    return run_and_capture("redis-cli -p " + std::to_string(ports[node]) + " " + args + " 2>/dev/null");
  }
};

bool port_free(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return free;
}

// A node's port: it and its cluster bus port (10000 higher) free; Redis wants it below 55536.
std::uint16_t node_port() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()));
  for (;;) {
    const auto port = static_cast<std::uint16_t>(20000 + rng() % 35000);
    if (port_free(port) && port_free(static_cast<std::uint16_t>(port + 10000))) return port;
  }
}

// Starts one more node of `c`; returns its index.
std::size_t add_node(local_cluster& c) {
  const auto port = node_port();
  const auto node_dir = c.dir + "/" + std::to_string(c.ports.size());
  ::mkdir(node_dir.c_str(), 0700);
  c.ports.push_back(port);
  c.pids.push_back(spawn({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                          "--repl-diskless-sync-delay", "0", "--dir", node_dir, "--logfile", node_dir + "/redis.log"}));
  for (int t = 0; t < 500 && !c.cli(c.ports.size() - 1, "PING").starts_with("PONG"); ++t) std::this_thread::sleep_for(10ms);
  return c.ports.size() - 1;
}

// `masters` nodes, the slots split evenly between them, joined with CLUSTER MEET.
local_cluster start_cluster(int masters) {
  local_cluster c;
  char dir[] = "/tmp/river-bench-cluster-XXXXXX";
  if (!::mkdtemp(dir)) std::exit(1);
  c.dir = dir;
  for (int i = 0; i < masters; ++i) add_node(c);
  for (int i = 0; i < masters; ++i) {
    const int first = 16384 * i / masters, last = 16384 * (i + 1) / masters - 1;
    c.cli(static_cast<std::size_t>(i), "CLUSTER ADDSLOTSRANGE " + std::to_string(first) + " " + std::to_string(last));
    if (i > 0) c.cli(0, "CLUSTER MEET 127.0.0.1 " + std::to_string(c.ports[static_cast<std::size_t>(i)]));
  }
  for (int t = 0; t < 1000; ++t) {
    bool ok = true;
    for (std::size_t i = 0; i < c.ports.size(); ++i) {
      const auto info = c.cli(i, "CLUSTER INFO");
      ok = ok && info.find("cluster_state:ok") != std::string::npos &&
           info.find("cluster_known_nodes:" + std::to_string(masters)) != std::string::npos;
    }
    if (ok) return c;
    std::this_thread::sleep_for(20ms);
  }
  std::cerr << "redis_bench: the cluster of " << masters << " did not become ok\n";
  std::exit(1);
}

// A replica of master 0, synchronized. It is not a seed of `c.url()`: reads and writes go to masters.
void add_replica(local_cluster& c) {
  const auto at = add_node(c);
  c.cli(0, "CLUSTER MEET 127.0.0.1 " + std::to_string(c.ports[at]));
  const auto master_id = c.cli(0, "CLUSTER MYID");
  for (int t = 0; t < 500; ++t) {
    if (c.cli(at, "CLUSTER REPLICATE " + master_id).starts_with("OK")) break;
    std::this_thread::sleep_for(20ms);
  }
  for (int t = 0; t < 500 && c.cli(0, "INFO replication").find("state=online") == std::string::npos; ++t)
    std::this_thread::sleep_for(20ms);
  c.ports.pop_back();  // the seeds and the command counts stay the masters'
}

void stop_cluster(local_cluster& c) {
  for (auto pid : c.pids) ::kill(pid, SIGTERM);
  for (auto pid : c.pids) ::waitpid(pid, nullptr, 0);
  std::system(("rm -rf " + c.dir).c_str());
}

// redis-benchmark's pipelined XADD spread over the cluster's masters (`{tag}` picks a key per
// node); on one master without --cluster, which refuses a cluster of one node.
double raw_cluster_rate(const local_cluster& c, int events) {
  const auto mode = c.ports.size() > 1 ? std::string(" --cluster") : std::string();
  const auto out = run_and_capture("redis-benchmark" + mode + " -p " + std::to_string(c.ports[0]) + " -n " +
                                   std::to_string(events) + " -c 50 -P 16 -q XADD 'bench:{tag}' '*' item '" + payload +
                                   "' 2>/dev/null");
  for (std::size_t i = 0; i < c.ports.size(); ++i) c.cli(i, "FLUSHALL");
  return requests_per_second(out);
}

}  // namespace

int cluster_bench(int events) {
  std::cout << "redis_bench --cluster: " << events << " events of " << payload.size()
            << " bytes per measurement, one thread; every node and this process share the machine's cores\n";
  for (int masters : {1, 2, 3}) {
    auto c = start_cluster(masters);
    constexpr int rounds = 3;
    std::vector<double> raw, river_rate;
    for (int r = 0; r < rounds; ++r) {
      raw.push_back(raw_cluster_rate(c, events));
      river_rate.push_back(append_rate(c.url(), 1000, events));
    }
    const auto cost = remote_reader_cost(c.url(), c.ports, 10, 2000);
    const double raw_median = percentile(raw, 0.5), river_median = percentile(river_rate, 0.5);
    std::printf("%d master%s: redis-benchmark -c 50 -P 16 XADD %9.0f/s | provider, 1000 runs %9.0f appends/s (%4.1f%%)"
                " | remote reader %5.1f us CPU, %.2f commands per event\n",
                masters, masters == 1 ? " " : "s", raw_median, river_median, raw_median > 0 ? 100 * river_median / raw_median : 0,
                cost.cpu_us, cost.commands);
    std::fflush(stdout);
    stop_cluster(c);
  }
  // The cost of wait_replicas: one master with one replica, the same appends with and without
  // WAIT 1 after each batch.
  auto c = start_cluster(1);
  add_replica(c);
  for (int runs : {1, 1000}) {
    std::vector<double> without, with;
    for (int r = 0; r < 3; ++r) {
      without.push_back(append_rate(c.url(), runs, runs == 1 ? 20'000 : events, 0));
      with.push_back(append_rate(c.url(), runs, runs == 1 ? 20'000 : events, 1));
    }
    std::printf("1 master + 1 replica, %4d run%s: %9.0f appends/s without WAIT, %9.0f with wait_replicas = 1\n", runs,
                runs == 1 ? " " : "s", percentile(without, 0.5), percentile(with, 0.5));
  }
  stop_cluster(c);
  return 0;
}

}  // namespace redis_bench
