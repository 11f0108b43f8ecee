// RESP replies from any bytes, fed whole and in the pieces the input chooses: the same replies
// either way (up to a failure), and every reply goes through the stream-entry decoding the
// provider applies to XRANGE replies, and the cluster client's reading of layouts and redirects.

#include <river/redis/detail/cluster_topology.hpp>
#include <river/redis/detail/hash_slot.hpp>
#include <river/redis/detail/resp.hpp>
#include <river/redis/detail/stream_entry.hpp>
#include <river/redis/error.hpp>

#include "support/check.hpp"
#include "support/pieces.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace {

namespace redis = river::redis;
using redis::value;
using redis::detail::entry_id;
using redis::detail::reply_parser;

struct outcome {
  std::vector<value> replies;
  river::error_code failure;
};

outcome parse(const std::vector<std::string_view>& pieces, std::size_t max_buffer) {
  reply_parser p(max_buffer);
  outcome out;
  for (auto piece : pieces) {
    if (auto ec = p.feed(piece.data(), piece.size())) {
      RIVER_FUZZ_CHECK(ec == redis::error::read_buffer_exceeded || ec == redis::error::protocol_error);
      out.failure = ec;
      return out;
    }
    for (;;) {
      std::optional<value> v;
      if (auto ec = p.next(v)) {
        RIVER_FUZZ_CHECK(ec == redis::error::protocol_error && !v);
        out.failure = ec;
        return out;
      }
      if (!v) break;
      out.replies.push_back(std::move(*v));
    }
    RIVER_FUZZ_CHECK(p.buffered() <= max_buffer);
  }
  return out;
}

// Every text in a reply that reads as an entry id is one as Redis writes it: it prints back as it
// was.
void check_ids(const value& v) {
  if (v.is_text()) {
    if (auto id = entry_id::parse(v.text)) RIVER_FUZZ_CHECK(id->to_string() == v.text);
  }
  for (const auto& e : v.elements) check_ids(e);
}

// A layout or a redirect read from a reply names real slots and ports, and only error replies
// redirect.
void check_cluster_reading(const value& v) {
  if (auto ranges = redis::detail::parse_cluster_slots(v, "asked")) {
    RIVER_FUZZ_CHECK(v.is_array() && ranges->size() == v.elements.size());
    for (const auto& r : *ranges) {
      RIVER_FUZZ_CHECK(r.first <= r.last && r.last < redis::detail::cluster_slot_count);
      RIVER_FUZZ_CHECK(r.master.port > 0 && !r.master.host.empty());
    }
  }
  if (auto r = redis::detail::parse_redirect(v, "asked")) {
    RIVER_FUZZ_CHECK(v.is_error() && r->slot < redis::detail::cluster_slot_count && r->to.port > 0);
    RIVER_FUZZ_CHECK(!r->to.host.empty());
  }
  (void)redis::detail::is_transient_cluster_error(v);
}

void check_decoding(const value& v) {
  (void)redis::to_string(v);
  check_ids(v);
  check_cluster_reading(v);
  auto range = redis::detail::decode_range(v);
  if (!range) {
    RIVER_FUZZ_CHECK(range.error() == (v.is_error() ? redis::error::server_error : redis::error::unexpected_reply));
    return;
  }
  // What decodes is exactly what the reply holds.
  RIVER_FUZZ_CHECK(v.is_array() && range->size() == v.elements.size());
  for (std::size_t i = 0; i < range->size(); ++i) {
    const auto& entry = (*range)[i];
    const auto& raw = v.elements[i];
    RIVER_FUZZ_CHECK(entry.id == raw.elements[0].text);
    const auto& fields = raw.elements[1];
    RIVER_FUZZ_CHECK(entry.fields.size() * 2 == fields.elements.size());
    for (std::size_t f = 0; f < entry.fields.size(); ++f) {
      RIVER_FUZZ_CHECK(entry.fields[f].first == fields.elements[2 * f].text);
      RIVER_FUZZ_CHECK(entry.fields[f].second == fields.elements[2 * f + 1].text);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const auto in = river::fuzz::pieces::of(bytes, size);
  const auto whole = parse({in.data}, std::size_t{64} << 20);
  for (const auto& v : whole.replies) check_decoding(v);

  // Split, the parser finds the same replies. With a small buffer bound (options 1 to 15) it may
  // stop early, but only with what it found so far.
  const std::size_t bound = in.options == 0 ? std::size_t{64} << 20 : std::size_t{in.options} * 8;
  const auto split = parse(in.split(), bound);
  RIVER_FUZZ_CHECK(split.replies.size() <= whole.replies.size());
  for (std::size_t i = 0; i < split.replies.size(); ++i) RIVER_FUZZ_CHECK(split.replies[i] == whole.replies[i]);
  if (split.failure != redis::error::read_buffer_exceeded) {
    RIVER_FUZZ_CHECK(split.failure == whole.failure);
    RIVER_FUZZ_CHECK(split.replies.size() == whole.replies.size());
  }
  return 0;
}
