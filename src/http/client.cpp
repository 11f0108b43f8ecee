// River's HTTP client: connections (plain and TLS), requests, responses, and the event source
// that reads a run's events and resumes it after a lost connection. The only translation unit of
// the client that includes Beast's HTTP parser and OpenSSL.

#include <river/http/client.hpp>
#include <river/http/detail/sse_parser.hpp>
#include <river/resume_token.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/url/parse.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <random>
#include <stdexcept>
#include <tuple>

namespace river::http::detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t read_chunk_size = 16 * 1024;
constexpr std::size_t header_limit = 16 * 1024;

}  // namespace

struct client_config {
  std::string url;
  bool tls = false;
  std::string host;                          // to connect to, for SNI and certificate checks (IPv6 without brackets)
  std::optional<asio::ip::address> address;  // when the host is an IP address
  std::string port;
  unsigned short port_number = 0;
  std::string host_header;  // the Host header: the URL's host and port, as written
  std::string path;         // the URL's path and query: the target of start requests
  client_options options;
  std::shared_ptr<asio::ssl::context> tls_context;
};

std::shared_ptr<const client_config> make_client_config(std::string_view url, client_options options) {
  auto invalid = [&](std::string_view why) {
    return std::invalid_argument("river::http::client: invalid URL '" + std::string(url) + "': " + std::string(why));
  };
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) throw invalid("it is not an absolute URL (scheme://host[:port]/path)");
  const auto& u = *parsed;
  auto cfg = std::make_shared<client_config>();
  cfg->url = std::string(url);
  if (u.scheme_id() == boost::urls::scheme::https)
    cfg->tls = true;
  else if (u.scheme_id() != boost::urls::scheme::http)
    throw invalid("the scheme must be http or https");
  if (!u.has_authority() || u.encoded_host().empty()) throw invalid("it has no host");
  switch (u.host_type()) {
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6: {
      cfg->host = u.host_address();
      error_code ec;
      auto a = asio::ip::make_address(cfg->host, ec);
      if (ec) throw invalid("its IP address is not valid");
      cfg->address = a;
      break;
    }
    case boost::urls::host_type::name:
      cfg->host = u.host_address();
      break;
    default:
      throw invalid("its host is not a name or an IP address");
  }
  if (u.has_port()) {
    auto text = u.port();
    unsigned long number = 0;
    for (char c : text) number = std::min(number * 10 + static_cast<unsigned long>(c - '0'), 100000ul);
    if (text.empty() || number == 0 || number > 65535) throw invalid("its port is not valid");
    cfg->port = std::string(text);
    cfg->port_number = static_cast<unsigned short>(number);
  } else {
    cfg->port = cfg->tls ? "443" : "80";
    cfg->port_number = cfg->tls ? 443 : 80;
  }
  cfg->host_header = std::string(u.encoded_host_and_port());
  cfg->path = std::string(u.encoded_path());
  if (cfg->path.empty()) cfg->path = "/";
  if (u.has_query()) {
    cfg->path.push_back('?');
    cfg->path.append(u.encoded_query());
  }
  cfg->options = std::move(options);
  if (cfg->tls) {
    cfg->tls_context = cfg->options.tls_context;
    if (!cfg->tls_context) {
      // The system's trust store, peers verified, TLS 1.2 at least.
      auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
      ctx->set_default_verify_paths();
      ctx->set_verify_mode(asio::ssl::verify_peer);
      SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
      cfg->tls_context = std::move(ctx);
    }
  }
  return cfg;
}

const std::string& config_url(const client_config& cfg) noexcept { return cfg.url; }

