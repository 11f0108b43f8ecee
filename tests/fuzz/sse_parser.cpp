// The event-stream parser on any bytes, fed whole, in the pieces the input chooses, and one byte
// at a time: every way must give the same items, and every item must be well formed.

#include <river/http/detail/sse_parser.hpp>

#include "support/check.hpp"
#include "support/pieces.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace {

using river::http::detail::sse_item;
using river::http::detail::sse_parser;

// What the parser reported, with everything the caller can see of each item.
struct item {
  sse_item kind;
  std::string text;  // data, comment or id
  std::string event_type;
  std::string last_event_id;
  bool had_id = false;
  friend bool operator==(const item&, const item&) = default;
};

struct outcome {
  std::vector<item> items;
  bool failed = false;
  friend bool operator==(const outcome&, const outcome&) = default;
};

bool has_line_end(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// Takes every item the bytes fed so far hold; false once the parser failed.
bool drain(sse_parser& p, outcome& out) {
  for (;;) {
    river::error_code ec;
    const auto kind = p.next(ec);
    if (ec) {
      RIVER_FUZZ_CHECK(ec == river::http::client_errc::event_too_large);
      out.failed = true;
      return false;
    }
    if (kind == sse_item::need_more) return true;
    item it{kind, {}, {}, p.last_event_id(), false};
    // Line ends only ever separate fields: no value keeps one, except data lines joined by LF.
    RIVER_FUZZ_CHECK(!has_line_end(p.last_event_id()));
    RIVER_FUZZ_CHECK(p.last_event_id().find('\0') == std::string::npos);
    switch (kind) {
      case sse_item::message:
        it.text = p.data();
        it.event_type = p.event_type();
        it.had_id = p.message_had_id();
        RIVER_FUZZ_CHECK(p.data().find('\r') == std::string::npos);
        RIVER_FUZZ_CHECK(!has_line_end(p.event_type()));
        break;
      case sse_item::id:
        break;
      case sse_item::comment:
        it.text = std::string(p.comment());
        RIVER_FUZZ_CHECK(!has_line_end(p.comment()));
        break;
      case sse_item::need_more:
        break;
    }
    out.items.push_back(std::move(it));
  }
}

outcome parse(const std::vector<std::string_view>& pieces, std::size_t limit) {
  sse_parser p(limit);
  outcome out;
  for (auto piece : pieces) {
    p.feed(piece);
    if (!drain(p, out)) return out;
    // Memory stays bounded: what waits is part of a message within the bound, or of a byte order
    // mark (at most two bytes of it).
    RIVER_FUZZ_CHECK(p.buffered() <= std::max<std::size_t>(limit, 2));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const auto in = river::fuzz::pieces::of(bytes, size);
  // Option 0: the default bound, which small inputs never reach; otherwise a bound so small that
  // messages reach it, and it must be reached at the same place whatever the split.
  const std::size_t limit = in.options == 0 ? sse_parser::default_max_message_size : in.options;

  const auto whole = parse({in.data}, limit);
  RIVER_FUZZ_CHECK(parse(in.split(), limit) == whole);
  // One byte at a time too, where that stays cheap: the fuzzer's own splits cover longer inputs.
  if (in.data.size() <= 1024) {
    std::vector<std::string_view> bytewise;
    for (std::size_t i = 0; i < in.data.size(); ++i) bytewise.push_back(in.data.substr(i, 1));
    RIVER_FUZZ_CHECK(parse(bytewise, limit) == whole);
  }
  return 0;
}
