// What a request to the River endpoint asks for (detail/request_plan.hpp).

#include <river/http/detail/request_plan.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>

namespace river::http::detail {

namespace {

namespace beast_http = boost::beast::http;

constexpr std::string_view allow_field = "Allow: GET, POST, DELETE, OPTIONS\r\n";

answer refuse(unsigned status, river::error e, std::string fields = {}) {
  return answer{status, std::move(e), std::move(fields)};
}

// A query parameter, percent-decoded (the first of that name).
std::optional<std::string> query_param(const boost::urls::url_view& url, std::string_view key) {
  for (auto p : url.params())
    if (p.key == key) return std::move(p.value);
  return std::nullopt;
}

// The `resumeKey` of a resume or cancel request, or the error that answers its absence.
std::optional<std::string> resume_key(const boost::urls::url_view& url) {
  auto token = query_param(url, "resumeKey");
  if (!token || token->empty()) return std::nullopt;
  // A '+' left unencoded by a client arrives decoded as a space; base64 has no spaces.
  std::replace(token->begin(), token->end(), ' ', '+');
  return token;
}

answer missing_key() {
  auto e = river::error::from_code(errc::invalid_request, "Must send a resume key", {{"field", "resumeKey"}});
  return refuse(400, std::move(e));
}

bool acceptable_content_type(std::string_view value) {
  if (value.empty()) return true;
  auto media = value.substr(0, value.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  return boost::beast::iequals(media, "application/json") || boost::beast::iequals(media, "text/plain");
}

request_plan plan_start(const request& req, const handler_options& opts) {
  auto ct = req.find(beast_http::field::content_type);
  if (ct != req.end() && !acceptable_content_type(ct->value()))
    return refuse(415, river::error("Unsupported content type: send JSON", error_type::validation,
                                    {{"contentType", std::string(ct->value())}}));
  if (req.body().size() > opts.max_body_bytes)
    return refuse(413, river::error("Request body too large", error_type::validation, {{"limit", opts.max_body_bytes}}));
  auto body = nlohmann::json::parse(req.body(), nullptr, false);
  if (body.is_discarded())
    return refuse(400, river::error::from_code(errc::invalid_request, "Failed to parse request body: not JSON"));
  if (!body.is_object())
    return refuse(400, river::error::from_code(errc::invalid_request, "Invalid request body: not a JSON object"));
  auto key = body.find("routerStreamKey");
  if (key == body.end() || !key->is_string())
    return refuse(400, river::error::from_code(errc::invalid_request,
                                               "Invalid request body: 'routerStreamKey' must be a string",
                                               {{"field", "routerStreamKey"}}));
  start_run s;
  s.stream = key->get<std::string>();
  if (auto in = body.find("input"); in != body.end()) s.input = std::move(*in);
  return s;
}

request_plan plan_resume(const request& req, const boost::urls::url_view& url) {
  auto token = resume_key(url);
  if (!token) return missing_key();
  resume_run r;
  r.token = std::move(*token);
  // EventSource reconnects to its original URL and sends its newest position in the header, so
  // the header wins over a query parameter that may be stale. `now` and `-N` join at the tail.
  if (auto h = req.find("Last-Event-ID"); h != req.end() && !h->value().empty())
    r.from = read_from::parse(std::string_view(h->value().data(), h->value().size()));
  else if (auto q = query_param(url, "lastEventId"); q && !q->empty())
    r.from = read_from::parse(*q);
  return r;
}

answer preflight(const request& req, const handler_options& opts) {
  answer a;
  a.fields = std::string(allow_field);
  if (!cors_fields(req, opts).empty()) {
    a.fields.append("Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n");
    auto requested = req.find(beast_http::field::access_control_request_headers);
    if (requested != req.end())
      a.fields.append("Access-Control-Allow-Headers: ").append(requested->value()).append("\r\n");
    else
      a.fields.append("Access-Control-Allow-Headers: Content-Type, Last-Event-ID\r\n");
    a.fields.append("Access-Control-Max-Age: 600\r\n");
  }
  return a;
}

}  // namespace

namespace {

// Whether `origin` can be a browser's serialized origin, `scheme://host[:port]` or "null": what
// "*" echoes. Anything else (no browser sends it) would only make the response's head longer
// than clients read, or carry bytes no header should.
bool serialized_origin(std::string_view origin) {
  if (origin == "null") return true;
  if (origin.size() > 512 || origin.find("://") == std::string_view::npos) return false;
  return std::all_of(origin.begin(), origin.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
           ch == '+' || ch == ':' || ch == '/' || ch == '[' || ch == ']';
  });
}

}  // namespace

std::string cors_fields(const request& req, const handler_options& opts) {
  if (opts.cors_origins.empty()) return {};
  auto it = req.find(beast_http::field::origin);
  if (it == req.end()) return {};
  const auto origin = it->value();
  for (const auto& allowed : opts.cors_origins) {
    if ((allowed == "*" && serialized_origin(origin)) || allowed == origin) {
      std::string out("Access-Control-Allow-Origin: ");
      out.append(origin.data(), origin.size());
      out.append("\r\nVary: Origin\r\n");
      return out;
    }
  }
  return {};
}

request_plan plan_request(const request& req, const handler_options& opts) {
  auto parsed = boost::urls::parse_origin_form(req.target());
  if (!parsed) return refuse(400, river::error("The request target is not a valid URL path", error_type::validation));
  const boost::urls::url_view url = *parsed;
  if (url.encoded_path() != opts.path)
    return refuse(404, river::error("Not found", error_type::validation, {{"path", std::string(url.encoded_path())}}));
  switch (req.method()) {
    case beast_http::verb::post: return plan_start(req, opts);
    case beast_http::verb::get: return plan_resume(req, url);
    case beast_http::verb::delete_: {
      auto token = resume_key(url);
      if (!token) return missing_key();
      return cancel_run{std::move(*token)};
    }
    case beast_http::verb::options: return preflight(req, opts);
    default:
      return refuse(405,
                    river::error("Method not allowed", error_type::validation,
                                 {{"method", std::string(req.method_string())}}),
                    std::string(allow_field));
  }
}

std::string client_of(const request& req, std::string_view peer, const handler_options& opts) {
  if (opts.client_address) return opts.client_address(req, peer);
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(peer, ec);
  if (ec || !address.is_v6() || address.to_v6().is_v4_mapped()) return std::string(peer);
  auto bytes = address.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace river::http::detail