namespace {

// ---------------------------------------------------------------------------------------------
// Requests and responses

// encodeURIComponent, as the TypeScript client escapes the token: base64's '+', '/' and '='
// must not reach a server that decodes '+' as a space.
std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        std::string_view("-_.!~*'()").find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string resume_target(const client_config& cfg, std::string_view token) {
  std::string target = cfg.path;
  target.append(target.find('?') == std::string::npos ? "?" : "&");
  target.append("resumeKey=");
  target.append(percent_encode(token));
  return target;
}

std::string where(const client_config& cfg) { return cfg.host_header; }

// A failure of the client or its transport: of type "network", whatever its code.
river::error network_error(error_code ec, std::string message, nlohmann::json context = nlohmann::json::object()) {
  river::error e(std::move(message), error_type::network, std::move(context));
  e.code = ec;
  return e;
}

river::error transport_error(error_code ec, std::string what) {
  return network_error(ec, std::move(what) + ": " + ec.message());
}

// The error of an error status: the server's RiverError when the body is one, else the status
// and the start of the body.
river::error status_error(unsigned status, const std::string& body) {
  auto code = make_status_error(status);
  river::error e;
  auto j = nlohmann::json::parse(body, nullptr, false);
  auto name = j.is_object() ? j.find("__name__") : j.end();
  if (j.is_object() && name != j.end() && name->is_string() && name->get_ref<const std::string&>() == "RiverError") {
    e = error_from_json(j);
  } else {
    std::string msg = "The server answered " + code.message();
    std::string detail;
    if (j.is_object()) {
      if (auto m = j.find("message"); m != j.end() && m->is_string()) detail = m->get<std::string>();
    } else if (!j.is_discarded() && j.is_string()) {
      detail = j.get<std::string>();
    }
    if (detail.empty() && j.is_discarded()) detail = body.substr(0, 200);
    if (!detail.empty()) msg += ": " + detail;
    e = river::error(std::move(msg), error_type::network);
  }
  e.code = code;
  if (e.context.is_object()) e.context["httpStatus"] = status;
  return e;
}

// Statuses that say "try again later": a resumption may wait and repeat its request.
bool is_transient(const river::error& e) {
  if (e.code.category() == status_category()) {
    auto s = e.code.value();
    return s == 408 || s == 429 || s == 502 || s == 503 || s == 504;
  }
  if (e.code.category() == client_category()) return false;
  return e.code != asio::error::operation_aborted;
}

// ---------------------------------------------------------------------------------------------
// Transports: a plain or TLS byte stream behind one small interface. HTTP is spoken above it
// with Beast's parser used sans I/O, so no HTTP operation is instantiated once per stream type.

class transport {
 public:
  virtual ~transport() = default;
  virtual beast::tcp_stream& tcp() noexcept = 0;
  virtual asio::awaitable<error_code> handshake(const client_config& cfg) = 0;
  virtual asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) = 0;
  virtual asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer b) = 0;
  // Why the last handshake failed, from OpenSSL's certificate verification; empty if not that.
  virtual std::string verify_failure() = 0;

  // Ends every pending operation (with operation_aborted) and the connection. No TLS
  // close_notify: the client leaves a stream it no longer wants, it does not negotiate.
  void close() noexcept { tcp().close(); }
};

class plain_transport final : public transport {
 public:
  explicit plain_transport(const asio::any_io_executor& ex) : s_(ex) {}
  beast::tcp_stream& tcp() noexcept override { return s_; }
  asio::awaitable<error_code> handshake(const client_config&) override { co_return error_code(); }
  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
    co_return co_await s_.async_read_some(b, use_tuple);
  }
  asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer b) override {
    co_return co_await asio::async_write(s_, b, use_tuple);
  }
  std::string verify_failure() override { return {}; }

 private:
  beast::tcp_stream s_;
};

class tls_transport final : public transport {
 public:
  tls_transport(const asio::any_io_executor& ex, asio::ssl::context& ctx) : s_(ex, ctx) {}
  beast::tcp_stream& tcp() noexcept override { return s_.next_layer(); }

