// Chaos soak: two chat_server processes on one Redis (AOF, fsync always) while clients start
// runs, resume them from random positions, cut their connections and cancel them, and the chaos
// kills and restarts an instance, pauses Redis, or kills and restarts it. At the end every event
// a reader received is checked against XRANGE, byte for byte and in order, and every run must
// have ended: complete, aborted, or with a fatal error that says why.
//
// RIVER_CHAOS_SECONDS sets how long the chaos lasts (default 20: what CI runs);
// scripts/chaos.sh runs it longer and prints the counts.

#include "chat_instance.hpp"
#include "support/bounded.hpp"

#include <river/redis/connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <random>

using namespace river::test;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::string_view endpoint = "/api/river";

// One event as an event stream carries it: its data message and the id-only message after it.
struct record {
  std::string id, data;
  friend bool operator==(const record&, const record&) = default;
};

// The records of an event stream's body whose ids arrived; comments (keep-alives) are skipped.
std::vector<record> records_of(const std::string& body) {
  std::vector<record> out;
  std::optional<std::string> data;
  for (std::size_t at = 0, end; (end = body.find("\n\n", at)) != std::string::npos; at = end + 2) {
    const std::string_view message(body.data() + at, end - at);
    if (message.starts_with("data: ")) {
      data = std::string(message.substr(6));
    } else if (message.starts_with("id: ") && data) {
      out.push_back({std::string(message.substr(4)), std::move(*data)});
      data.reset();
    }
  }
  return out;
}

// "stream_end", "aborted", "stream_fatal_error", or "" for an event that does not end a run.
std::string terminal_kind(const std::string& data) {
  const auto e = json::parse(data, nullptr, false);
  if (!e.is_object()) return "";
  if (e.value("type", "") == "aborted") return "aborted";
  if (e.value("type", "") != "special") return "";
  const std::string kind = e.at("special").value("RIVER_SPECIAL_TYPE_KEY", "");
  return kind == "stream_end" || kind == "stream_fatal_error" ? kind : "";
}

struct run_info {
  std::string token, key;
  std::vector<std::string> positions;  // seen by readers: where resumes start
};

// What one reader received.
struct reading {
  std::size_t run = 0;
  std::string after;  // empty: from the start
  std::vector<record> got;
};

struct world {
  explicit world(unsigned seed) : redis(redis_server::options{true, {}}), rng(seed) {
    for (auto& i : instances) i = std::make_unique<chat_instance>(redis, 15, 2000);
  }

  redis_server redis;
  std::array<std::unique_ptr<chat_instance>, 2> instances;
  std::mt19937 rng;
  std::vector<run_info> runs;
  std::vector<reading> reads;
  std::map<std::string, std::uint64_t> counts;

  std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); }
  std::chrono::milliseconds between(int lo_ms, int hi_ms) {
    return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo_ms, hi_ms)(rng));
  }
  // An instance that is up (one always is: the chaos takes down one at a time).
  tcp::endpoint pick() {
    const auto i = below(2);
    return instances[i] ? instances[i]->ep : instances[1 - i]->ep;
  }
  // Reads the instances' output, so that their pipes never fill.
  void drain() {
    for (auto& i : instances)
      if (i)
        while (auto line = i->process.read_line(std::chrono::milliseconds(1))) ++counts["server log lines"];
  }
};

// Reads a response's body until it ends, or until `cut_after` events when not 0 (the client
// drops the connection), within a minute.
asio::awaitable<std::vector<record>> read_events(world& w, http_connection& c, std::size_t cut_after) {
  const auto until = clock_type::now() + std::chrono::minutes(1);
  while (co_await c.read_some()) {
    if (cut_after > 0 && records_of(c.body()).size() >= cut_after) {
      ++w.counts["client cuts"];
      c.close();
      break;
    }
    if (clock_type::now() > until) {
      ++w.counts["readers stuck past a minute"];
      c.close();
      break;
    }
  }
  auto got = records_of(c.body());
  if (got.empty() || terminal_kind(got.back().data).empty()) ++w.counts["reads ended without a terminal event"];
  co_return got;
}

std::size_t maybe_cut(world& w) { return w.below(10) < 3 ? 1 + w.below(30) : 0; }

asio::awaitable<void> start_one(world& w, int n) {
  http_connection c(co_await asio::this_coro::executor);
  json body = {{"routerStreamKey", "chat"}, {"input", {{"message", "chaos question " + std::to_string(n)}}}};
  const auto opened = co_await c.open(w.pick(), post_request(endpoint, body.dump(), "application/json"));
  if (opened || c.status() != 200) {
    ++w.counts[opened ? "starts failed (" + opened.message() + ")" : "starts answered " + std::to_string(c.status())];
    co_return;
  }
  auto got = co_await read_events(w, c, maybe_cut(w));
  if (got.empty()) {
    ++w.counts["starts cut before the start event"];
    co_return;
  }
  const auto start = json::parse(got.front().data).at("special");
  ++w.counts["runs started"];
  run_info r{start.at("encodedResumptionToken"), "stream-chat-test-" + start.at("streamRunId").get<std::string>(), {}};
  for (const auto& rec : got) r.positions.push_back(rec.id);
  w.runs.push_back(std::move(r));
  w.reads.push_back({w.runs.size() - 1, "", std::move(got)});
}

