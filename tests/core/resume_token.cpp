#include <river/resume_token.hpp>

#include <river/detail/base64.hpp>

#include <catch2/catch.hpp>

using river::resumption_token;

namespace {

const resumption_token sample{"redis", "chat", "default", "9b2c4f3e-0000-4000-8000-000000000001", ""};

std::string b64(std::string_view s) { return river::detail::base64_encode(s); }

}  // namespace

TEST_CASE("a token is standard base64 of compact JSON in protocol order") {
  CHECK(river::token_json(sample) ==
        R"({"providerId":"redis","routerStreamKey":"chat","streamStorageId":"default","streamRunId":"9b2c4f3e-0000-4000-8000-000000000001"})");
  CHECK(river::encode_token(sample) == b64(river::token_json(sample)));
  // The TypeScript library's btoa(JSON.stringify({...})) for the same token.
  CHECK(river::encode_token({"redis", "chat", "default", "abc", ""}) ==
        "eyJwcm92aWRlcklkIjoicmVkaXMiLCJyb3V0ZXJTdHJlYW1LZXkiOiJjaGF0Iiwic3RyZWFtU3RvcmFnZUlkIjoiZGVmYXVsdCIsInN0cmVhbVJ1bklkIjoiYWJjIn0=");
}

TEST_CASE("base64 encoding matches RFC 4648, padded or not, in both alphabets") {
  using river::detail::base64_encode;
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [in, out] : vectors) {
    CHECK(base64_encode(in) == out);
    auto unpadded = std::string(out);
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    CHECK(base64_encode(in, false, false) == unpadded);
  }
  // Bytes 0xfb 0xff: the last two letters of each alphabet.
  CHECK(base64_encode("\xfb\xff") == "+/8=");
  CHECK(base64_encode("\xfb\xff", true) == "-_8=");
  CHECK(base64_encode("\xfb\xff", true, false) == "-_8");
}

TEST_CASE("a signed token carries its signature last") {
  auto signed_token = sample;
  signed_token.signature = "c2ln";
  CHECK(river::token_json(signed_token).ends_with(R"(,"sig":"c2ln"})"));
  auto back = river::decode_token(river::encode_token(signed_token));
  REQUIRE(back.has_value());
  CHECK(*back == signed_token);
}

TEST_CASE("tokens round-trip, whatever their characters") {
  const resumption_token tokens[] = {
      sample,
      {"memory", "a", "b", "c", ""},
      {"memory", "name with \"quotes\" and \\", "storage/é", "run\n1", ""},
      {"x", std::string(300, 'k'), "s", "r", ""},
  };
  for (const auto& t : tokens) {
    auto back = river::decode_token(river::encode_token(t));
    REQUIRE(back.has_value());
    CHECK(*back == t);
  }
}

TEST_CASE("decoding accepts URL-safe base64 and missing padding") {
  // JSON whose base64 holds '+' and '/' in the standard alphabet.
  const std::string json =
      R"({"providerId":"p","routerStreamKey":"k>>>???","streamStorageId":"s","streamRunId":"r~~~"})";
  const auto standard = b64(json);
  REQUIRE(standard.find_first_of("+/") != std::string::npos);
  const auto url = river::detail::base64_encode(json, true, true);
  const auto url_unpadded = river::detail::base64_encode(json, true, false);
  const auto std_unpadded = river::detail::base64_encode(json, false, false);
  for (const auto& text : {standard, url, url_unpadded, std_unpadded}) {
    INFO(text);
    auto t = river::decode_token(text);
    REQUIRE(t.has_value());
    CHECK(t->router_stream_key == "k>>>???");
    CHECK(t->stream_run_id == "r~~~");
  }
}

TEST_CASE("decoding ignores unknown fields") {
  auto t = river::decode_token(b64(
      R"({"providerId":"p","routerStreamKey":"k","streamStorageId":"s","streamRunId":"r","extra":{"deep":[1]},"v":2})"));
  REQUIRE(t.has_value());
  CHECK(*t == resumption_token{"p", "k", "s", "r", ""});
}

TEST_CASE("malformed tokens are clear errors, never crashes") {
  const std::string good = river::encode_token(sample);
  const std::pair<std::string, std::string> bad[] = {
      {"", "empty"},
      {"%%%%", "not base64"},
      {"eyJ0eXBlIjoi!", "not base64"},
      {"abc de", "not base64"},
      {good.substr(0, good.size() - 2) + "=" + "A", "not base64"},
      {"A", "not base64"},
      {"AAAAA", "not base64"},
      {"AA===", "not base64"},
      {"QQ=", "not base64"},
      {"ab+_", "not base64"},
      {"=AAA", "not base64"},
      {good + "\n", "not base64"},
      {b64("not json"), "not JSON"},
      {b64(R"({"providerId":"p")"), "not JSON"},
      {b64("[1,2,3]"), "not a JSON object"},
      {b64("\"str\""), "not a JSON object"},
      {b64("null"), "not a JSON object"},
      {b64(R"({"routerStreamKey":"k","streamStorageId":"s","streamRunId":"r"})"), "'providerId' is missing"},
      {b64(R"({"providerId":"p","streamStorageId":"s","streamRunId":"r"})"), "'routerStreamKey' is missing"},
      {b64(R"({"providerId":"p","routerStreamKey":"k","streamRunId":"r"})"), "'streamStorageId' is missing"},
      {b64(R"({"providerId":"p","routerStreamKey":"k","streamStorageId":"s"})"), "'streamRunId' is missing"},
      {b64(R"({"providerId":1,"routerStreamKey":"k","streamStorageId":"s","streamRunId":"r"})"), "'providerId' is not a string"},
      {b64(R"({"providerId":"p","routerStreamKey":null,"streamStorageId":"s","streamRunId":"r"})"), "'routerStreamKey' is not a string"},
      {b64(R"({"providerId":"p","routerStreamKey":"k","streamStorageId":["s"],"streamRunId":"r"})"), "'streamStorageId' is not a string"},
      {b64(R"({"providerId":"p","routerStreamKey":"k","streamStorageId":"s","streamRunId":{}})"), "'streamRunId' is not a string"},
      {b64(R"({"providerId":"p","routerStreamKey":"k","streamStorageId":"s","streamRunId":""})"), "'streamRunId' is empty"},
      {b64(R"({"providerId":"p","routerStreamKey":"k","streamStorageId":"s","streamRunId":"r","sig":7})"), "'sig' is not a string"},
      {b64("{\"providerId\":\"\xff\",\"routerStreamKey\":\"k\",\"streamStorageId\":\"s\",\"streamRunId\":\"r\"}"), "not JSON"},
      {std::string(5000, 'A'), "the limit is 4096"},
      {b64(std::string(1400, '[') + std::string(1400, ']')), "not a JSON object"},
      {b64(std::string(2000, '{')), "not JSON"},
  };
  for (const auto& [text, why] : bad) {
    INFO(text.substr(0, 80));
    auto t = river::decode_token(text);
    REQUIRE(t.has_error());
    CHECK(t.error().code == river::errc::invalid_token);
    CHECK(t.error().message.rfind("Invalid resumption token: ", 0) == 0);
    CHECK(t.error().message.find(why) != std::string::npos);
  }
}
