// The sans-I/O multiplexer of a Redis connection with a few requests in flight, fed any bytes in
// the pieces the input chooses: requests are done in order with all their replies, pushed
// messages are told apart on a subscriber, and the split never changes what comes out.

#include <river/redis/detail/multiplexer.hpp>
#include <river/redis/detail/stream_entry.hpp>
#include <river/redis/error.hpp>

#include "support/check.hpp"
#include "support/pieces.hpp"

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace redis = river::redis;
using redis::detail::multiplexer;
using redis::detail::mux_entry;
using event = multiplexer::event;

// What came out, as the connection would see it.
struct outcome {
  std::vector<std::string> events;
  river::error_code failure;
  std::size_t in_flight = 0;
  friend bool operator==(const outcome&, const outcome&) = default;
};

// The bytes of one write, its pieces joined.
std::string joined(std::span<const std::string_view> pieces) {
  std::string bytes;
  for (auto piece : pieces) bytes += piece;
  return bytes;
}

// Option bit 0: a subscriber connection (SSUBSCRIBE to two channels, then PING); otherwise a
// command connection (XADD, a pipeline of two, XRANGE). Bit 1: one more request added after the
// first write, written when the first reply is done, as the connection does.
outcome run(const std::vector<std::string_view>& pieces, unsigned options) {
  multiplexer m;
  const bool subscriber = (options & 1) != 0;
  m.detect_pushes(subscriber);
  std::array<mux_entry, 4> entries;
  std::vector<redis::request> requests(4);
  if (subscriber) {
    requests[0].push({"SSUBSCRIBE", "{run}:notices", "{run}:control"});
    requests[1].push({"PING"});
    requests[2].push({"SUNSUBSCRIBE", "{run}:notices"});
  } else {
    requests[0].push({"XADD", "stream-default-run", "*", "item", "{\"type\":\"chunk\"}"});
    requests[1].push({"PEXPIRE", "stream-default-run", "1000"});
    requests[1].push({"GET", "lease"});
    requests[2].push({"XRANGE", "stream-default-run", "-", "+", "COUNT", "256"});
  }
  requests[3].push({"PING"});
  std::size_t expected_next = 0;  // requests are done in the order they were written
  std::size_t added = 3;
  // The second request is written from its own bytes, the others copied: one write, in order.
  for (std::size_t i = 0; i < 3; ++i)
    RIVER_FUZZ_CHECK(m.add(requests[i], entries[i], multiplexer::clock::now(),
                           i == 1 ? multiplexer::bytes::referenced : multiplexer::bytes::copied));
  RIVER_FUZZ_CHECK(joined(m.prepare_write()) == requests[0].payload() + requests[1].payload() + requests[2].payload());
  RIVER_FUZZ_CHECK(!m.has_pending_write());
  RIVER_FUZZ_CHECK(m.in_flight() == 3 && m.waiting() == 0);

  outcome out;
  for (auto piece : pieces) {
    if (auto ec = m.feed(piece.data(), piece.size())) {
      out.failure = ec;
      break;
    }
    event ev;
    for (;;) {
      if (auto ec = m.next(ev)) {
        RIVER_FUZZ_CHECK(ec == redis::error::protocol_error);
        out.failure = ec;
        break;
      }
      if (ev.type == event::kind::none) break;
      if (ev.type == event::kind::push) {
        RIVER_FUZZ_CHECK(subscriber && ev.message.is_array() && !ev.message.elements.empty());
        out.events.push_back("push " + redis::to_string(ev.message));
        continue;
      }
      RIVER_FUZZ_CHECK(ev.entry == &entries[expected_next]);
      RIVER_FUZZ_CHECK(ev.entry->replies.size() == ev.entry->expected);
      std::string text = "done " + std::to_string(expected_next);
      for (const auto& reply : ev.entry->replies) {
        text += " " + redis::to_string(reply);
        // The provider decodes XRANGE replies; any reply must be safe to try.
        (void)redis::detail::decode_range(reply);
      }
      out.events.push_back(std::move(text));
      ++expected_next;
      if ((options & 2) != 0 && added == 3) {
        RIVER_FUZZ_CHECK(m.add(requests[3], entries[3]));
        ++added;
        RIVER_FUZZ_CHECK(m.has_pending_write() && joined(m.prepare_write()) == requests[3].payload());
      }
    }
    if (out.failure) break;
  }
  out.in_flight = m.in_flight();
  RIVER_FUZZ_CHECK(out.in_flight + expected_next == added);
  // A lost connection hands back what was in flight, and the multiplexer starts over.
  RIVER_FUZZ_CHECK(m.reset_in_flight().size() == out.in_flight);
  RIVER_FUZZ_CHECK(m.reset_waiting().empty());
  RIVER_FUZZ_CHECK(m.in_flight() == 0 && m.waiting() == 0);
  mux_entry again;
  RIVER_FUZZ_CHECK(m.add(requests[3], again));
  (void)m.prepare_write();
  RIVER_FUZZ_CHECK(!m.feed("+PONG\r\n", 7));
  event ev;
  RIVER_FUZZ_CHECK(!m.next(ev) && ev.type == event::kind::done && ev.entry == &again);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const auto in = river::fuzz::pieces::of(bytes, size);
  const auto whole = run({in.data}, in.options);
  RIVER_FUZZ_CHECK(run(in.split(), in.options) == whole);
  return 0;
}