asio::awaitable<void> resume_one(world& w) {
  const auto i = w.below(w.runs.size());
  std::optional<std::string> after;
  if (w.below(3) != 0) after = w.runs[i].positions[w.below(w.runs[i].positions.size())];
  http_connection c(co_await asio::this_coro::executor);
  const auto opened = co_await c.open(w.pick(), get_request(endpoint, w.runs[i].token, after));
  if (opened || c.status() != 200) {
    ++w.counts[opened ? "resumes failed (" + opened.message() + ")" : "resumes answered " + std::to_string(c.status())];
    co_return;
  }
  ++w.counts[after ? "resumes from a position" : "resumes from the start"];
  auto got = co_await read_events(w, c, maybe_cut(w));
  for (const auto& rec : got) w.runs[i].positions.push_back(rec.id);
  w.reads.push_back({i, after.value_or(""), std::move(got)});
}

asio::awaitable<void> cancel_one(world& w) {
  const auto& r = w.runs[w.below(w.runs.size())];
  auto reply = co_await exchange(w.pick(), delete_request(endpoint, r.token));
  ++w.counts["cancels answered " + std::to_string(reply.status)];
}

asio::awaitable<void> client(world& w, clock_type::time_point until, int id) {
  for (int n = 0; clock_type::now() < until; ++n) {
    const auto dice = w.below(10);
    if (dice < 4 || w.runs.empty())
      co_await start_one(w, id * 100000 + n);
    else if (dice < 8)
      co_await resume_one(w);
    else
      co_await cancel_one(w);
  }
}

// Takes one thing down at a time, for a moment, until `until`: the three kinds in turn, from a
// random one, so that a short soak has each.
asio::awaitable<void> chaos(world& w, clock_type::time_point until) {
  for (auto turn = w.below(3); clock_type::now() < until; ++turn) {
    co_await sleep_for(w.between(1000, 3000));
    w.drain();
    switch (turn % 3) {
      case 0: {
        auto& victim = w.instances[w.below(2)];
        victim->process.kill(SIGKILL);
        victim.reset();
        ++w.counts["chaos: instance SIGKILL and restart"];
        co_await sleep_for(w.between(200, 1500));
        victim = std::make_unique<chat_instance>(w.redis, 15, 2000);
        break;
      }
      case 1:
        ::kill(w.redis.pid(), SIGSTOP);
        ++w.counts["chaos: Redis SIGSTOP and SIGCONT"];
        co_await sleep_for(w.between(500, 4000));
        ::kill(w.redis.pid(), SIGCONT);
        break;
      default:
        w.redis.kill();
        ++w.counts["chaos: Redis SIGKILL and restart (AOF)"];
        co_await sleep_for(w.between(300, 2000));
        w.redis.start();
        break;
    }
  }
}

// The run's entries in Redis: its items, and whether the end entry closes them.
struct stored_run {
  std::vector<record> items;
  bool ended = false;
};

asio::awaitable<stored_run> stored(river::redis::connection& redis, const std::string& key) {
  river::redis::request req;
  req.push({"XRANGE", key, "-", "+"});
  auto [ec, replies] = co_await redis.async_exec(req, asio::as_tuple(asio::use_awaitable));
  REQUIRE_FALSE(ec);
  stored_run out;
  for (const auto& e : replies.at(0).elements) {
    const auto& fields = e.elements.at(1).elements;
    if (fields.at(0).text == "end") out.ended = true;
    if (fields.at(0).text == "item") out.items.push_back({e.elements.at(0).text, fields.at(1).text});
  }
  co_return out;
}

// Whether a reader got a contiguous part of what Redis holds, from where it asked, byte for byte.
bool matches(const reading& r, const stored_run& s) {
  std::size_t from = 0;
  if (!r.after.empty()) {
    auto it = std::find_if(s.items.begin(), s.items.end(), [&](const record& i) { return i.id == r.after; });
    if (it == s.items.end()) return false;
    from = static_cast<std::size_t>(it - s.items.begin()) + 1;
  }
  if (from + r.got.size() > s.items.size()) return false;
  for (std::size_t i = 0; i < r.got.size(); ++i)
    if (!(r.got[i] == s.items[from + i])) return false;
  // A reader that got the terminal event got everything up to it.
  return r.got.empty() || terminal_kind(r.got.back().data).empty() || from + r.got.size() == s.items.size();
}

