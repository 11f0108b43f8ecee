#pragma once

#include <river/http/client.hpp>

#include <vector>

namespace river::test {

/// Reads a client's event stream to its end, throwing on failure.
template <class Chunk>
asio::awaitable<std::vector<basic_event<Chunk>>> read_all(http::basic_event_stream<Chunk>& s) {
  std::vector<basic_event<Chunk>> out;
  for (;;) {
    auto ev = co_await s.next();
    if (!ev) break;
    out.push_back(std::move(*ev));
  }
  co_return out;
}

}  // namespace river::test
