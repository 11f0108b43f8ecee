// In-memory provider benchmark: one runner appends 64-byte chunks through the full River path
// (caller, run context, provider); 1 or 100 concurrent readers follow the run live. Everything
// runs on one thread (one core). Prints events/s and the append-to-reader latency.
//
//   memory_bench [events] [decode]
//
// Readers read raw records (what the HTTP adapter forwards) unless "decode" is given, in which
// case they decode every event as the in-process event reader does.

#include <river/river.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

struct scenario {
  std::size_t events;
  int readers;
  bool paced;   // the runner yields after every append (latency), or River yields for it (throughput)
  bool decode;
};

struct outcome {
  double seconds = 0;
  std::vector<double> latencies_us;
};

std::size_t sequence_of(std::string_view position) {
  std::size_t n = 0;
  std::from_chars(position.data(), position.data() + position.size(), n);
  return n;
}

outcome run(const scenario& s) {
  asio::io_context io(1);
  std::vector<clock_type::time_point> appended_at(s.events + 3);
  outcome out;
  out.latencies_us.reserve(s.paced ? s.events * static_cast<std::size_t>(s.readers) : 0);

  river::router routes;
  routes.add("bench", river::stream<json, std::string>().runner(
                          [&](river::run_context<json, std::string>& ctx) -> asio::awaitable<void> {
                            const std::string chunk(64, 'x');
                            for (std::size_t i = 0; i < s.events; ++i) {
                              appended_at[i + 2] = clock_type::now();  // position of chunk i is i + 2
                              co_await ctx.append(chunk);
                              if (s.paced) co_await asio::post(ctx.get_executor(), asio::use_awaitable);
                            }
                          }));
  river::caller caller(io.get_executor(), routes);

  int readers_done = 0;
  clock_type::time_point began, ended;
  auto record = [&](std::string_view position) {
    if (!s.paced) return;
    auto seq = sequence_of(position);
    if (seq >= 2 && seq < s.events + 2)
      out.latencies_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - appended_at[seq]).count());
  };
  auto follow = [&](river::event_reader reader) -> asio::awaitable<void> {
    if (s.decode) {
      while (auto ev = co_await reader.next()) record(ev->position);
    } else {
      auto log = reader.release();
      std::vector<river::record_view> batch;
      for (;;) {
        batch.clear();
        auto st = (co_await log->read(batch, 256, clock_type::time_point::max())).value();
        for (auto& r : batch) record(r.position);
        if (st == river::read_status::end) break;
      }
    }
    if (++readers_done == s.readers) ended = clock_type::now();
  };

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        began = clock_type::now();
        json input = nullptr;
        auto first = (co_await caller.start("bench", input)).value();
        const auto token = first.resumption_token();
        asio::co_spawn(io, follow(std::move(first)), asio::detached);
        for (int r = 1; r < s.readers; ++r) {
          auto reader = (co_await caller.resume(token)).value();
          asio::co_spawn(io, follow(std::move(reader)), asio::detached);
        }
      },
      asio::detached);
  io.run();
  out.seconds = std::chrono::duration<double>(ended - began).count();
  return out;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const bool decode = argc > 2 && std::string(argv[2]) == "decode";
  std::printf("river memory provider benchmark: %zu chunks of 64 bytes, one thread, readers %s\n", events,
              decode ? "decode events" : "read raw records");
  std::printf("%-8s %-11s %16s %18s %10s %10s\n", "readers", "runner", "events/s", "deliveries/s", "p50 us",
              "p99 us");
  for (int readers : {1, 100}) {
    // Throughput: River suspends the runner after its budget of appends; readers catch up in batches.
    auto fast = run({events / static_cast<std::size_t>(readers > 1 ? 10 : 1), readers, false, decode});
    const auto n = static_cast<double>(events / static_cast<std::size_t>(readers > 1 ? 10 : 1));
    std::printf("%-8d %-11s %16.0f %18.0f %10s %10s\n", readers, "batched", n / fast.seconds,
                n * readers / fast.seconds, "-", "-");
    // Latency: the runner yields after every append, as a runner waiting on a model does.
    auto paced = run({events / static_cast<std::size_t>(readers > 1 ? 100 : 10), readers, true, decode});
    const auto m = static_cast<double>(events / static_cast<std::size_t>(readers > 1 ? 100 : 10));
    std::printf("%-8d %-11s %16.0f %18.0f %10.2f %10.2f\n", readers, "paced", m / paced.seconds,
                m * readers / paced.seconds, percentile(paced.latencies_us, 0.50),
                percentile(paced.latencies_us, 0.99));
  }
}
