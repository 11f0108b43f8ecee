// RESP encoding and decoding with hiredis, URL parsing, and stream reply decoding: the sans-I/O
// half of the Redis part. This file and connection.cpp are the only ones that see hiredis.

#include <river/redis/config.hpp>
#include <river/redis/detail/resp.hpp>
#include <river/redis/detail/stream_entry.hpp>
#include <river/redis/request.hpp>
#include <river/redis/value.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <charconv>
#include <limits>
#include <stdexcept>
#include <vector>

namespace river::redis {

// ---- request --------------------------------------------------------------------------------

void request::push(std::span<const std::string_view> args) {
  if (args.empty()) throw std::invalid_argument("river::redis::request: a command needs a name");
  if (args.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::invalid_argument("river::redis::request: too many arguments");
  // Most commands have a few arguments: keep their pointers on the stack.
  constexpr std::size_t small = 16;
  std::array<const char*, small> argv_small;
  std::array<std::size_t, small> lens_small;
  std::vector<const char*> argv_big;
  std::vector<std::size_t> lens_big;
  const char** argv = argv_small.data();
  std::size_t* lens = lens_small.data();
  if (args.size() > small) {
    argv_big.resize(args.size());
    lens_big.resize(args.size());
    argv = argv_big.data();
    lens = lens_big.data();
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  char* out = nullptr;
  const int n = redisFormatCommandArgv(&out, static_cast<int>(args.size()), argv, lens);
  if (n < 0 || out == nullptr) throw std::bad_alloc();
  std::unique_ptr<char, decltype(&redisFreeCommand)> owned(out, &redisFreeCommand);
  payload_.append(out, static_cast<std::size_t>(n));
  ++commands_;
}

// ---- value ----------------------------------------------------------------------------------

namespace {
void render(const value& v, std::string& out) {
  switch (v.type) {
    case value::kind::nil: out += "(nil)"; return;
    case value::kind::string:
    case value::kind::status:
      out += '"';
      out += v.text;
      out += '"';
      return;
    case value::kind::error:
      out += "(error) ";
      out += v.text;
      return;
    case value::kind::integer: out += std::to_string(v.integer); return;
    case value::kind::array:
      out += '[';
      for (std::size_t i = 0; i < v.elements.size(); ++i) {
        if (i) out += ", ";
        render(v.elements[i], out);
      }
      out += ']';
      return;
  }
}
}  // namespace

std::string to_string(const value& v) {
  std::string out;
  render(v, out);
  return out;
}

// ---- URL ------------------------------------------------------------------------------------

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

template <class Int>
bool parse_number(std::string_view s, Int& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

boost::system::result<address> parse_url(std::string_view url) {
  const error_code bad = error::invalid_url;
  address a;
  constexpr std::string_view tcp_scheme = "redis://", unix_scheme = "unix://";
  if (url.starts_with(unix_scheme)) {
    a.kind = address::transport::unix_socket;
    auto rest = url.substr(unix_scheme.size());
    if (auto q = rest.find('?'); q != std::string_view::npos) {
      auto query = rest.substr(q + 1);
      rest = rest.substr(0, q);
      if (!query.starts_with("db=") || !parse_number(query.substr(3), a.database) || a.database < 0) return bad;
    }
    if (rest.empty() || rest.front() != '/') return bad;
    a.path = std::string(rest);
    a.host.clear();
    return a;
  }
  if (!url.starts_with(tcp_scheme)) return bad;
  auto rest = url.substr(tcp_scheme.size());
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      // `redis://secret@host` names a password alone, as redis-cli and most clients read it.
      if (!percent_decode(userinfo, a.password)) return bad;
    } else {
      if (!percent_decode(userinfo.substr(0, colon), a.user)) return bad;
      if (!percent_decode(userinfo.substr(colon + 1), a.password)) return bad;
    }
  }
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad;
    host = rest.substr(1, close - 1);
    auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad;
      port = after.substr(1);
      if (port.empty()) return bad;
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) return bad;
  }
  if (host.empty()) return bad;
  a.host = std::string(host);
  if (!port.empty() && (!parse_number(port, a.port) || a.port == 0)) return bad;
  if (!path.empty() && (!parse_number(path, a.database) || a.database < 0)) return bad;
  return a;
}

// ---- reply parser ---------------------------------------------------------------------------

namespace detail {

namespace {
struct reader_deleter {
  void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
};
struct reply_deleter {
  void operator()(void* r) const noexcept { freeReplyObject(r); }
};

value convert(const redisReply& r) {
  value v;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      v.type = value::kind::string;
      v.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = value::kind::status;
      v.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = value::kind::error;
      v.text.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = value::kind::integer;
      v.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = value::kind::array;
      v.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) v.elements.push_back(convert(*r.element[i]));
      break;
    default: v.type = value::kind::nil; break;
  }
  return v;
}
}  // namespace

