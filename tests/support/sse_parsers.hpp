#pragma once

// Two readers of an event stream's bytes, written after the two clients River must satisfy:
// the TypeScript River client (split on blank lines, keep messages that begin with "data: ",
// JSON-parse the rest) and the WHATWG EventSource algorithm (line by line; id-only messages
// dispatch nothing but set the last event ID).

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace river::test {

/// What `internalConsumeToAsyncIterable` of the TypeScript client yields for a whole body: every
/// message split on "\n\n" whose trimmed text begins with "data: ", with the first "data: "
/// removed, trimmed and JSON-parsed. A message that does not parse is kept as a string, as the
/// client does for chunks.
inline std::vector<nlohmann::json> parse_like_river_client(std::string_view body) {
  auto trim = [](std::string_view s) {
    const char* ws = " \t\r\n";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return std::string_view();
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
  };
  std::vector<nlohmann::json> out;
  std::string_view rest = body;
  for (;;) {
    const auto cut = rest.find("\n\n");
    if (cut == std::string_view::npos) break;  // the last piece stays in the client's buffer
    const auto message = rest.substr(0, cut);
    rest.remove_prefix(cut + 2);
    if (trim(message).substr(0, 6) != "data: ") continue;
    std::string raw(message);
    raw.erase(raw.find("data: "), 6);
    const auto data = trim(raw);
    auto j = nlohmann::json::parse(data, nullptr, false);
    out.push_back(j.is_discarded() ? nlohmann::json(std::string(data)) : std::move(j));
  }
  return out;
}

/// One event an EventSource dispatches.
struct event_source_event {
  std::string data;
  std::string last_event_id;  ///< the event's `lastEventId` property
};

/// An EventSource's view of a body: the events it dispatches and its last event ID at the end,
/// plus the last event ID it holds after each dispatched event's following id-only message.
struct event_source_result {
  std::vector<event_source_event> events;
  std::vector<std::string> ids_after_each;  ///< the last event ID when the next event (or the end) came
  std::string last_event_id;
  std::size_t comments = 0;
};

/// The WHATWG "interpret an event stream" algorithm (event types and retry ignored).
inline event_source_result parse_like_event_source(std::string_view body) {
  event_source_result r;
  std::string data, id_buffer;
  bool data_seen = false;
  auto dispatch = [&] {
    r.last_event_id = id_buffer;
    if (!data_seen) return;
    if (!data.empty() && data.back() == '\n') data.pop_back();
    if (!r.events.empty()) r.ids_after_each.push_back(r.last_event_id);
    r.events.push_back({data, r.last_event_id});
    data.clear();
    data_seen = false;
  };
  std::size_t i = 0;
  while (i < body.size()) {
    auto end = body.find_first_of("\r\n", i);
    if (end == std::string_view::npos) break;  // an incomplete line is not processed
    const auto line = body.substr(i, end - i);
    i = end + 1;
    if (body[end] == '\r' && i < body.size() && body[i] == '\n') ++i;
    if (line.empty()) {
      dispatch();
      continue;
    }
    if (line[0] == ':') {
      ++r.comments;
      continue;
    }
    const auto colon = line.find(':');
    std::string_view field = line.substr(0, colon), value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      data.append(value).push_back('\n');
      data_seen = true;
    } else if (field == "id" && value.find('\0') == std::string_view::npos) {
      id_buffer = std::string(value);
    }
  }
  if (!r.events.empty()) r.ids_after_each.push_back(r.last_event_id);
  return r;
}

}  // namespace river::test
