#pragma once

#include <river/detail/json_writer.hpp>

namespace river {

inline std::string to_json_text(const error& e) {
  std::string out;
  out.reserve(64 + e.message.size());
  detail::append_error_json(out, e);
  return out;
}

inline error error_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return error("Unknown error", error_type::unknown);
  auto name = j.find("__name__");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>() != "RiverError")
    return error("Unknown error", error_type::unknown);
  error e;
  auto msg = j.find("message");
  e.message = (msg != j.end() && msg->is_string() && !msg->get_ref<const std::string&>().empty())
                  ? msg->get<std::string>()
                  : std::string("Unknown error");
  auto type = j.find("type");
  e.type = error_type::unknown;
  if (type != j.end() && type->is_string()) {
    if (auto t = parse_error_type(type->get_ref<const std::string&>())) e.type = *t;
  }
  if (auto cause = j.find("cause"); cause != j.end()) e.cause = *cause;
  if (auto ctx = j.find("context"); ctx != j.end() && !ctx->is_null()) e.context = *ctx;
  return e;
}

}  // namespace river

namespace river::detail {

inline void append_error_json(std::string& out, const river::error& e) {
  out.append(R"({"__name__":"RiverError","message":)");
  append_json_string(out, e.message);
  out.append(R"(,"type":")");
  out.append(to_string(e.type));
  out.append(R"(","cause":)");
  append_json_value(out, e.cause);
  out.append(R"(,"context":)");
  append_json_value(out, e.context);
  out.push_back('}');
}

}  // namespace river::detail
