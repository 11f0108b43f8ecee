// Decoding JSON into a described input type, from any bytes: a value that is not the type's is
// refused with `errc::invalid_input` and the offending field named, nothing is thrown out, and
// what decodes survives a round trip through the type's JSON.

#include <river/detail/input.hpp>
#include <river/detail/json_validator.hpp>
#include <river/error.hpp>
#include <river/invalid_field.hpp>

#include "support/check.hpp"

#include <boost/describe/class.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

// nlohmann_json 3.11 has no conversion of std::optional: null or absent is empty.
namespace nlohmann {
template <class T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& v) {
    if (v)
      j = *v;
    else
      j = nullptr;
  }
  static void from_json(const json& j, std::optional<T>& v) {
    if (j.is_null())
      v.reset();
    else
      v = j.get<T>();
  }
};
}  // namespace nlohmann

namespace fuzz_input {

// A type's own from_json reads its numbers itself, so it checks their range itself first, as
// River does for described members: nlohmann_json's conversion of a float too large for an
// integer is undefined behaviour.
template <class Int>
void get_checked(const nlohmann::json& j, const char* field, Int& out) {
  if (auto reason = river::detail::integer_range_error<Int>(j)) throw river::invalid_field(field, *reason);
  j.get_to(out);
}

// A check nlohmann_json cannot make: from_json throws `invalid_field` naming the member itself.
struct effort {
  int level = 0;
  friend bool operator==(const effort&, const effort&) = default;
};
inline void from_json(const nlohmann::json& j, effort& e) {
  get_checked(j, "", e.level);
  if (e.level < 0 || e.level > 10) throw river::invalid_field("", "must be between 0 and 10");
}
inline void to_json(nlohmann::json& j, const effort& e) { j = e.level; }

// And one naming a field inside the member.
struct window {
  unsigned from = 0, to = 0;
  friend bool operator==(const window&, const window&) = default;
};
inline void from_json(const nlohmann::json& j, window& w) {
  get_checked(j.at("from"), "from", w.from);
  get_checked(j.at("to"), "to", w.to);
  if (w.to < w.from) throw river::invalid_field("to", "must not be below 'from'");
}
inline void to_json(nlohmann::json& j, const window& w) { j = {{"from", w.from}, {"to", w.to}}; }

struct message {
  std::string role;
  std::string content;
  friend bool operator==(const message&, const message&) = default;
};
BOOST_DESCRIBE_STRUCT(message, (), (role, content))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(message, role, content)

struct sampling {
  double temperature = 1.0;
  std::optional<std::int64_t> seed;
  std::vector<std::string> stop;
  effort reasoning;
  std::optional<window> context;
  friend bool operator==(const sampling&, const sampling&) = default;
};
BOOST_DESCRIBE_STRUCT(sampling, (), (temperature, seed, stop, reasoning, context))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(sampling, temperature, seed, stop, reasoning, context)

struct chat_input {
  std::string model;
  std::vector<message> messages;
  sampling opts;
  message system;
  std::optional<std::string> user;
  bool stream = true;
  friend bool operator==(const chat_input&, const chat_input&) = default;
};
BOOST_DESCRIBE_STRUCT(chat_input, (), (model, messages, opts, system, user, stream))
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(chat_input, model, messages, opts, system, user, stream)

}  // namespace fuzz_input

namespace {

// Every field an error may name: the input itself, its members by path, and the keys nlohmann_json
// reports missing inside members it decodes alone (elements of `messages`, `opts.context`).
const std::set<std::string> fields = {
    "",          "model",          "messages",     "opts",              "opts.temperature", "opts.seed",
    "opts.stop", "opts.reasoning", "opts.context", "opts.context.from", "opts.context.to",  "system",
    "system.role", "system.content", "user", "stream", "role", "content", "from", "to"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;

  auto decoded = river::detail::decode_input<fuzz_input::chat_input>(j);
  if (!decoded) {
    const auto& e = decoded.error();
    RIVER_FUZZ_CHECK(e.code == river::errc::invalid_input);
    RIVER_FUZZ_CHECK(e.type == river::error_type::validation);
    RIVER_FUZZ_CHECK(e.context.is_object() && e.context.contains("field") && e.context["field"].is_string());
    RIVER_FUZZ_CHECK(e.context.contains("reason") && e.context["reason"].is_string());
    const auto& field = e.context["field"].get_ref<const std::string&>();
    if (!fields.contains(field)) std::fprintf(stderr, "unexpected field '%s' in: %s\n", field.c_str(), e.message.c_str());
    RIVER_FUZZ_CHECK(fields.contains(field));
    RIVER_FUZZ_CHECK(!e.message.empty());
    // The error goes to clients as JSON.
    RIVER_FUZZ_CHECK(river::detail::is_valid_json(river::to_json_text(e)));
    return 0;
  }
  const auto& in = *decoded;
  RIVER_FUZZ_CHECK(in.opts.reasoning.level >= 0 && in.opts.reasoning.level <= 10);
  RIVER_FUZZ_CHECK(!in.opts.context || in.opts.context->from <= in.opts.context->to);
  // What decoded is what its JSON decodes to.
  const nlohmann::json again = in;
  auto redecoded = river::detail::decode_input<fuzz_input::chat_input>(again);
  RIVER_FUZZ_CHECK(redecoded.has_value());
  RIVER_FUZZ_CHECK(*redecoded == in);
  return 0;
}
