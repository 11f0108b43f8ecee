// alloc_bench: heap allocations per delivered event in steady state, on River's path from a
// runner's append to its readers' sockets (append -> store -> wake the readers -> write), with the
// in-memory provider and, given --redis URL, the Redis provider (readers on the run's own instance).
//
//   alloc_bench [--redis URL] [--window N] [--max-per-event X]
//
// A River HTTP server runs on one I/O thread of this process; plain TCP readers on a second thread
// read its event streams and drop the bytes. The global `operator new` is replaced to count the
// allocations made on the server's thread (what C++ allocates: containers, strings, coroutine
// frames, Asio's operations; not hiredis's own `malloc` of its read buffer). The first run's runner
// reads the count after a warm-up and again N appends later; every run of a scenario appends at the
// same pace, so the allocations in between are divided by the appends made meanwhile (per append)
// and by those times the readers (per delivered event). A run's own setup (its POST, its state)
// falls outside the window; a last scenario counts it: the allocations of a thousand short runs,
// from their POST to their reader's end, per run. With --max-per-event X it exits 1 when a
// scenario allocates more than X per delivered event: the tests run it so, and steady state stays
// free of allocations.

#include <river/http/server.hpp>
#include <river/redis/provider.hpp>
#include <river/river.hpp>

#include "bench_chunk.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

// --- counting allocations ----------------------------------------------------------------------

namespace {

// Set on the server's thread only: the readers' and the main thread's allocations do not count.
thread_local bool counting_thread = false;
std::atomic<std::uint64_t> allocations{0};
std::atomic<bool> in_window{false};

// Called for each allocation counted in a window: a debugger's breakpoint here shows where they
// come from (`gdb -ex 'break allocation_in_window' -ex run --args alloc_bench`, then `bt`).
[[gnu::noinline]] void allocation_in_window() { asm volatile(""); }

void* counted_allocation(std::size_t size, std::size_t alignment = 0) {
  if (counting_thread) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (in_window.load(std::memory_order_relaxed)) allocation_in_window();
  }
  if (size == 0) size = 1;
  void* p = alignment > alignof(std::max_align_t)
                ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                : std::malloc(size);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t size) { return counted_allocation(size); }