  asio::awaitable<error_code> handshake(const client_config& cfg) override {
    SSL* ssl = s_.native_handle();
    // SNI names the host (never an IP address, RFC 6066). SSL_set_tlsext_host_name without its
    // macro's C cast.
    if (!cfg.address && SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                 const_cast<char*>(cfg.host.c_str())) != 1)
      co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    if (cfg.options.verify_host) {
      // OpenSSL checks the name during verification and reports a mismatch as such.
      int ok = cfg.address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), cfg.host.c_str())
                           : SSL_set1_host(ssl, cfg.host.c_str());
      if (ok != 1) co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    }
    auto [ec] = co_await s_.async_handshake(asio::ssl::stream_base::client, use_tuple);
    co_return ec;
  }
  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
    co_return co_await s_.async_read_some(b, use_tuple);
  }
  asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer b) override {
    co_return co_await asio::async_write(s_, b, use_tuple);
  }
  std::string verify_failure() override {
    auto v = SSL_get_verify_result(s_.native_handle());
    if (v == X509_V_OK) return {};
    return X509_verify_cert_error_string(v);
  }

 private:
  asio::ssl::stream<beast::tcp_stream> s_;
};

// A header value that would break the request's framing.
bool bad_header_value(std::string_view v) { return v.find_first_of("\r\n") != std::string_view::npos; }

// One request and its response, on a connection of its own.
class exchange {
 public:
  exchange(const client_config& cfg, const asio::any_io_executor& ex)
      : cfg_(cfg), resolver_(ex), buffer_(buffer_limit) {
    if (cfg.tls)
      t_ = std::make_unique<tls_transport>(ex, *cfg.tls_context);
    else
      t_ = std::make_unique<plain_transport>(ex);
  }

  // Connects, sends the request and reads the response's header; an error status (its body
  // read, bounded) becomes the server's error. Success leaves the body to `read_some`.
  asio::awaitable<result<void>> open(std::string_view method, std::string target, std::string body,
                                     const std::string* last_event_id, bool event_stream) {
    std::string request;
    request.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    request.append("Host: ").append(cfg_.host_header).append("\r\n");
    request.append("User-Agent: river-cpp/")
        .append(std::to_string(RIVER_VERSION_MAJOR) + "." + std::to_string(RIVER_VERSION_MINOR))
        .append("\r\n");
    if (event_stream) request.append("Accept: text/event-stream\r\nCache-Control: no-cache\r\n");
    bool bad = false;
    if (last_event_id) {
      bad = bad || bad_header_value(*last_event_id);
      request.append("Last-Event-ID: ").append(*last_event_id).append("\r\n");
    }
    for (const auto& [name, value] : cfg_.options.headers) {
      bad = bad || bad_header_value(name) || bad_header_value(value) || name.find(':') != std::string::npos;
      request.append(name).append(": ").append(value).append("\r\n");
    }
    if (bad) co_return network_error(asio::error::invalid_argument, "A request header contains a line break");
    if (method == "POST") {
      request.append("Content-Type: application/json\r\nContent-Length: ")
          .append(std::to_string(body.size()))
          .append("\r\n");
    }
    request.append("\r\n").append(body);

    auto& tcp = t_->tcp();
    auto deadline = clock::now() + cfg_.options.connect_timeout;
    if (cfg_.address) {
      tcp::endpoint endpoint(*cfg_.address, cfg_.port_number);
      tcp.expires_at(deadline);
      auto [ec] = co_await tcp.async_connect(endpoint, use_tuple);
      if (ec) co_return transport_error(ec, "Could not connect to " + where(cfg_));
    } else {
      auto [rec, endpoints] = co_await resolver_.async_resolve(cfg_.host, cfg_.port, use_tuple);
      if (rec) co_return transport_error(rec, "Could not resolve " + cfg_.host);
      tcp.expires_at(deadline);
      auto [ec, endpoint] = co_await tcp.async_connect(endpoints, use_tuple);
      if (ec) co_return transport_error(ec, "Could not connect to " + where(cfg_));
    }
    if (cfg_.tls) {
      tcp.expires_at(deadline);
      auto ec = co_await t_->handshake(cfg_);
      if (ec) {
        auto why = t_->verify_failure();
        co_return transport_error(
            ec, "TLS handshake with " + where(cfg_) + " failed" + (why.empty() ? std::string() : " (" + why + ")"));
      }
    }

    tcp.expires_after(cfg_.options.response_timeout);
    {
      auto [ec, n] = co_await t_->write(asio::buffer(request));
      if (ec) co_return transport_error(ec, "Could not send the request to " + where(cfg_));
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(header_limit));
    parser_->body_limit(boost::none);  // a stream is as long as its run; events are bounded one by one
    for (;;) {
      error_code ec;
      if (buffer_.size() > 0) {
        buffer_.consume(parser_->put(buffer_.data(), ec));
        if (parser_->is_header_done()) break;
        if (ec && ec != bhttp::error::need_more)
          co_return transport_error(ec, "The response from " + where(cfg_) + " is not valid HTTP");
      }
      auto [rec, n] = co_await fill();
      if (rec == asio::error::eof) rec = bhttp::error::end_of_stream;
      if (rec) co_return transport_error(rec, "No response from " + where(cfg_));
    }
    parser_->eager(true);

    auto status = parser_->get().result_int();
    if (status < 200 || status >= 300) {
      std::string text;
      while (!parser_->is_done() && text.size() < cfg_.options.max_error_body_size) {
        auto [ec, chunk] = co_await read_some(cfg_.options.response_timeout);
        text.append(chunk.substr(0, cfg_.options.max_error_body_size - text.size()));
        if (ec) break;
      }
      close();
      co_return status_error(status, text);
    }
    if (event_stream) {
      // Some servers (the TypeScript adapters) name no content type for their streams; any other
      // than an event stream, or a text one, is a wrong endpoint.
      auto type = parser_->get()[bhttp::field::content_type];
      auto media = type.substr(0, type.find(';'));
      while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
      if (!media.empty() && !beast::iequals(media, "text/event-stream") && !beast::iequals(media, "text/plain")) {
        close();
        co_return network_error(
            client_errc::unexpected_content_type,
            "The response from " + where(cfg_) + " is not an event stream (" + std::string(type) + ")");
      }
    }
    co_return result<void>();
  }

