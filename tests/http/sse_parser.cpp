#include <river/http/detail/sse_parser.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using river::http::detail::sse_item;
using river::http::detail::sse_parser;

namespace {

// Each item the parser reports, as text, so a failed comparison shows what differs.
void drain(sse_parser& p, std::vector<std::string>& out) {
  for (;;) {
    river::error_code ec;
    auto item = p.next(ec);
    if (ec) {
      out.push_back("error:" + ec.message());
      return;
    }
    switch (item) {
      case sse_item::need_more:
        return;
      case sse_item::message:
        out.push_back("message:" + p.event_type() + "|" + p.data() + "|" + p.last_event_id() +
                      (p.message_had_id() ? "|own-id" : ""));
        break;
      case sse_item::id:
        out.push_back("id:" + p.last_event_id());
        break;
      case sse_item::comment:
        out.push_back("comment:" + std::string(p.comment()));
        break;
    }
  }
}

std::vector<std::string> parse_whole(std::string_view input, std::size_t limit = sse_parser::default_max_message_size) {
  sse_parser p(limit);
  std::vector<std::string> out;
  p.feed(input);
  drain(p, out);
  return out;
}

std::vector<std::string> parse_pieces(std::string_view input, const std::vector<std::size_t>& cuts,
                                      std::size_t limit = sse_parser::default_max_message_size) {
  sse_parser p(limit);
  std::vector<std::string> out;
  std::size_t from = 0;
  auto failed = [&] { return !out.empty() && out.back().rfind("error:", 0) == 0; };
  for (auto cut : cuts) {
    p.feed(input.substr(from, cut - from));
    drain(p, out);
    if (failed()) return out;  // a failed parser reports nothing else
    from = cut;
  }
  p.feed(input.substr(from));
  drain(p, out);
  return out;
}

// Parses `input` whole, then split in two at every byte, then in three at every pair of bytes,
// then one byte at a time: every way must give the same items (Beast's "parsegrind").
std::vector<std::string> grind(std::string_view input, std::size_t limit = sse_parser::default_max_message_size) {
  auto whole = parse_whole(input, limit);
  for (std::size_t i = 0; i <= input.size(); ++i) {
    INFO("split at " << i);
    REQUIRE(parse_pieces(input, {i}, limit) == whole);
  }
  if (input.size() <= 120) {
    for (std::size_t i = 0; i <= input.size(); ++i)
      for (std::size_t j = i; j <= input.size(); ++j) {
        INFO("split at " << i << " and " << j);
        REQUIRE(parse_pieces(input, {i, j}, limit) == whole);
      }
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < input.size(); ++i) every.push_back(i);
  REQUIRE(parse_pieces(input, every, limit) == whole);
  return whole;
}

using items = std::vector<std::string>;

}  // namespace

TEST_CASE("sse_parser reads River's events, positions and heartbeats as a River server sends them") {
  std::string_view input =
      "data: {\"type\":\"chunk\",\"chunk\":{\"text\":\"Hel\"}}\n\n"
      "id: 1732450000000-3\n\n"
      ": keep-alive\n\n"
      "data: {\"type\":\"aborted\"}\n\n"
      "id: 1732450000000-4\n\n";
  CHECK(grind(input) == items{
                            "message:|{\"type\":\"chunk\",\"chunk\":{\"text\":\"Hel\"}}|",
                            "id:1732450000000-3",
                            "comment: keep-alive",
                            "message:|{\"type\":\"aborted\"}|1732450000000-3",
                            "id:1732450000000-4",
                        });
}

TEST_CASE("sse_parser accepts LF, CRLF and CR line ends, mixed") {
  CHECK(grind("data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\ndata: e\n\r") ==
        items{"message:|a|", "message:|b|", "message:|c|", "message:|d|", "message:|e|"});
}

TEST_CASE("sse_parser treats CR then LF split across pieces as one line end") {
  sse_parser p;
  std::vector<std::string> out;
  p.feed("data: x\r");
  drain(p, out);
  CHECK(out.empty());
  p.feed("\n");
  drain(p, out);
  CHECK(out.empty());  // the LF completed "data: x", it is not the blank line
  p.feed("\r");
  drain(p, out);
  CHECK(out == items{"message:|x|"});
}

TEST_CASE("sse_parser reads data with and without the space after the colon") {
  CHECK(grind("data:a\n\ndata: b\n\ndata:  c\n\ndata\n\ndata:\n\n") ==
        items{"message:|a|", "message:|b|", "message:| c|", "message:||", "message:||"});
}

TEST_CASE("sse_parser joins the data lines of one message with LF") {
  CHECK(grind("data: one\ndata:two\ndata\ndata: four\n\n") == items{"message:|one\ntwo\n\nfour|"});
}

TEST_CASE("sse_parser reads event types and ids, and ids persist until changed") {
  CHECK(grind("event: update\ndata: 1\nid: 7\n\ndata: 2\n\nid\n\ndata: 3\n\n") ==
        items{"message:update|1|7|own-id", "message:|2|7", "id:", "message:|3|"});
}

TEST_CASE("sse_parser ignores an id that contains NUL") {
  std::string input = "id: 1\n\nid: a";
  input.push_back('\0');
  input += "b\n\ndata: x\n\n";
  CHECK(grind(input) == items{"id:1", "message:|x|1"});
}

TEST_CASE("sse_parser dispatches nothing for a message without data or id") {
  CHECK(grind("event: lonely\n\nretry: 10\n\nunknown: field\n\ndata: x\n\n") == items{"message:|x|"});
}

TEST_CASE("sse_parser takes a field name without a colon as a field with an empty value") {
  CHECK(grind("data\nevent\n\n") == items{"message:||"});
}

