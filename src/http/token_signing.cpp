// Signed resumption tokens: HMAC-SHA256 over a token's canonical text (docs/protocol.md section 5).

#include <river/http/token_signing.hpp>

#include <river/detail/base64.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>

namespace river::http {

std::string token_signature(const resumption_token& token, std::string_view secret) {
  resumption_token canonical = token;
  canonical.signature.clear();
  const auto text = token_json(canonical);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), mac, &size);
  return river::detail::base64_encode(std::string_view(reinterpret_cast<const char*>(mac), size), true, false);
}

bool verify_token_signature(const resumption_token& token, std::string_view secret) {
  if (token.signature.empty()) return false;
  const auto expected = token_signature(token, secret);
  return expected.size() == token.signature.size() &&
         CRYPTO_memcmp(expected.data(), token.signature.data(), expected.size()) == 0;
}

caller_options signed_tokens(std::string secret) {
  caller_options o;
  if (secret.empty()) return o;
  auto key = std::make_shared<const std::string>(std::move(secret));
  o.sign_token = [key](resumption_token& t) { t.signature = token_signature(t, *key); };
  o.verify_token = [key](const resumption_token& t) { return verify_token_signature(t, *key); };
  return o;
}

}  // namespace river::http