  struct read_result {
    error_code ec;
    std::string_view bytes;
  };

  // Reads some of the body (chunked or not, decoded), waiting at most `timeout` for the network.
  // No bytes and no error: the body is complete.
  asio::awaitable<read_result> read_some(std::chrono::milliseconds timeout) {
    auto& body = parser_->get().body();
    body.data = chunk_.data();
    body.size = chunk_.size();
    read_result out;
    for (;;) {
      if (buffer_.size() > 0) {
        error_code ec;
        buffer_.consume(parser_->put(buffer_.data(), ec));
        if (ec && ec != bhttp::error::need_more && ec != bhttp::error::need_buffer) {
          out.ec = ec;
          break;
        }
      }
      if (body.size < chunk_.size() || parser_->is_done()) break;
      t_->tcp().expires_after(timeout);
      auto [ec, n] = co_await fill();
      if (ec == asio::error::eof) {
        // The end of a body delimited by the connection's end, or a body cut short.
        ec = {};
        parser_->put_eof(ec);
      }
      if (ec) {
        out.ec = ec;
        break;
      }
    }
    out.bytes = std::string_view(chunk_.data(), chunk_.size() - body.size);
    co_return out;
  }

  bool body_done() const { return parser_ && parser_->is_done(); }

  // 204 to a resume: the run ended, and nothing follows the position resumed from.
  bool run_ended() const { return parser_ && parser_->get().result() == bhttp::status::no_content; }

  void close() noexcept {
    resolver_.cancel();
    t_->close();
  }

 private:
  static constexpr std::size_t buffer_limit = 2 * std::max(header_limit, read_chunk_size);

  // Reads more bytes into the buffer.
  asio::awaitable<std::tuple<error_code, std::size_t>> fill() {
    auto room = buffer_.max_size() - buffer_.size();
    if (room == 0) co_return std::tuple<error_code, std::size_t>(bhttp::error::header_limit, 0);
    auto [ec, n] = co_await t_->read_some(buffer_.prepare(std::min(room, read_chunk_size)));
    buffer_.commit(n);
    co_return std::tuple<error_code, std::size_t>(ec, n);
  }

  const client_config& cfg_;
  tcp::resolver resolver_;
  std::unique_ptr<transport> t_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_;
  std::array<char, read_chunk_size> chunk_{};
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The event source

struct event_source::impl {
  impl(std::shared_ptr<const client_config> c, asio::any_io_executor e)
      : cfg(std::move(c)), ex(e), parser(cfg->options.max_event_size), backoff(e), rng(std::random_device()()) {}