struct reply_parser::impl {
  std::unique_ptr<redisReader, reader_deleter> reader;
  std::size_t max_buffer;
  bool failed = false;
};

reply_parser::reply_parser(std::size_t max_buffer) : impl_(std::make_unique<impl>()) {
  impl_->reader.reset(redisReaderCreate());
  if (!impl_->reader) throw std::bad_alloc();
  impl_->max_buffer = max_buffer;
}
reply_parser::~reply_parser() = default;
reply_parser::reply_parser(reply_parser&&) noexcept = default;
reply_parser& reply_parser::operator=(reply_parser&&) noexcept = default;

error_code reply_parser::feed(const char* data, std::size_t size) {
  if (impl_->failed) return error::protocol_error;
  if (size == 0) return {};
  if (buffered() + size > impl_->max_buffer) {
    impl_->failed = true;
    return error::read_buffer_exceeded;
  }
  if (redisReaderFeed(impl_->reader.get(), data, size) != REDIS_OK) {
    impl_->failed = true;
    return error::protocol_error;
  }
  return {};
}

error_code reply_parser::next(std::optional<value>& out) {
  out.reset();
  if (impl_->failed) return error::protocol_error;
  void* raw = nullptr;
  if (redisReaderGetReply(impl_->reader.get(), &raw) != REDIS_OK) {
    impl_->failed = true;
    return error::protocol_error;
  }
  if (raw == nullptr) return {};
  std::unique_ptr<void, reply_deleter> owned(raw);
  out = convert(*static_cast<const redisReply*>(raw));
  return {};
}

std::size_t reply_parser::buffered() const noexcept {
  const auto* r = impl_->reader.get();
  return r->len - r->pos;
}

std::string reply_parser::last_error() const {
  const auto* r = impl_->reader.get();
  return r->err ? std::string(r->errstr) : std::string();
}

// ---- stream entries -------------------------------------------------------------------------

std::optional<entry_id> entry_id::parse(std::string_view text) noexcept {
  auto dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  entry_id id;
  auto digits = [](std::string_view s) {
    for (char c : s)
      if (c < '0' || c > '9') return false;
    return !s.empty();
  };
  auto ms = text.substr(0, dash), seq = text.substr(dash + 1);
  if (!digits(ms) || !digits(seq) || !parse_number(ms, id.ms) || !parse_number(seq, id.seq)) return std::nullopt;
  return id;
}

std::string entry_id::to_string() const { return std::to_string(ms) + "-" + std::to_string(seq); }

namespace {

error_code shape_error(const value& reply) {
  return reply.is_error() ? error_code(error::server_error) : error_code(error::unexpected_reply);
}

bool decode_entry(const value& v, stream_entry& out) {
  if (!v.is_array() || v.elements.size() != 2) return false;
  const auto& id = v.elements[0];
  const auto& fields = v.elements[1];
  if (!id.is_text()) return false;
  out.id = id.text;
  // A deleted entry can come back with nil fields (XREAD on a stream with deleted entries
  // under some versions); treat it as an entry without fields.
  if (fields.is_nil()) return true;
  if (!fields.is_array() || fields.elements.size() % 2 != 0) return false;
  out.fields.reserve(fields.elements.size() / 2);
  for (std::size_t i = 0; i < fields.elements.size(); i += 2) {
    const auto& f = fields.elements[i];
    const auto& val = fields.elements[i + 1];
    if (!f.is_text() || !val.is_text()) return false;
    out.fields.emplace_back(f.text, val.text);
  }
  return true;
}

}  // namespace

boost::system::result<std::vector<stream_entry>> decode_range(const value& reply) {
  if (!reply.is_array()) return shape_error(reply);
  std::vector<stream_entry> out;
  out.reserve(reply.elements.size());
  for (const auto& e : reply.elements) {
    stream_entry entry;
    if (!decode_entry(e, entry)) return error_code(error::unexpected_reply);
    out.push_back(std::move(entry));
  }
  return out;
}

boost::system::result<std::vector<stream_entries>> decode_read(const value& reply) {
  std::vector<stream_entries> out;
  if (reply.is_nil()) return out;
  if (!reply.is_array()) return shape_error(reply);
  for (const auto& k : reply.elements) {
    if (!k.is_array() || k.elements.size() != 2 || !k.elements[0].is_text())
      return error_code(error::unexpected_reply);
    auto entries = decode_range(k.elements[1]);
    if (!entries) return error_code(error::unexpected_reply);
    out.push_back({k.elements[0].text, std::move(*entries)});
  }
  return out;
}

}  // namespace detail
}  // namespace river::redis
