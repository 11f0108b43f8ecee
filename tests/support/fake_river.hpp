#pragma once

// A River server reduced to one run with a fixed log, for client tests: it answers start,
// resume and cancel like a River server, with or without positions (a TypeScript River server
// sends none and replays from the start), and can cut, stall or garble each response.

#include <river/event.hpp>
#include <river/resume_token.hpp>

#include "support/sse_server.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace river::test {

/// How a cut response ends.
enum class cut_kind {
  clean,        ///< after an event and its position
  mid_message,  ///< in the middle of the next event's data line
  before_id,    ///< after the next event, before its position
};

/// The input of the fake's stream.
inline nlohmann::json chat_input() {
  nlohmann::json input;
  input["message"] = "hi";
  return input;
}

struct fake_river_options {
  bool send_ids = true;
  /// For each response in turn (start or resume): the events to send before cutting it; -1 or a
  /// response past the list sends every event.
  std::vector<int> cut_after;
  cut_kind cut = cut_kind::clean;
  /// Instead of cutting: send that many events, then stall (send nothing) for `stall`.
  std::vector<int> stall_after;
  std::chrono::milliseconds stall{std::chrono::seconds(10)};
  bool chunked = false;
  /// Send each position in its own write, after its event.
  bool separate_id_writes = false;
  /// A heartbeat comment before each event.
  bool heartbeats = false;
  /// Positions inside each event's message (`id:` then `data:`), as generic SSE servers send them.
  bool ids_in_message = false;
  /// A `retry:` field at the start of each response (milliseconds), when set.
  std::optional<int> retry;
  /// Wait before each event.
  std::chrono::milliseconds pace{0};
  /// Statuses for resume requests, in turn, instead of a stream (0: serve the stream).
  std::vector<int> resume_statuses;
};

/// A run of `chunks` chunks `{"text":"t1"}`, ... ending with `stream_end`, at positions
/// "1700000000000-1", ... (start is 1).
class fake_river {
 public:
  explicit fake_river(int chunks = 5, fake_river_options o = {}, std::string run_id = "run-1", bool resumable = true)
      : s_(std::make_shared<state>()) {
    s_->options = std::move(o);
    s_->run_id = run_id;
    if (resumable) s_->token = encode_token(resumption_token{"memory", "chat", "default", run_id, {}});
    s_->events.push_back(to_json_text(event{events::start{run_id, s_->token}, {}}));
    for (int i = 1; i <= chunks; ++i) {
      nlohmann::json chunk = {{"text", "t" + std::to_string(i)}};
      s_->events.push_back(to_json_text(event{events::chunk<nlohmann::json>{chunk}, {}}));
    }
    s_->events.push_back(to_json_text(event{events::end{static_cast<std::uint64_t>(chunks), 42}, {}}));
  }

  static std::string position(std::size_t index) { return "1700000000000-" + std::to_string(index); }

  const std::string& token() const { return s_->token; }
  const std::string& run_id() const { return s_->run_id; }
  /// The log's events, as JSON text; editable before the first request.
  std::vector<std::string>& events() { return s_->events; }
  fake_river_options& options() { return s_->options; }
  int responses() const { return s_->responses; }
  int cancels() const { return s_->cancels; }

  request_handler handler() const {
    auto s = s_;
    return [s](const http_request& req, response_writer& w) -> asio::awaitable<void> { co_await serve(s, req, w); };
  }

 private:
  struct state {
    fake_river_options options;
    std::string run_id, token;
    std::vector<std::string> events;
    int responses = 0;
    int resumes = 0;
    int cancels = 0;
  };

  static std::string river_error(const std::string& message, const std::string& type) {
    nlohmann::json j = {{"__name__", "RiverError"},
                        {"message", message},
                        {"type", type},
                        {"cause", nullptr},
                        {"context", nlohmann::json::object()}};
    return j.dump();
  }

  static asio::awaitable<void> serve(std::shared_ptr<state> s, const http_request& req, response_writer& w) {
    const auto& o = s->options;
    std::size_t from = 0;
    if (req.method == "POST") {
      auto body = nlohmann::json::parse(req.body, nullptr, false);
      if (!body.is_object() || body.value("routerStreamKey", "") != "chat") {
        co_await w.respond(404, river_error("Stream not found", "internal"));
        co_return;
      }
    } else if (req.method == "GET" || req.method == "DELETE") {
      if (req.query("resumeKey") != s->token) {
        co_await w.respond(404, river_error("Run not found", "internal"));
        co_return;
      }
      if (req.method == "DELETE") {
        ++s->cancels;
        co_await w.respond(204, "");
        co_return;
      }
      auto k = static_cast<std::size_t>(s->resumes++);
      if (k < o.resume_statuses.size() && o.resume_statuses[k] != 0) {
        co_await w.respond(o.resume_statuses[k], river_error("Try later", "network"));
        co_return;
      }
      // A TypeScript River server knows no positions: it replays from the start.
      auto last = req.header("Last-Event-ID");
      if (o.send_ids && req.has_header("Last-Event-ID")) {
        bool found = false;
        for (std::size_t i = 1; i <= s->events.size(); ++i)
          if (position(i) == last) {
            from = i;
            found = true;
          }
        if (!found) {
          co_await w.respond(400, river_error("Invalid position", "validation"));
          co_return;
        }
      }
    } else {
      co_await w.respond(400, river_error("Bad method", "internal"));
      co_return;
    }

    auto k = static_cast<std::size_t>(s->responses++);
    int cut_after = k < o.cut_after.size() ? o.cut_after[k] : -1;
    int stall_after = k < o.stall_after.size() ? o.stall_after[k] : -1;
    if (!co_await w.head(200, "text/event-stream", o.chunked)) co_return;
    if (o.retry && !co_await w.send("retry: " + std::to_string(*o.retry) + "\n\n")) co_return;
    int sent = 0;
    for (std::size_t i = from; i < s->events.size(); ++i) {
      if (sent == stall_after) {
        co_await pause(o.stall);
        co_return;
      }
      if (sent == cut_after) {
        if (o.cut == cut_kind::mid_message) {
          co_await w.send("data: " + s->events[i].substr(0, s->events[i].size() / 2));
        } else if (o.cut == cut_kind::before_id) {
          co_await w.event(s->events[i]);
        }
        co_await pause(std::chrono::milliseconds(5));  // let the bytes leave before the cut
        w.cut();
        co_return;
      }
      if (o.pace.count() > 0) co_await pause(o.pace);
      std::string bytes;
      if (o.heartbeats) bytes += ": keep-alive\n\n";
      if (o.ids_in_message) {
        bytes += "id: " + position(i + 1) + "\ndata: " + s->events[i] + "\n\n";
      } else {
        bytes += "data: " + s->events[i] + "\n\n";
        if (o.send_ids && !o.separate_id_writes) bytes += "id: " + position(i + 1) + "\n\n";
      }
      if (!co_await w.send(std::move(bytes))) co_return;
      if (o.send_ids && o.separate_id_writes && !o.ids_in_message) {
        co_await pause(std::chrono::milliseconds(2));
        if (!co_await w.id(position(i + 1))) co_return;
      }
      ++sent;
    }
    co_await w.finish();
  }

  std::shared_ptr<state> s_;
};

}  // namespace river::test