  std::shared_ptr<const client_config> cfg;
  asio::any_io_executor ex;
  std::unique_ptr<exchange> conn;  // the response being read; null after it was lost
  sse_parser parser;
  std::string run_id, token;

  // Events are counted from where the first request resumed (index 0: the run's start, or the
  // position resumed from). `received` counts the current response's events on that scale, so
  // a resumed response can skip what was delivered before.
  std::uint64_t received = 0;
  std::uint64_t delivered = 0;  // events taken from a response for delivery (ready, held or returned)
  bool has_position = false;    // a position to resume from: `position` of event `position_index`
  std::string last_position;
  std::uint64_t position_index = 0;
  std::uint64_t returned = 0;  // events returned by next
  std::string returned_position;

  std::deque<event> ready;    // events to return, in order
  std::optional<event> held;  // the newest event, waiting for the position that follows it
  bool ids_seen = false;      // the server sends positions
  bool check_replay = false;  // the response replays the run from its start
  bool done = false;
  bool closed = false;
  bool busy = false;

  river::error failure;              // why the last response was lost
  std::optional<river::error> loss;  // the current response failed: once its messages are parsed
  unsigned attempts = 0;
  std::size_t reconnections = 0;
  asio::steady_timer backoff;
  std::minstd_rand rng;

  void close() noexcept {
    closed = true;
    if (conn) conn->close();
    backoff.cancel();
  }

  // A resume answered 204: the run ended at the position resumed from, and the stream with it.
  bool took_run_end() {
    if (!conn || !conn->run_ended()) return false;
    conn->close();
    conn.reset();
    done = true;
    return true;
  }

  void release_held() {
    if (held) {
      ready.push_back(std::move(*held));
      held.reset();
    }
  }

  // A message with data: one event of the run.
  result<void> on_message() {
    ++received;
    auto parsed = parse_event(parser.data());
    event ev;
    if (parsed) {
      ev = std::move(*parsed);
    } else {
      // Not a River event: an error at its place, so counting stays right.
      ev.payload = events::error{std::move(parsed).error()};
    }
    bool own_id = parser.message_had_id() && !parser.last_event_id().empty();
    if (own_id) note_position(parser.last_event_id());

    if (received <= delivered) {
      // Delivered before the connection was lost: a replay.
      if (check_replay && received == 1) {
        auto* s = ev.get_if<events::start>();
        if (s && !run_id.empty() && s->run_id != run_id)
          return network_error(client_errc::replay_mismatch,
                               "The resumed stream belongs to another run (" + s->run_id + ", not " + run_id + ")");
      }
      if (ev.is_terminal())
        return network_error(client_errc::replay_mismatch, "The resumed stream ended before the events already read");
      return {};
    }
    check_replay = false;
    delivered = received;
    attempts = 0;  // progress
    if (auto* s = ev.get_if<events::start>()) {
      run_id = s->run_id;
      if (token.empty()) token = s->resumption_token;
    }
    release_held();
    if (own_id) {
      ev.position = parser.last_event_id();
      ready.push_back(std::move(ev));
    } else {
      held = std::move(ev);
    }
    return {};
  }

  // An id-only message: the position of the last event received.
  void on_id() {
    ids_seen = true;
    const auto& id = parser.last_event_id();
    if (id.empty()) return;  // a reset to "no position": keep resuming from the last one
    note_position(id);
    if (held && received == delivered) {
      held->position = id;
      release_held();
    }
    if (received == returned && returned_position.empty()) returned_position = id;
  }

  void note_position(const std::string& id) {
    has_position = true;
    last_position = id;
    position_index = received;
  }

  event take_ready() {
    event ev = std::move(ready.front());
    ready.pop_front();
    ++returned;
    returned_position = ev.position;
    if (ev.is_terminal()) {
      done = true;
      if (conn) conn->close();
      conn.reset();
    }
    return ev;
  }

  // The response ended or failed before the run's end.
  void lose_connection(river::error why) {
    if (conn) conn->close();
    conn.reset();
    release_held();  // it is whole: deliver it, a replay will skip it
    failure = std::move(why);
  }