TEST_CASE("sse_parser reads retry fields made only of digits") {
  sse_parser p;
  std::vector<std::string> out;
  p.feed("retry: 1500\n\n");
  drain(p, out);
  CHECK(p.retry() == 1500u);
  p.feed("retry: 15x\n\nretry: -1\n\nretry:\n\n");
  drain(p, out);
  CHECK(p.retry() == 1500u);
  p.feed("retry: 99999999999999999999999\n\n");
  drain(p, out);
  CHECK(p.retry() == std::numeric_limits<std::uint64_t>::max());
  CHECK(out.empty());
}

TEST_CASE("sse_parser reports comments, with everything after the colon") {
  CHECK(grind(":\n: hi\n:x: y\n\n") == items{"comment:", "comment: hi", "comment:x: y"});
}

TEST_CASE("sse_parser skips one byte order mark at the start of the stream only") {
  CHECK(grind("\xEF\xBB\xBF"
              "data: a\n\n\xEF\xBB\xBF"
              "data: b\n\n") == items{"message:|a|"});
  CHECK(grind("\xEF\xBB"
              "data: a\n\n") == items{});  // not a whole mark: the field name is garbage
  CHECK(grind("\xEF\xBB\xBF\xEF\xBB\xBF"
              "data: a\n\n") == items{});
}

TEST_CASE("sse_parser never dispatches a message left unfinished at the end of the input") {
  CHECK(grind("data: a\n\ndata: b\n") == items{"message:|a|"});
  CHECK(grind("data: a\n\ndata: b") == items{"message:|a|"});
  CHECK(grind("id: 5\n") == items{});
}

TEST_CASE("sse_parser reset drops the partial message but keeps the last event id") {
  sse_parser p;
  std::vector<std::string> out;
  p.feed("id: 4\n\ndata: half");
  drain(p, out);
  CHECK(out == items{"id:4"});
  p.reset();
  p.feed(
      "\xEF\xBB\xBF"
      "data: whole\n\n");
  drain(p, out);
  CHECK(out == items{"id:4", "message:|whole|4"});
}

TEST_CASE("sse_parser refuses a message larger than its bound, whatever the split") {
  const std::size_t limit = 16;
  SECTION("many data lines") {
    CHECK(grind("data: 0123456789\n\ndata: 01234567\ndata: 89abcdef\n\n", limit) ==
          items{"message:|0123456789|",
                "error:" + river::error_code(river::http::client_errc::event_too_large).message()});
  }
  SECTION("one long line, complete or not") {
    CHECK(grind("data: 0123456789abcdefgh\n\n", limit).back() ==
          "error:" + river::error_code(river::http::client_errc::event_too_large).message());
    CHECK(grind("data: 0123456789abcdefgh", limit) ==
          items{"error:" + river::error_code(river::http::client_errc::event_too_large).message()});
  }
  SECTION("a long comment or id") {
    CHECK(grind(": 0123456789abcdefgh\n\n", limit).back() ==
          "error:" + river::error_code(river::http::client_errc::event_too_large).message());
    CHECK(grind("id: 0123456789abcdefgh\n\n", limit).back() ==
          "error:" + river::error_code(river::http::client_errc::event_too_large).message());
  }
  SECTION("the parser stays failed") {
    sse_parser p(limit);
    p.feed("data: 0123456789abcdefgh\n\n");
    river::error_code ec;
    p.next(ec);
    CHECK(ec == river::http::client_errc::event_too_large);
    p.feed("data: x\n\n");
    p.next(ec);
    CHECK(ec == river::http::client_errc::event_too_large);
  }
}

TEST_CASE("sse_parser reaches its bound at the same line whether that line arrived whole or in pieces") {
  // The message so far (8 bytes of data) plus the comment line (9 bytes) is over the bound of 16:
  // counted while the line arrives, and so when it arrives whole.
  const auto too_large = "error:" + river::error_code(river::http::client_errc::event_too_large).message();
  CHECK(grind("data: a\n\ndata: 0123456\n: comment\n\n", 16) == items{"message:|a|", too_large});
  CHECK(grind("data: 0123456\nid: 123456789\n\n", 16) == items{too_large});
  CHECK(grind("data: 0123456\nid: 1\n\n", 16) == items{"message:|0123456|1|own-id"});
}

TEST_CASE("sse_parser does not count a byte order mark still arriving against its bound") {
  CHECK(grind("\xEF\xBB\xBF:\n", 1) == items{"comment:"});
}

TEST_CASE("sse_parser keeps only unparsed bytes while a long stream goes through it") {
  sse_parser p(64);
  std::vector<std::string> out;
  for (int i = 0; i < 10000; ++i) {
    p.feed("data: {\"n\":" + std::to_string(i) + "}\n\nid: " + std::to_string(i) + "\n\n: keep-alive\n\n");
    drain(p, out);
    REQUIRE(p.buffered() == 0);
  }
  CHECK(out.size() == 30000u);
  CHECK(out[29997] == "message:|{\"n\":9999}|9998");
}

TEST_CASE("sse_parser reads a long line fed in small pieces in linear time") {
  // Rescanning the whole partial line on every piece would take about 10^10 steps here.
  sse_parser p(std::size_t{2} << 20);
  std::vector<std::string> out;
  p.feed("data: ");
  std::string piece(10, 'x');
  for (int i = 0; i < 100000; ++i) {
    p.feed(piece);
    drain(p, out);
  }
  p.feed("\n\n");
  drain(p, out);
  REQUIRE(out.size() == 1u);
  CHECK(out[0].size() == std::string("message:||").size() + 1000000);
}
