#include <river/event.hpp>

#include <catch2/catch.hpp>

using river::event;
namespace events = river::events;

namespace event_test {

struct text_chunk {
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(text_chunk, text)

event make(event::payload_type p) {
  event ev;
  ev.payload = std::move(p);
  return ev;
}

}  // namespace event_test

using namespace event_test;

TEST_CASE("event JSON is the protocol's, byte for byte") {
  CHECK(river::to_json_text(make(events::start{"run-1", "dG9rZW4="})) ==
        R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_start","streamRunId":"run-1","encodedResumptionToken":"dG9rZW4="}})");
  CHECK(river::to_json_text(make(events::start{"run-1", ""})) ==
        R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_start","streamRunId":"run-1"}})");
  CHECK(river::to_json_text(make(events::chunk<nlohmann::json>{{{"text", "Hel"}}})) ==
        R"({"type":"chunk","chunk":{"text":"Hel"}})");
  CHECK(river::to_json_text(make(events::error{river::error("slow", river::error_type::custom)})) ==
        R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_error","error":{"__name__":"RiverError","message":"slow","type":"custom","cause":null,"context":{}}}})");
  CHECK(river::to_json_text(make(events::fatal_error{river::error("dead", river::error_type::stream)})) ==
        R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_fatal_error","error":{"__name__":"RiverError","message":"dead","type":"stream","cause":null,"context":{}}}})");
  CHECK(river::to_json_text(make(events::end{3, 1250})) ==
        R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_end","totalChunks":3,"totalTimeMs":1250}})");
  CHECK(river::to_json_text(make(events::aborted{})) == R"({"type":"aborted"})");
}

TEST_CASE("chunks of any JSON kind are written compactly") {
  CHECK(river::to_json_text(make(events::chunk<nlohmann::json>{"tok"})) == R"({"type":"chunk","chunk":"tok"})");
  CHECK(river::to_json_text(make(events::chunk<nlohmann::json>{42})) == R"({"type":"chunk","chunk":42})");
  CHECK(river::to_json_text(make(events::chunk<nlohmann::json>{nullptr})) == R"({"type":"chunk","chunk":null})");
  CHECK(river::to_json_text(make(events::chunk<nlohmann::json>{nlohmann::json::parse(R"([1,{"a":[true]}])")})) ==
        R"({"type":"chunk","chunk":[1,{"a":[true]}]})");
  river::basic_event<text_chunk> typed;
  typed.payload = events::chunk<text_chunk>{{"line\n"}};
  CHECK(river::to_json_text(typed) == R"({"type":"chunk","chunk":{"text":"line\n"}})");
  CHECK(river::chunk_event_json(R"({"text":"x"})") == R"({"type":"chunk","chunk":{"text":"x"}})");
}

TEST_CASE("every event reads back from its JSON") {
  const event all[] = {
      make(events::start{"r", "tok"}),
      make(events::start{"r", ""}),
      make(events::chunk<nlohmann::json>{{{"text", "Hel"}}}),
      make(events::error{river::error("e", river::error_type::network, {{"k", 1}})}),
      make(events::fatal_error{river::error("f", river::error_type::storage)}),
      make(events::end{7, 99}),
      make(events::aborted{}),
  };
  for (const auto& ev : all) {
    auto text = river::to_json_text(ev);
    auto parsed = river::parse_event(text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == ev);
    CHECK(river::to_json_text(*parsed) == text);
  }
}

TEST_CASE("terminal events are fatal_error, end and aborted") {
  CHECK_FALSE(make(events::start{}).is_terminal());
  CHECK_FALSE(make(events::chunk<nlohmann::json>{}).is_terminal());
  CHECK_FALSE(make(events::error{}).is_terminal());
  CHECK(make(events::fatal_error{}).is_terminal());
  CHECK(make(events::end{}).is_terminal());
  CHECK(make(events::aborted{}).is_terminal());
  CHECK(make(events::end{}).kind() == river::event_kind::end);
}

TEST_CASE("events written by the TypeScript library are read") {
  // totalTimeMs comes from performance.now(): fractional milliseconds.
  auto end = river::parse_event(
      R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_end","totalChunks":2,"totalTimeMs":1532.7249}})");
  REQUIRE(end.has_value());
  CHECK(*end->get_if<events::end>() == events::end{2, 1532});
  // Its error chunks may carry extra fields and an empty cause.
  auto err = river::parse_event(
      R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_error","streamRunId":"x","error":{"__name__":"RiverError","message":"m","type":"stream","cause":{}}}})");
  REQUIRE(err.has_value());
  CHECK(err->get_if<events::error>()->value.message == "m");
  CHECK(err->get_if<events::error>()->value.cause == nlohmann::json::object());
}

TEST_CASE("text that is not an event is a malformed_event error, never a crash") {
  const char* bad[] = {
      "",
      "not json",
      "[]",
      "42",
      R"({})",
      R"({"type":5})",
      R"({"type":"nope"})",
      R"({"type":"special"})",
      R"({"type":"special","special":[]})",
      R"({"type":"special","special":{}})",
      R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_middle"}})",
      R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_start"}})",
      R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_end","totalChunks":-1,"totalTimeMs":0}})",
      R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":"stream_end","totalChunks":"1","totalTimeMs":0}})",
      "{\"type\":\"chunk\",\"chunk\":\"\xff\"}",
  };
  for (auto text : bad) {
    INFO(text);
    auto parsed = river::parse_event(text);
    REQUIRE(parsed.has_error());
    CHECK(parsed.error().code == river::errc::malformed_event);
    CHECK(parsed.error().message.rfind("Malformed event: ", 0) == 0);
  }
}

TEST_CASE("typed events convert chunks and report those that do not fit") {
  auto ok = river::parse_event(R"({"type":"chunk","chunk":{"text":"hi"}})");
  auto typed = river::convert_event<text_chunk>(std::move(*ok));
  REQUIRE(typed.has_value());
  CHECK(typed->chunk()->text == "hi");
  auto bad = river::parse_event(R"({"type":"chunk","chunk":{"txt":"hi"}})");
  auto refused = river::convert_event<text_chunk>(std::move(*bad));
  REQUIRE(refused.has_error());
  CHECK(refused.error().code == river::errc::malformed_event);
  auto end = river::parse_event(R"({"type":"aborted"})");
  CHECK(river::convert_event<text_chunk>(std::move(*end))->kind() == river::event_kind::aborted);
}