  std::chrono::milliseconds backoff_delay() {
    using ms = std::chrono::milliseconds;
    const auto& o = cfg->options;
    ms base = o.initial_backoff;
    if (attempts == 1 && parser.retry())
      base = ms(static_cast<ms::rep>(std::min<std::uint64_t>(*parser.retry(), 1u << 30)));
    for (unsigned i = 1; i < attempts && base < o.max_backoff; ++i) base *= 2;
    base = std::min(base, o.max_backoff);
    if (base.count() <= 1) return base;
    // Jitter: the upper half, so that clients cut off together do not come back together.
    std::uniform_int_distribution<ms::rep> pick(base.count() / 2, base.count());
    return ms(pick(rng));
  }

  // Opens a new response that resumes the run where the lost one ended.
  asio::awaitable<result<void>> reconnect() {
    const auto& o = cfg->options;
    if (token.empty() || o.max_resume_attempts == 0) {
      auto why = token.empty() ? std::string("the server gave no resumption token")
                               : std::string("automatic resumption is off");
      co_return network_error(
          client_errc::connection_lost,
          "Lost the connection to " + where(*cfg) + " before the run's end, and " + why + ": " + failure.message,
          {{"cause", failure.message}});
    }
    for (;;) {
      if (attempts >= o.max_resume_attempts)
        co_return network_error(client_errc::retries_exhausted,
                                "Lost the connection to " + where(*cfg) + " and could not resume after " +
                                    std::to_string(attempts) + " attempts: " + failure.message,
                                {{"cause", failure.message}, {"attempts", attempts}});
      ++attempts;
      backoff.expires_after(backoff_delay());
      auto [wec] = co_await backoff.async_wait(use_tuple);
      if (closed || wec) co_return transport_error(asio::error::operation_aborted, "The stream was closed");

      conn = std::make_unique<exchange>(*cfg, ex);
      std::string target = resume_target(*cfg, token);
      auto opened =
          co_await conn->open("GET", std::move(target), std::string(), has_position ? &last_position : nullptr, true);
      if (closed) co_return transport_error(asio::error::operation_aborted, "The stream was closed");
      if (opened && took_run_end()) co_return result<void>();
      if (opened) {
        parser.reset();
        received = has_position ? position_index : 0;
        check_replay = !has_position;
        ++reconnections;
        co_return result<void>();
      }
      conn.reset();
      if (!is_transient(opened.error())) co_return std::move(opened).error();
      failure = std::move(opened).error();
    }
  }

