#pragma once

#include <river/detail/event_writer.hpp>

namespace river {

inline std::string chunk_event_json(std::string_view chunk_json) {
  std::string out;
  out.reserve(chunk_json.size() + 25);
  detail::append_chunk_event(out, json_text(chunk_json));
  return out;
}

template <class Chunk>
std::string to_json_text(const basic_event<Chunk>& ev) {
  std::string out;
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, events::start>)
          detail::append_start_event(out, p.run_id, p.resumption_token);
        else if constexpr (std::is_same_v<T, events::chunk<Chunk>>)
          detail::append_chunk_event(out, p.value);
        else if constexpr (std::is_same_v<T, events::error>)
          detail::append_error_event(out, false, p.value);
        else if constexpr (std::is_same_v<T, events::fatal_error>)
          detail::append_error_event(out, true, p.value);
        else if constexpr (std::is_same_v<T, events::end>)
          detail::append_end_event(out, p.total_chunks, p.total_time_ms);
        else
          out.append(detail::aborted_json);
      },
      ev.payload);
  return out;
}

namespace detail {

inline error malformed(std::string why) {
  return error::from_code(errc::malformed_event, "Malformed event: " + std::move(why));
}

// A JSON number as a count: non-negative and finite, fractions truncated (the TypeScript
// library reports milliseconds as fractional numbers).
inline bool read_count(const nlohmann::json& j, std::uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<std::uint64_t>();
    return true;
  }
  if (j.is_number_integer()) {
    auto v = j.get<std::int64_t>();
    if (v < 0) return false;
    out = static_cast<std::uint64_t>(v);
    return true;
  }
  if (j.is_number_float()) {
    auto v = j.get<double>();
    if (!(v >= 0 && v < 1.8e19)) return false;
    out = static_cast<std::uint64_t>(v);
    return true;
  }
  return false;
}

inline result<event> parse_special(nlohmann::json& special) {
  if (!special.is_object()) return malformed("'special' is not an object");
  auto key = special.find("RIVER_SPECIAL_TYPE_KEY");
  if (key == special.end() || !key->is_string()) return malformed("'RIVER_SPECIAL_TYPE_KEY' is missing");
  const auto& k = key->get_ref<const std::string&>();
  event ev;
  if (k == "stream_start") {
    auto id = special.find("streamRunId");
    if (id == special.end() || !id->is_string()) return malformed("'streamRunId' is missing");
    events::start s;
    s.run_id = std::move(id->get_ref<std::string&>());
    auto token = special.find("encodedResumptionToken");
    if (token != special.end() && token->is_string()) s.resumption_token = std::move(token->get_ref<std::string&>());
    ev.payload = std::move(s);
  } else if (k == "stream_error" || k == "stream_fatal_error") {
    auto e = special.find("error");
    river::error err = e == special.end() ? error_from_json(nullptr) : error_from_json(*e);
    if (k == "stream_error")
      ev.payload = events::error{std::move(err)};
    else
      ev.payload = events::fatal_error{std::move(err)};
  } else if (k == "stream_end") {
    events::end end;
    auto n = special.find("totalChunks");
    auto t = special.find("totalTimeMs");
    if (n == special.end() || !read_count(*n, end.total_chunks)) return malformed("'totalChunks' is not a count");
    if (t == special.end() || !read_count(*t, end.total_time_ms)) return malformed("'totalTimeMs' is not a count");
    ev.payload = end;
  } else {
    return malformed("unknown special type '" + k + "'");
  }
  return ev;
}

}  // namespace detail

inline result<event> parse_event(std::string_view json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded()) return detail::malformed("not JSON");
  if (!j.is_object()) return detail::malformed("not a JSON object");
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return detail::malformed("'type' is missing");
  const auto& t = type->get_ref<const std::string&>();
  if (t == "chunk") {
    auto c = j.find("chunk");
    event ev;
    ev.payload = events::chunk<nlohmann::json>{c == j.end() ? nlohmann::json() : std::move(*c)};
    return ev;
  }
  if (t == "special") {
    auto s = j.find("special");
    if (s == j.end()) return detail::malformed("'special' is missing");
    return detail::parse_special(*s);
  }
  if (t == "aborted") {
    event ev;
    ev.payload = events::aborted{};
    return ev;
  }
  return detail::malformed("unknown type '" + t + "'");
}

template <class Chunk>
result<basic_event<Chunk>> convert_event(event&& ev) {
  if constexpr (std::is_same_v<Chunk, nlohmann::json>) {
    return std::move(ev);
  } else {
    basic_event<Chunk> out;
    out.position = std::move(ev.position);
    try {
      std::visit(
          [&](auto&& p) {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, events::chunk<nlohmann::json>>)
              out.payload = events::chunk<Chunk>{p.value.template get<Chunk>()};
            else
              out.payload = std::move(p);
          },
          std::move(ev.payload));
    } catch (const nlohmann::json::exception& e) {
      return detail::malformed(std::string("chunk does not match the chunk type: ") + e.what());
    }
    return out;
  }
}

}  // namespace river
