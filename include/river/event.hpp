#pragma once

#include <river/error.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace river {

/// The events of a run (PROTOCOL.md section 4). A run's log is one `start`, then chunks and
/// errors in the order the runner appended them, then exactly one terminal event (`fatal_error`,
/// `end` or `aborted`).
namespace events {

/// The run began. `resumption_token` is empty when the provider cannot resume.
struct start {
  std::string run_id;
  std::string resumption_token;
  friend bool operator==(const start&, const start&) = default;
};

/// One piece of the run's output.
template <class Chunk>
struct chunk {
  Chunk value;
  friend bool operator==(const chunk&, const chunk&) = default;
};

/// A failure the run survived.
struct error {
  river::error value;
  friend bool operator==(const error&, const error&) = default;
};

/// A failure that ended the run (terminal).
struct fatal_error {
  river::error value;
  friend bool operator==(const fatal_error&, const fatal_error&) = default;
};

/// The run finished (terminal).
struct end {
  std::uint64_t total_chunks = 0;
  std::uint64_t total_time_ms = 0;
  friend bool operator==(const end&, const end&) = default;
};

/// The run was cancelled (terminal).
struct aborted {
  friend bool operator==(const aborted&, const aborted&) = default;
};

}  // namespace events

/// Which event an event is.
enum class event_kind { start, chunk, error, fatal_error, end, aborted };

/// One event of a run, with its position in the run's log.
///
/// `Chunk` is the stream's chunk type; `nlohmann::json` is the untyped case.
template <class Chunk = nlohmann::json>
struct basic_event {
  using chunk_type = Chunk;
  using payload_type = std::variant<events::start, events::chunk<Chunk>, events::error,
                                    events::fatal_error, events::end, events::aborted>;

  payload_type payload;
  /// Where the event sits in the run's log; resuming after it yields the events that follow.
  /// Empty when the event did not come from a log (a server that sends no positions).
  std::string position;

  event_kind kind() const noexcept { return static_cast<event_kind>(payload.index()); }
  /// True for `fatal_error`, `end` and `aborted`: nothing follows them.
  bool is_terminal() const noexcept {
    auto k = kind();
    return k == event_kind::fatal_error || k == event_kind::end || k == event_kind::aborted;
  }
  template <class T>
  const T* get_if() const noexcept { return std::get_if<T>(&payload); }
  template <class T>
  T* get_if() noexcept { return std::get_if<T>(&payload); }
  /// The chunk of a chunk event; nullptr for the other kinds.
  const Chunk* chunk() const noexcept {
    auto c = get_if<events::chunk<Chunk>>();
    return c ? &c->value : nullptr;
  }

  friend bool operator==(const basic_event&, const basic_event&) = default;
};

/// An event whose chunk is any JSON value.
using event = basic_event<nlohmann::json>;

/// The JSON text of an event, exactly as PROTOCOL.md section 4 gives it.
template <class Chunk>
std::string to_json_text(const basic_event<Chunk>& ev);

/// The JSON text of a chunk event around an already encoded chunk (`chunk_json` must be JSON).
std::string chunk_event_json(std::string_view chunk_json);

/// Reads an event from its JSON text, as the TypeScript client understands it: every kind of
/// PROTOCOL.md section 4, unknown fields ignored, errors read leniently (`error_from_json`).
/// Text that is not JSON or not an event is an `errc::malformed_event` error.
result<event> parse_event(std::string_view json_text);

/// Converts an untyped event to a typed one; a chunk that does not convert to `Chunk` is an
/// `errc::malformed_event` error naming the reason.
template <class Chunk>
result<basic_event<Chunk>> convert_event(event&& ev);

}  // namespace river

#include <river/impl/event.hpp>
