#pragma once

#include <river/event_reader.hpp>

#include <string>
#include <vector>

namespace river::test {

/// Reads every event of a reader, until after its terminal event.
template <class Chunk>
asio::awaitable<std::vector<basic_event<Chunk>>> collect(basic_event_reader<Chunk>& reader) {
  std::vector<basic_event<Chunk>> out;
  while (auto ev = co_await reader.next()) out.push_back(std::move(*ev));
  co_return out;
}

/// The JSON text of each event, for comparisons that show what differs.
template <class Chunk>
std::vector<std::string> texts(const std::vector<basic_event<Chunk>>& evs) {
  std::vector<std::string> out;
  for (const auto& e : evs) out.push_back(to_json_text(e));
  return out;
}

/// The kinds of events, in order.
template <class Chunk>
std::vector<event_kind> kinds(const std::vector<basic_event<Chunk>>& evs) {
  std::vector<event_kind> out;
  for (const auto& e : evs) out.push_back(e.kind());
  return out;
}

}  // namespace river::test
