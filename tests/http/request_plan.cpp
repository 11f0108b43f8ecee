#include <river/http/detail/request_plan.hpp>

#include <catch2/catch.hpp>

namespace beast_http = boost::beast::http;
using river::http::detail::answer;
using river::http::detail::cancel_run;
using river::http::detail::plan_request;
using river::http::detail::resume_run;
using river::http::detail::start_run;
using json = nlohmann::json;

namespace {

river::http::request make(beast_http::verb method, std::string target, std::string body = {},
                          std::vector<std::pair<std::string, std::string>> fields = {}) {
  river::http::request req{method, target, 11};
  for (auto& [name, value] : fields) req.set(name, value);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// The answer a request gets, checked to be one.
answer answer_of(const river::http::request& req, const river::http::handler_options& opts = {}) {
  auto plan = plan_request(req, opts);
  REQUIRE(std::holds_alternative<answer>(plan));
  return std::get<answer>(plan);
}

}  // namespace

TEST_CASE("request plan: a POST with a stream name and input starts a run", "[http]") {
  auto plan = plan_request(make(beast_http::verb::post, "/api/river",
                                R"({"routerStreamKey":"chat","input":{"message":"hi"}})",
                                {{"Content-Type", "text/plain;charset=UTF-8"}}),
                           {});
  REQUIRE(std::holds_alternative<start_run>(plan));
  CHECK(std::get<start_run>(plan).stream == "chat");
  CHECK(std::get<start_run>(plan).input == json{{"message", "hi"}});
  auto no_input = plan_request(make(beast_http::verb::post, "/api/river?x=1", R"({"routerStreamKey":"s"})"), {});
  REQUIRE(std::holds_alternative<start_run>(no_input));
  CHECK(std::get<start_run>(no_input).input.is_null());
}

TEST_CASE("request plan: bad start requests are answered with the protocol's errors", "[http]") {
  river::http::handler_options opts;
  opts.max_body_bytes = 64;
  struct bad {
    std::string body;
    std::vector<std::pair<std::string, std::string>> fields;
    unsigned status;
    std::string message;
  };
  const std::vector<bad> cases = {
      {R"({"routerStreamKey":"s"})", {{"Content-Type", "image/png"}}, 415, "Unsupported content type: send JSON"},
      {std::string(65, ' '), {}, 413, "Request body too large"},
      {"{not json", {}, 400, "Failed to parse request body: not JSON"},
      {"[1]", {}, 400, "Invalid request body: not a JSON object"},
      {R"({"routerStreamKey":5})", {}, 400, "Invalid request body: 'routerStreamKey' must be a string"},
  };
  for (const auto& c : cases) {
    INFO(c.message);
    auto a = answer_of(make(beast_http::verb::post, "/api/river", c.body, c.fields), opts);
    CHECK(a.status == c.status);
    REQUIRE(a.error);
    CHECK(a.error->message == c.message);
  }
}

TEST_CASE("request plan: a GET resumes, from the header's position before the query's, now and -N join at the tail",
          "[http]") {
  auto plain = plan_request(make(beast_http::verb::get, "/api/river?resumeKey=a+b%2Fc"), {});
  REQUIRE(std::holds_alternative<resume_run>(plain));
  CHECK(std::get<resume_run>(plain).token == "a+b/c");
  CHECK(std::get<resume_run>(plain).from.type() == river::read_from::kind::start);
  auto both = plan_request(make(beast_http::verb::get, "/api/river?resumeKey=t&lastEventId=3", {}, {{"Last-Event-ID", "7"}}), {});
  CHECK(std::get<resume_run>(both).from.position() == "7");
  auto query = plan_request(make(beast_http::verb::get, "/api/river?resumeKey=t&lastEventId=3"), {});
  CHECK(std::get<resume_run>(query).from.position() == "3");
  auto now = plan_request(make(beast_http::verb::get, "/api/river?resumeKey=t&lastEventId=now"), {});
  CHECK(std::get<resume_run>(now).from.type() == river::read_from::kind::last);
  CHECK(std::get<resume_run>(now).from.count() == 0);
  auto tail = plan_request(make(beast_http::verb::get, "/api/river?resumeKey=t", {}, {{"Last-Event-ID", "-25"}}), {});
  CHECK(std::get<resume_run>(tail).from.type() == river::read_from::kind::last);
  CHECK(std::get<resume_run>(tail).from.count() == 25);
  auto missing = answer_of(make(beast_http::verb::get, "/api/river"));
  CHECK(missing.status == 400);
  CHECK(missing.error->context["field"] == "resumeKey");
}

TEST_CASE("request plan: DELETE cancels, other paths, methods and targets are answered", "[http]") {
  auto cancel = plan_request(make(beast_http::verb::delete_, "/api/river?resumeKey=tok"), {});
  REQUIRE(std::holds_alternative<cancel_run>(cancel));
  CHECK(std::get<cancel_run>(cancel).token == "tok");
  auto elsewhere = answer_of(make(beast_http::verb::get, "/other"));
  CHECK(elsewhere.status == 404);
  auto put = answer_of(make(beast_http::verb::put, "/api/river"));
  CHECK(put.status == 405);
  CHECK(put.fields == "Allow: GET, POST, DELETE, OPTIONS\r\n");
  auto bad_target = answer_of(make(beast_http::verb::get, "not a path"));
  CHECK(bad_target.status == 400);
}

TEST_CASE("request plan: a CORS preflight from an allowed origin gets the CORS fields, others only Allow", "[http]") {
  river::http::handler_options opts;
  opts.cors_origins = {"https://app.example"};
  auto allowed = answer_of(make(beast_http::verb::options, "/api/river", {},
                                {{"Origin", "https://app.example"}, {"Access-Control-Request-Headers", "content-type"}}),
                           opts);
  CHECK(allowed.status == 204);
  CHECK_FALSE(allowed.error);
  CHECK(allowed.fields ==
        "Allow: GET, POST, DELETE, OPTIONS\r\nAccess-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n"
        "Access-Control-Allow-Headers: content-type\r\nAccess-Control-Max-Age: 600\r\n");
  auto other = answer_of(make(beast_http::verb::options, "/api/river", {}, {{"Origin", "https://evil.example"}}), opts);
  CHECK(other.fields == "Allow: GET, POST, DELETE, OPTIONS\r\n");
  CHECK(river::http::detail::cors_fields(make(beast_http::verb::get, "/", {}, {{"Origin", "https://app.example"}}), opts) ==
        "Access-Control-Allow-Origin: https://app.example\r\nVary: Origin\r\n");
  // "*" echoes what a browser sends as an origin, nothing else (found by fuzzing: an Origin of
  // kilobytes made a response head longer than clients read).
  opts.cors_origins = {"*"};
  const auto cors_of = [&](std::string origin) {
    return river::http::detail::cors_fields(make(beast_http::verb::get, "/", {}, {{"Origin", origin}}), opts);
  };
  CHECK(cors_of("http://[::1]:8080") == "Access-Control-Allow-Origin: http://[::1]:8080\r\nVary: Origin\r\n");
  CHECK(cors_of("null") == "Access-Control-Allow-Origin: null\r\nVary: Origin\r\n");
  CHECK(cors_of("https://" + std::string(9000, 'a')).empty());
  CHECK(cors_of("https://caf\xc3\xa9.example").empty());
  CHECK(cors_of("not an origin").empty());
}

TEST_CASE("request plan: the client of a request is its peer, an IPv6 peer by its /64, or what the hook says",
          "[http]") {
  using river::http::detail::client_of;
  river::http::handler_options opts;
  const auto req = make(beast_http::verb::post, "/api/river", {}, {{"X-Client", "alice"}});
  CHECK(client_of(req, "203.0.113.7", opts) == "203.0.113.7");
  CHECK(client_of(req, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", opts) == "2001:db8:1:2::/64");
  CHECK(client_of(req, "2001:db8:1:2::1", opts) == client_of(req, "2001:db8:1:2:ffff::9", opts));
  CHECK(client_of(req, "2001:db8:1:3::1", opts) != client_of(req, "2001:db8:1:2::1", opts));
  CHECK(client_of(req, "::ffff:198.51.100.1", opts) == "::ffff:198.51.100.1");
  CHECK(client_of(req, "", opts).empty());
  opts.client_address = [](const river::http::request& r, std::string_view) {
    return std::string(r["X-Client"]);
  };
  CHECK(client_of(req, "203.0.113.7", opts) == "alice");
}
