#pragma once

#include <river/caller.hpp>
#include <river/resume_token.hpp>

#include <string>
#include <string_view>

namespace river::http {

/// The signature of a resumption token (its "sig" field): base64url, without padding, of the
/// HMAC-SHA256, keyed with `secret`, of the token's canonical text: `token_json` of the token
/// without its signature, i.e.
/// `{"providerId":…,"routerStreamKey":…,"streamStorageId":…,"streamRunId":…}` in that order,
/// strings escaped as JSON.stringify does (docs/protocol.md section 5).
std::string token_signature(const resumption_token& token, std::string_view secret);

/// True when `token` carries the signature `secret` gives it (compared in constant time).
/// An unsigned token does not verify.
bool verify_token_signature(const resumption_token& token, std::string_view secret);

/// Caller options that sign every token handed out and refuse tokens whose signature does not
/// verify (`errc::token_signature_mismatch`, answered with 403). An empty secret returns options
/// that neither sign nor verify.
caller_options signed_tokens(std::string secret);

}  // namespace river::http
