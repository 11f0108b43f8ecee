// Resumption tokens from any bytes: decoding never fails but with `invalid_token`, a token that
// decodes encodes back to itself, and its HMAC signature verifies exactly when it is the one the
// secret gives.

#include <river/detail/base64.hpp>
#include <river/detail/json_validator.hpp>
#include <river/http/token_signing.hpp>
#include <river/resume_token.hpp>

#include "support/check.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view secret = "fuzz secret";

void check_signature(const river::resumption_token& token) {
  using river::http::token_signature;
  using river::http::verify_token_signature;
  const auto expected = token_signature(token, secret);
  RIVER_FUZZ_CHECK(expected.size() == 43);  // 32 bytes of HMAC-SHA256, base64url without padding
  RIVER_FUZZ_CHECK(verify_token_signature(token, secret) == (token.signature == expected));

  auto signed_token = token;
  signed_token.signature = expected;
  RIVER_FUZZ_CHECK(verify_token_signature(signed_token, secret));
  RIVER_FUZZ_CHECK(!verify_token_signature(signed_token, "another secret"));
  // The signature covers the fields, not itself: signing again gives the same.
  RIVER_FUZZ_CHECK(token_signature(signed_token, secret) == expected);
  // A signed token survives its trip through the wire format, when the signature leaves it within
  // the size limit (which counts the signature; past it, decoding refuses it).
  const auto wire = river::encode_token(signed_token);
  auto decoded = river::decode_token(wire);
  if (wire.size() <= river::max_encoded_token_size)
    RIVER_FUZZ_CHECK(decoded.has_value() && verify_token_signature(*decoded, secret));
  else
    RIVER_FUZZ_CHECK(!decoded.has_value());

  auto tampered = signed_token;
  tampered.signature.back() = tampered.signature.back() == 'A' ? 'B' : 'A';
  RIVER_FUZZ_CHECK(!verify_token_signature(tampered, secret));
  tampered.signature.clear();
  RIVER_FUZZ_CHECK(!verify_token_signature(tampered, secret));
}

void check(std::string_view encoded) {
  auto decoded = river::decode_token(encoded);
  if (!decoded) {
    RIVER_FUZZ_CHECK(decoded.error().code == river::errc::invalid_token);
    RIVER_FUZZ_CHECK(decoded.error().message.starts_with("Invalid resumption token: "));
    return;
  }
  const auto& token = *decoded;
  RIVER_FUZZ_CHECK(!token.provider_id.empty() && !token.router_stream_key.empty() &&
                   !token.stream_storage_id.empty() && !token.stream_run_id.empty());

  const auto text = river::token_json(token);
  RIVER_FUZZ_CHECK(river::detail::is_valid_json(text));
  RIVER_FUZZ_CHECK(nlohmann::json::accept(text));

  // Encoding is canonical: what decodes encodes to a token that decodes to the same fields, and
  // encodes to itself again.
  const auto encoded_again = river::encode_token(token);
  auto again = river::decode_token(encoded_again);
  RIVER_FUZZ_CHECK(again.has_value());
  RIVER_FUZZ_CHECK(*again == token);
  RIVER_FUZZ_CHECK(river::encode_token(*again) == encoded_again);

  check_signature(token);
}

}  // namespace

// The first byte chooses what the rest is: the token itself (bit 0 clear), or the JSON inside a
// token (bit 0 set), then encoded here in URL-safe base64 (bit 1) and without padding (bit 2), so
// that mutations reach the JSON instead of breaking the base64.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return 0;
  const auto mode = bytes[0];
  const std::string_view rest(reinterpret_cast<const char*>(bytes + 1), size - 1);
  if ((mode & 1) == 0) {
    check(rest);
  } else {
    check(river::detail::base64_encode(rest, (mode & 2) != 0, (mode & 4) == 0));
  }
  return 0;
}
