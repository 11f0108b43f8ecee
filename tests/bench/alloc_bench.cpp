// bench/alloc_bench counts the heap allocations River makes per delivered event in steady state.
// Run here with a small window, so that the benchmark cannot rot and so that a change that makes
// the delivery path allocate per event, or per reader of an event, fails a test.

#include "support/child_process.hpp"
#include "support/redis_server.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

using namespace river::test;

namespace {

struct counted {
  double per_append = -1;
  double per_delivered = -1;
};

// alloc_bench pads a scenario's name to this width.
constexpr std::size_t name_width = 36;

// Runs alloc_bench with `extra` arguments to its end; its scenarios' figures by name.
std::map<std::string, counted> run_alloc_bench(std::vector<std::string> extra) {
  std::vector<std::string> args = {RIVER_ALLOC_BENCH, "--window", "8000"};
  args.insert(args.end(), extra.begin(), extra.end());
  child_process process(args);
  std::map<std::string, counted> figures;
  while (auto line = process.read_line(std::chrono::seconds(120))) {
    // "<name, padded to 36>  <x> per append  <y> per delivered event  (...)"
    counted c;
    if (line->size() <= name_width || std::sscanf(line->c_str() + name_width, "%lf per append %lf per delivered",
                                                  &c.per_append, &c.per_delivered) != 2)
      continue;
    const auto name = line->substr(0, line->find_last_not_of(' ', name_width - 1) + 1);
    figures[name] = c;
  }
  CHECK(process.stop(SIGTERM, std::chrono::seconds(10)) == 0);
  return figures;
}

}  // namespace

TEST_CASE("alloc_bench: the memory provider's delivery path allocates only as its storage grows", "[bench]") {
  const auto figures = run_alloc_bench({"--max-per-event", "0.1"});
  REQUIRE(figures.size() == 3);
  for (const auto& [name, c] : figures) {
    INFO(name);
    // Storage grows in blocks (the record index's, every 32 records; the pages of frames): a few
    // hundredths of an allocation per record, never one per record or per reader.
    CHECK(c.per_append >= 0);
    CHECK(c.per_append < 0.1);
    CHECK(c.per_delivered < 0.1);
  }
}

TEST_CASE("alloc_bench: on Redis, fan-out to local readers allocates nothing per reader", "[bench][redis]") {
  if (!redis_or_skip()) return;
  redis_server redis;
  const auto figures = run_alloc_bench({"--redis", redis.url()});
  REQUIRE(figures.size() == 3);
  // Per append the Redis path allocates a few times (its position as a string, each XADD's reply,
  // per batch the completion of the command); fifty readers must not multiply that.
  const auto& fan_out = figures.at("1 run, 50 readers, no pause");
  CHECK(fan_out.per_append > 0);
  CHECK(fan_out.per_delivered < 0.2);
}
