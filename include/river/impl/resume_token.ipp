#pragma once

#include <river/detail/base64.hpp>
#include <river/detail/json_writer.hpp>

namespace river {

inline std::string token_json(const resumption_token& token) {
  std::string out;
  out.append(R"({"providerId":)");
  detail::append_json_string(out, token.provider_id);
  out.append(R"(,"routerStreamKey":)");
  detail::append_json_string(out, token.router_stream_key);
  out.append(R"(,"streamStorageId":)");
  detail::append_json_string(out, token.stream_storage_id);
  out.append(R"(,"streamRunId":)");
  detail::append_json_string(out, token.stream_run_id);
  if (!token.signature.empty()) {
    out.append(R"(,"sig":)");
    detail::append_json_string(out, token.signature);
  }
  out.push_back('}');
  return out;
}

inline std::string encode_token(const resumption_token& token) {
  return detail::base64_encode(token_json(token));
}

inline result<resumption_token> decode_token(std::string_view encoded) {
  auto fail = [](std::string why) {
    return error::from_code(errc::invalid_token, "Invalid resumption token: " + why);
  };
  if (encoded.empty()) return fail("it is empty");
  if (encoded.size() > max_encoded_token_size)
    return fail("it is " + std::to_string(encoded.size()) + " bytes long, the limit is " +
                std::to_string(max_encoded_token_size));
  std::string text;
  detail::base64_failure why;
  if (!detail::base64_decode(encoded, text, why)) return fail("not base64 (" + why.reason + ")");
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail("not JSON");
  if (!j.is_object()) return fail("not a JSON object");
  resumption_token token;
  struct field {
    const char* name;
    std::string resumption_token::*member;
    bool required;
  };
  static constexpr field fields[] = {
      {"providerId", &resumption_token::provider_id, true},
      {"routerStreamKey", &resumption_token::router_stream_key, true},
      {"streamStorageId", &resumption_token::stream_storage_id, true},
      {"streamRunId", &resumption_token::stream_run_id, true},
      {"sig", &resumption_token::signature, false},
  };
  for (const auto& f : fields) {
    auto it = j.find(f.name);
    if (it == j.end()) {
      if (!f.required) continue;
      return fail(std::string("field '") + f.name + "' is missing");
    }
    if (!it->is_string()) return fail(std::string("field '") + f.name + "' is not a string");
    auto& value = it->get_ref<std::string&>();
    if (value.empty()) return fail(std::string("field '") + f.name + "' is empty");
    token.*f.member = std::move(value);
  }
  return token;
}

}  // namespace river
