#pragma once

// The JSON text of each event (docs/protocol.md section 4), appended to a buffer: the one encoder
// of events, used by the run context, `to_json_text`, and the providers' own closing events.

#include <river/detail/json_writer.hpp>
#include <river/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace river::detail {

inline void append_special_prefix(std::string& out, std::string_view key) {
  out.append(R"({"type":"special","special":{"RIVER_SPECIAL_TYPE_KEY":")");
  out.append(key);
  out.push_back('"');
}

/// `stream_start`; without a token when `token` is empty.
inline void append_start_event(std::string& out, std::string_view run_id, std::string_view token) {
  append_special_prefix(out, "stream_start");
  out.append(R"(,"streamRunId":)");
  append_json_string(out, run_id);
  if (!token.empty()) {
    out.append(R"(,"encodedResumptionToken":)");
    append_json_string(out, token);
  }
  out.append("}}");
}

/// A chunk event around `chunk`, written by `write_json`.
template <class Chunk>
void append_chunk_event(std::string& out, const Chunk& chunk) {
  out.append(R"({"type":"chunk","chunk":)");
  write_json(out, chunk);
  out.push_back('}');
}

/// `stream_error`, or `stream_fatal_error` when `fatal`.
inline void append_error_event(std::string& out, bool fatal, const river::error& e) {
  append_special_prefix(out, fatal ? "stream_fatal_error" : "stream_error");
  out.append(R"(,"error":)");
  append_error_json(out, e);
  out.append("}}");
}

/// `stream_end`.
inline void append_end_event(std::string& out, std::uint64_t total_chunks, std::uint64_t total_time_ms) {
  append_special_prefix(out, "stream_end");
  out.append(R"(,"totalChunks":)");
  write_json_number(out, total_chunks);
  out.append(R"(,"totalTimeMs":)");
  write_json_number(out, total_time_ms);
  out.append("}}");
}

/// `aborted`.
inline constexpr std::string_view aborted_json = R"({"type":"aborted"})";

/// A whole event of one of the kinds above, as a new string.
template <class F>
std::string event_text(F&& write) {
  std::string out;
  write(out);
  return out;
}

/// The fatal error that closes a log whose writer went away without a terminal event.
inline std::string abandoned_run_json() {
  return event_text([](std::string& out) {
    append_error_event(out, true, river::error("Run ended without a terminal event", error_type::stream));
  });
}

}  // namespace river::detail