  asio::awaitable<result<std::optional<event>>> next() {
    for (;;) {
      if (!ready.empty()) co_return take_ready();
      if (done) co_return std::optional<event>();
      if (!conn) {
        auto r = co_await reconnect();
        if (!r) co_return std::move(r).error();
        continue;
      }
      error_code ec;
      auto item = parser.next(ec);
      if (ec) {
        co_return network_error(ec, "An event from " + where(*cfg) + " is larger than " +
                                        std::to_string(cfg->options.max_event_size) + " bytes");
      }
      if (item == sse_item::message) {
        auto r = on_message();
        if (!r) co_return std::move(r).error();
        continue;
      }
      if (item == sse_item::id) {
        on_id();
        continue;
      }
      if (item == sse_item::comment) continue;

      // Every whole message received is parsed. Hold the newest event for its position only
      // when the server sends positions; never keep ready events waiting for the network.
      if (!ids_seen) release_held();
      if (!ready.empty()) continue;
      if (loss) {
        lose_connection(std::move(*loss));
        loss.reset();
        continue;
      }
      if (conn->body_done()) {
        loss = transport_error(asio::error::eof, "The response from " + where(*cfg) + " ended before the run's end");
        continue;
      }
      auto got = co_await conn->read_some(cfg->options.idle_timeout);
      if (closed) co_return transport_error(asio::error::operation_aborted, "The stream was closed");
      if (got.ec == asio::error::operation_aborted) {
        close();
        co_return transport_error(got.ec, "Reading the stream was cancelled");
      }
      parser.feed(got.bytes);
      if (got.ec == beast::error::timeout) {
        loss = transport_error(got.ec, "No data from " + where(*cfg) + " for " +
                                           std::to_string(cfg->options.idle_timeout.count()) + " ms");
      } else if (got.ec) {
        // Whole messages that arrived before the failure still count: parsed first.
        loss = transport_error(got.ec, "The connection to " + where(*cfg) + " failed");
      }
    }
  }
};

event_source::event_source(std::unique_ptr<impl> p) noexcept : impl_(std::move(p)) {}
event_source::~event_source() = default;

asio::awaitable<result<std::unique_ptr<event_source>>> event_source::start(std::shared_ptr<const client_config> cfg,
                                                                           std::string name, nlohmann::json input) {
  auto ex = co_await asio::this_coro::executor;
  auto p = std::make_unique<impl>(cfg, ex);
  nlohmann::json request;
  request["routerStreamKey"] = std::move(name);
  request["input"] = std::move(input);
  auto body = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  p->conn = std::make_unique<exchange>(*cfg, ex);
  auto opened = co_await p->conn->open("POST", cfg->path, std::move(body), nullptr, true);
  if (!opened) co_return std::move(opened).error();
  auto source = std::make_unique<event_source>(std::move(p));
  co_return std::move(source);
}

asio::awaitable<result<std::unique_ptr<event_source>>> event_source::resume(std::shared_ptr<const client_config> cfg,
                                                                            std::string token,
                                                                            std::optional<std::string> position) {
  auto ex = co_await asio::this_coro::executor;
  auto p = std::make_unique<impl>(cfg, ex);
  p->token = std::move(token);
  if (auto decoded = decode_token(p->token)) p->run_id = decoded->stream_run_id;
  if (position && !position->empty()) {
    p->has_position = true;
    p->last_position = *position;
    p->returned_position = *position;
  } else {
    p->check_replay = true;
  }
  p->conn = std::make_unique<exchange>(*cfg, ex);
  std::string target = resume_target(*cfg, p->token);
  auto opened = co_await p->conn->open("GET", std::move(target), std::string(),
                                       p->has_position ? &p->last_position : nullptr, true);
  if (!opened) co_return std::move(opened).error();
  p->took_run_end();
  auto source = std::make_unique<event_source>(std::move(p));
  co_return std::move(source);
}

asio::awaitable<result<std::optional<event>>> event_source::next() {
  auto& p = *impl_;
  if (p.closed) co_return river::error::from_code(errc::not_open, "The event stream is closed");
  if (p.busy) co_return river::error::from_code(errc::operation_in_progress, "A read is already pending");
  p.busy = true;
  struct release {
    bool& flag;
    ~release() { flag = false; }
  } guard{p.busy};
  try {
    auto r = co_await p.next();
    if (!r && !p.closed) {
      // A failure ends the stream; the run goes on at the server.
      p.close();
    }
    co_return std::move(r);
  } catch (const boost::system::system_error& e) {
    // Cancelled while suspended: the coroutine cannot await anything any more.
    p.close();
    co_return transport_error(e.code(), "Reading the stream was cancelled");
  }
}

void event_source::close() noexcept { impl_->close(); }
bool event_source::is_open() const noexcept { return !impl_->closed && !(impl_->done && impl_->ready.empty()); }
asio::any_io_executor event_source::get_executor() const noexcept { return impl_->ex; }
const std::string& event_source::run_id() const noexcept { return impl_->run_id; }
const std::string& event_source::resumption_token() const noexcept { return impl_->token; }
const std::string& event_source::position() const noexcept { return impl_->returned_position; }
std::size_t event_source::reconnections() const noexcept { return impl_->reconnections; }

asio::awaitable<result<void>> send_cancel(std::shared_ptr<const client_config> cfg, std::string token) {
  auto ex = co_await asio::this_coro::executor;
  exchange x(*cfg, ex);
  std::string target = resume_target(*cfg, token);
  auto opened = co_await x.open("DELETE", std::move(target), std::string(), nullptr, false);
  x.close();
  co_return opened;
}

}  // namespace river::http::detail
