#pragma once

// Forward declarations of River's public types.

#include <nlohmann/json_fwd.hpp>

namespace river {

enum class errc;
enum class error_type;
struct error;
struct resumption_token;
struct request_metadata;
template <class Chunk>
struct basic_event;
using event = basic_event<nlohmann::json>;
struct record_view;
class log_writer;
class log_reader;
class provider;
template <class Input, class Chunk>
class run_context;
template <class Input, class Chunk>
class stream;
class router;
template <class Chunk>
class basic_event_reader;
using event_reader = basic_event_reader<nlohmann::json>;
class caller;
struct caller_options;
struct runner_budget;
class json_text;
class read_from;
class invalid_field;

namespace memory {
struct config;
class provider;
}  // namespace memory

}  // namespace river