void describe_mismatch(const reading& r, const run_info& run, const stored_run& s) {
  std::cout << "MISMATCH in " << run.key << ", read after '" << r.after << "' got " << r.got.size()
            << " events; Redis holds " << s.items.size() << " items" << (s.ended ? " and the end" : "") << "\n";
  std::size_t k = 0;
  if (!r.after.empty()) {
    auto it = std::find_if(s.items.begin(), s.items.end(), [&](const record& i) { return i.id == r.after; });
    if (it == s.items.end()) std::cout << "  the position it read after is not in Redis\n";
    k = it == s.items.end() ? 0 : static_cast<std::size_t>(it - s.items.begin()) + 1;
  }
  for (std::size_t i = 0; i < r.got.size(); ++i, ++k) {
    const bool same = k < s.items.size() && r.got[i] == s.items[k];
    if (same && i + 3 < r.got.size()) continue;
    std::cout << "  got    " << r.got[i].id << " " << r.got[i].data.substr(0, 120) << "\n";
    if (k < s.items.size()) std::cout << "  stored " << s.items[k].id << " " << s.items[k].data.substr(0, 120) << "\n";
    if (!same) break;
  }
}

}  // namespace

TEST_CASE("chaos soak: instances and Redis killed, paused and restarted under load lose and repeat nothing",
          "[redis][demo][chaos]") {
  if (!redis_or_skip()) return;
  const char* configured = std::getenv("RIVER_CHAOS_SECONDS");
  const auto seconds = std::chrono::seconds(configured ? std::atoi(configured) : 20);
  const auto seed = static_cast<unsigned>(std::random_device{}());
  INFO("seed " << seed);
  world w(seed);
  run_bounded(
      [&](asio::io_context& io) -> asio::awaitable<void> {
        const auto until = clock_type::now() + seconds;
        auto ex = io.get_executor();
        auto clients = std::make_shared<int>(0);
        for (int id = 0; id < 6; ++id) {
          ++*clients;
          asio::co_spawn(ex, client(w, until, id), [clients](std::exception_ptr e) {
            --*clients;
            if (e) std::rethrow_exception(e);
          });
        }
        co_await chaos(w, until);
        for (int i = 0; i < 1200 && *clients > 0; ++i) co_await sleep_for(std::chrono::milliseconds(100));
        REQUIRE(*clients == 0);
        w.drain();

        // Every run ends: one whose instance died is closed ("producer lost") once a reader
        // follows it on a live instance.
        river::redis::connection redis(ex, w.redis.url());
        redis.start();
        std::map<std::string, std::uint64_t> outcomes;
        std::vector<stored_run> final_state;
        for (auto& r : w.runs) {
          auto s = co_await stored(redis, r.key);
          if (!s.ended) {
            http_connection c(ex);
            const auto failed = co_await c.open(w.pick(), get_request(endpoint, r.token));
            if (!failed) (void)co_await read_events(w, c, 0);
            s = co_await stored(redis, r.key);
          }
          if (!s.ended || s.items.empty()) {
            ++outcomes["not ended"];
          } else {
            const auto kind = terminal_kind(s.items.back().data);
            auto label = kind.empty() ? std::string("ended without a terminal event") : kind;
            if (kind == "stream_fatal_error") {
              const std::string message = json::parse(s.items.back().data)["special"]["error"].value("message", "");
              label += message.empty() ? " without a message" : ": " + message.substr(0, message.find(':'));
            }
            ++outcomes[label];
          }
          final_state.push_back(std::move(s));
        }
        std::size_t mismatched = 0, events = 0;
        for (const auto& r : w.reads) {
          events += r.got.size();
          if (matches(r, final_state[r.run])) continue;
          // The first few, whole, for whoever finds out why.
          if (++mismatched <= 3) describe_mismatch(r, w.runs[r.run], final_state[r.run]);
        }
        std::size_t described = 0;
        for (std::size_t i = 0; i < final_state.size() && described < 3; ++i) {
          const auto& items = final_state[i].items;
          if (items.empty() || items.back().data.find("without a terminal event") == std::string::npos) continue;
          ++described;
          std::cout << "run " << w.runs[i].key << " ended without its terminal event; its last entries:\n";
          for (std::size_t k = items.size() > 4 ? items.size() - 4 : 0; k < items.size(); ++k)
            std::cout << "  " << items[k].id << " " << items[k].data.substr(0, 160) << "\n";
        }
        redis.close();

        std::cout << "chaos soak: " << seconds.count() << " s, seed " << seed << "\n";
        for (const auto& [what, n] : w.counts) std::cout << "  " << what << ": " << n << "\n";
        std::cout << "  reads checked against XRANGE: " << w.reads.size() << " (" << events << " events), mismatched "
                  << mismatched << "\n";
        for (const auto& [what, n] : outcomes) std::cout << "  runs " << what << ": " << n << "\n";

        CHECK(mismatched == 0u);
        CHECK(outcomes["not ended"] == 0u);
        CHECK(outcomes["ended without a terminal event"] == 0u);
        CHECK(outcomes["stream_fatal_error without a message"] == 0u);
        CHECK(w.counts["readers stuck past a minute"] == 0u);
        CHECK(w.runs.size() > 0u);
      },
      seconds + std::chrono::minutes(5));
}
