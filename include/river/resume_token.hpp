#pragma once

#include <river/error.hpp>

#include <string>
#include <string_view>

namespace river {

/// The resumption token of PROTOCOL.md section 5: which provider, stream, storage and run a client
/// resumes. On the wire it is standard base64 of compact JSON.
struct resumption_token {
  std::string provider_id;        ///< "providerId": the provider that stores the run
  std::string router_stream_key;  ///< "routerStreamKey": the stream's name in the router
  std::string stream_storage_id;  ///< "streamStorageId": the provider's storage namespace
  std::string stream_run_id;      ///< "streamRunId": the run
  std::string signature;          ///< "sig": base64url HMAC of the four fields; empty when unsigned

  friend bool operator==(const resumption_token&, const resumption_token&) = default;
};

/// The longest encoded token River decodes; longer input is refused before any work.
inline constexpr std::size_t max_encoded_token_size = 4096;

/// The JSON text that a token's base64 wraps, keys in protocol order, "sig" last when present.
std::string token_json(const resumption_token& token);

/// Encodes a token: standard base64, with padding, of `token_json(token)`.
std::string encode_token(const resumption_token& token);

/// Decodes a token in standard or URL-safe base64, padded or not. Unknown JSON fields are ignored.
/// Anything else (oversized, not base64, not a JSON object, a field missing, empty or not a
/// string) is an `errc::invalid_token` error whose message says what is wrong.
result<resumption_token> decode_token(std::string_view encoded);

}  // namespace river

#include <river/impl/resume_token.ipp>
