// Readers at different positions, joining before, during and after a run, all see the exact
// same sequence, with no loss or repetition: 1000 runs of 100 chunks on two threads.

#include <river/caller.hpp>

#include "support/bounded.hpp"
#include "support/collect.hpp"

#include <boost/asio/post.hpp>

#include <mutex>
#include <random>

using namespace river::test;
using json = nlohmann::json;

namespace {

constexpr int runs = 1000;
constexpr int chunks_per_run = 100;
constexpr int workers = 25;

struct failures {
  std::mutex mutex;
  std::vector<std::string> list;
  void add(std::string what) {
    std::lock_guard lk(mutex);
    if (list.size() < 20) list.push_back(std::move(what));
  }
};

river::router counting_router() {
  river::router r;
  r.add("count", river::stream<json, int>().runner([](river::run_context<json, int>& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < chunks_per_run; ++i) {
      co_await ctx.append(i);
      // Let readers in mid-run.
      if (i % 7 == 0) co_await asio::post(ctx.get_executor(), asio::use_awaitable);
    }
  }));
  return r;
}

// The full log must be: start, chunks 0..99, end, at positions 1..102.
bool well_formed(const std::vector<river::event>& evs, std::string& why) {
  if (evs.size() != chunks_per_run + 2) {
    why = "length " + std::to_string(evs.size());
    return false;
  }
  if (evs.front().kind() != river::event_kind::start) {
    why = "no start";
    return false;
  }
  for (int i = 0; i < chunks_per_run; ++i) {
    const auto& e = evs[static_cast<std::size_t>(i) + 1];
    if (!e.chunk() || *e.chunk() != i) {
      why = "chunk " + std::to_string(i) + " is " + river::to_json_text(e);
      return false;
    }
  }
  auto end = evs.back().get_if<river::events::end>();
  if (!end || end->total_chunks != chunks_per_run) {
    why = "bad end";
    return false;
  }
  for (std::size_t i = 0; i < evs.size(); ++i)
    if (evs[i].position != std::to_string(i + 1)) {
      why = "position " + evs[i].position + " at " + std::to_string(i);
      return false;
    }
  return true;
}

asio::awaitable<void> check_run(river::caller& c, std::mt19937& rng, failures& f) {
  json input = nullptr;
  auto starter = (co_await c.start("count", input)).value();
  const auto token = starter.resumption_token();
  auto ex = co_await asio::this_coro::executor;

  // Joins before the runner has done much: from the start.
  std::vector<river::event> early;
  bool early_done = false;
  asio::co_spawn(
      ex,
      [&]() -> asio::awaitable<void> {
        auto r = (co_await c.resume(token)).value();
        early = co_await collect(r);
      },
      [&](std::exception_ptr) { early_done = true; });

  // Joins during the run, after the position the starter reached.
  const int k = std::uniform_int_distribution<int>(1, 60)(rng);
  std::vector<river::event> full;
  for (int i = 0; i < k; ++i) full.push_back(*co_await starter.next());
  auto during_reader = (co_await c.resume(token, starter.position())).value();
  auto during = co_await collect(during_reader);
  auto rest = co_await collect(starter);
  full.insert(full.end(), rest.begin(), rest.end());

  // Joins after the end, at any position.
  const int p = std::uniform_int_distribution<int>(0, chunks_per_run + 2)(rng);
  std::optional<std::string> late_position;
  if (p != 0) late_position = std::to_string(p);
  auto late_reader = (co_await c.resume(token, std::move(late_position))).value();
  auto late = co_await collect(late_reader);

  while (!early_done) co_await asio::post(ex, asio::use_awaitable);

  std::string why;
  if (!well_formed(full, why)) f.add("starter: " + why);
  auto expected = texts(full);
  if (texts(early) != expected) f.add("early reader differs");
  if (texts(during) != std::vector(expected.begin() + k, expected.end())) f.add("reader joining at " + std::to_string(k) + " differs");
  if (texts(late) != std::vector(expected.begin() + p, expected.end())) f.add("reader joining at " + std::to_string(p) + " after the end differs");
}

}  // namespace

TEST_CASE("1000 runs of 100 chunks: readers joining before, during and after see the same sequence") {
  failures f;
  std::atomic<int> finished_workers{0};
  std::atomic<int> checked{0};
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        river::caller c(io.get_executor(), counting_router());
        for (int w = 0; w < workers; ++w) {
          asio::co_spawn(
              io,
              [&, w]() -> asio::awaitable<void> {
                std::mt19937 rng(static_cast<unsigned>(w));
                for (int i = 0; i < runs / workers; ++i) {
                  co_await check_run(c, rng, f);
                  ++checked;
                }
              },
              [&](std::exception_ptr e) {
                if (e) f.add("a worker failed with an exception");
                ++finished_workers;
              });
        }
        while (finished_workers != workers) co_await sleep_for(5ms);
        while (c.active_runs() != 0) co_await sleep_for(1ms);
        CHECK(c.stats().runs_ended == runs);
      },
      120s, 2);
  CHECK(checked == runs);
  INFO((f.list.empty() ? std::string() : f.list.front()));
  CHECK(f.list.empty());
}