void* operator new[](std::size_t size) { return counted_allocation(size); }
void* operator new(std::size_t size, std::align_val_t a) {
  return counted_allocation(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return counted_allocation(size, static_cast<std::size_t>(a));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_allocation(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& t) noexcept { return operator new(size, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// --- the counted stream ------------------------------------------------------------------------

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace alloc_bench {

struct counted_input {
  std::int64_t n = 0;
  std::int64_t intervalUs = 0;
  std::int64_t startDelayMs = 0;
  std::int64_t windowBegin = -1;  // the run that counts: the appends between which it reads the count
  std::int64_t windowEnd = -1;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(counted_input, n, intervalUs, startDelayMs, windowBegin, windowEnd)

}  // namespace alloc_bench

namespace {

using counted_chunk = bench::bench_chunk;  // the wire benchmark's chunks: 64 bytes of JSON here
using alloc_bench::counted_input;

std::atomic<std::uint64_t> window_begin{0};
std::atomic<std::uint64_t> window_end{0};
std::atomic<bool> window_done{false};

asio::awaitable<void> run_counted(river::run_context<counted_input, counted_chunk>& ctx) {
  const auto& in = ctx.input();
  asio::steady_timer pause(ctx.get_executor());
  if (in.startDelayMs > 0) {
    pause.expires_after(std::chrono::milliseconds(in.startDelayMs));
    co_await pause.async_wait(asio::use_awaitable);
  }
  counted_chunk chunk;
  chunk.p.assign(32, 'x');
  auto due = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < in.n; ++i) {
    if (in.intervalUs > 0) {
      due += std::chrono::microseconds(in.intervalUs);
      pause.expires_at(due);
      co_await pause.async_wait(asio::use_awaitable);
    }
    if (i == in.windowBegin) {
      window_begin = allocations.load();
      in_window = true;
    }
    if (i == in.windowEnd) {
      window_end = allocations.load();
      in_window = false;
      window_done = true;
    }
    chunk.i = i;
    chunk.t = i;
    co_await ctx.append(chunk);
  }
}

// --- readers -----------------------------------------------------------------------------------

std::string start_request(const counted_input& in) {
  const auto body = nlohmann::json{{"routerStreamKey", "counted"}, {"input", in}}.dump();
  return "POST /api/river HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string resume_request(const std::string& token) {
  return "GET /api/river?resumeKey=" + token + " HTTP/1.1\r\nHost: b\r\n\r\n";
}

struct reader_state {
  int ended = 0;
  int failed = 0;
};

// Reads one event stream to its end and drops the bytes. The starter of a run (`resumers` > 0)
// opens that many more readers of it once the start event gave the run's token.
asio::awaitable<void> read_stream(tcp::endpoint ep, std::string request, int resumers, reader_state& st) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket s(ex);
  constexpr auto token = asio::as_tuple(asio::use_awaitable);
  bool ok = false;
  auto [cec] = co_await s.async_connect(ep, token);
  auto wec = cec;
  if (!cec) std::tie(wec, std::ignore) = co_await asio::async_write(s, asio::buffer(request), token);
  if (!wec) {
    std::string seen;  // the head and start event, then the last bytes (an end marker may be split)
    std::vector<char> buf(64 * 1024);
    for (;;) {
      auto [rec, got] = co_await s.async_read_some(asio::buffer(buf), token);
      if (rec) break;
      seen.append(buf.data(), got);
      if (resumers > 0) {
        static constexpr std::string_view key = R"("encodedResumptionToken":")";
        const auto at = seen.find(key);
        const auto end = at == std::string::npos ? at : seen.find('"', at + key.size());
        if (end != std::string::npos) {
          const auto t = seen.substr(at + key.size(), end - at - key.size());
          for (int i = 0; i < resumers; ++i)
            asio::co_spawn(ex, read_stream(ep, resume_request(t), 0, st), asio::detached);
          resumers = 0;
        }
      }
      if (seen.find("stream_end") != std::string::npos) {
        ok = true;
        break;
      }
      if (resumers == 0 && seen.size() > 64) seen.erase(0, seen.size() - 64);
    }
  }
  ++(ok ? st.ended : st.failed);
}

// --- scenarios ---------------------------------------------------------------------------------

struct scenario {
  const char* name;
  int runs;
  int readers;  // per run
  std::int64_t interval_us;
  std::int64_t window;  // appends the counting run makes in the window
};

struct outcome {
  double per_append = 0;
  double per_delivered = 0;
  bool ok = false;
};

outcome run_scenario(tcp::endpoint ep, const scenario& sc) {
  const auto warm = sc.window / 4;
  counted_input in;
  in.n = warm + sc.window + warm;
  in.intervalUs = sc.interval_us;
  in.startDelayMs = sc.readers > 1 ? 300 : 100;  // every reader is attached before the first append
  window_begin = 0;
  window_end = 0;
  window_done = false;

  asio::io_context io(1);
  reader_state st;
  for (int r = 0; r < sc.runs; ++r) {
    auto run_in = in;
    if (r == 0) {
      run_in.windowBegin = warm;
      run_in.windowEnd = warm + sc.window;
    }
    asio::co_spawn(io, read_stream(ep, start_request(run_in), sc.readers - 1, st), asio::detached);
  }
  const auto readers = sc.runs * sc.readers;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (st.ended + st.failed < readers && std::chrono::steady_clock::now() < deadline) io.run_for(50ms);

  outcome o;
  o.ok = window_done && st.ended == readers;
  const auto counted = static_cast<double>(window_end - window_begin);
  const auto appends = static_cast<double>(sc.window) * sc.runs;
  o.per_append = counted / appends;
  o.per_delivered = counted / (appends * sc.readers);
  return o;
}

// A run's own cost, from its POST to its reader's end: `runs` runs of `events` events each, one
// reader each, started together; the allocations of the server's thread over their whole lives
// (the connection, the request, the run's state and storage), per run.
std::optional<double> per_run(tcp::endpoint ep, int runs, std::int64_t events) {
  counted_input in;
  in.n = events;
  asio::io_context io(1);
  reader_state st;
  const auto before = allocations.load();
  in_window = true;
  for (int r = 0; r < runs; ++r) asio::co_spawn(io, read_stream(ep, start_request(in), 0, st), asio::detached);
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (st.ended + st.failed < runs && std::chrono::steady_clock::now() < deadline) io.run_for(50ms);
  std::this_thread::sleep_for(200ms);  // the server closes the connections
  in_window = false;
  if (st.ended != runs) return std::nullopt;
  return static_cast<double>(allocations.load() - before) / runs;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> redis_url;
  std::int64_t window = 20'000;
  std::optional<double> max_per_event;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--redis" && i + 1 < argc)
      redis_url = argv[++i];
    else if (arg == "--window" && i + 1 < argc)
      window = std::max<std::int64_t>(100, std::atoll(argv[++i]));
    else if (arg == "--max-per-event" && i + 1 < argc)
      max_per_event = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: alloc_bench [--redis URL] [--window N] [--max-per-event X]\n");
      return 2;
    }
  }
  if (redis_url && !river::redis::valid_url(*redis_url)) {
    std::fprintf(stderr, "alloc_bench: not a Redis URL: %s\n", redis_url->c_str());
    return 2;
  }

  asio::io_context server_io(1);
  auto counted = river::stream<counted_input, counted_chunk>().runner(run_counted);
  if (redis_url) {
    river::redis::config cfg;
    cfg.url = *redis_url;
    cfg.storage_id = "alloc_bench";
    counted.provider(std::make_shared<river::redis::provider>(server_io.get_executor(), cfg));
  } else {
    river::memory::config memory;
    memory.max_bytes = std::size_t{4} << 30;
    memory.retention = 10s;
    counted.provider(std::make_shared<river::memory::provider>(memory));
  }
  river::router routes;
  routes.add("counted", std::move(counted));
  river::http::server_options options;
  options.port = 0;
  options.max_runs_per_client = 0;
  options.endpoint.start_rate_per_client.per_second = 0;
  river::http::server server(server_io.get_executor(), routes, options);
  if (auto ec = server.start()) {
    std::fprintf(stderr, "alloc_bench: %s\n", ec.message().c_str());
    return 1;
  }
  auto guard = asio::make_work_guard(server_io);
  std::thread server_thread([&] {
    counting_thread = true;
    server_io.run();
  });
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), server.local_endpoint().port());

  const scenario scenarios[] = {
      {"1 run, 1 reader, no pause", 1, 1, 0, window},
      {"1 run, 50 readers, no pause", 1, 50, 0, window / 4},
      {"50 runs, 1 reader each, 1 ms apart", 50, 1, 1000, std::max<std::int64_t>(100, window / 40)},
  };
  std::printf("river alloc_bench (%s provider): heap allocations on the server's thread in steady state\n",
              redis_url ? "Redis" : "memory");
  bool within = true;
  for (const auto& sc : scenarios) {
    const auto o = run_scenario(ep, sc);
    if (!o.ok) {
      std::printf("%-36s failed: not every reader reached the end\n", sc.name);
      within = false;
      continue;
    }
    std::printf("%-36s %8.3f per append  %8.4f per delivered event  (%lld appends counted)\n", sc.name, o.per_append,
                o.per_delivered, static_cast<long long>(sc.window * sc.runs));
    if (max_per_event && o.per_delivered > *max_per_event) within = false;
  }
  (void)per_run(ep, 100, 20);  // warm-up: the server's free lists and recycled memory
  if (const auto r = per_run(ep, 1000, 20))
    std::printf("%-36s %8.1f per run, start to end\n", "1000 runs of 20 events, 1 reader each", *r);
  else {
    std::printf("%-36s failed: not every reader reached the end\n", "1000 runs of 20 events");
    within = false;
  }
  std::fflush(stdout);
  // Runs may still be parked in the provider: skip their destructors, the process ends anyway.
  std::_Exit(within ? 0 : 1);
}
