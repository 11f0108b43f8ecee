// Redis URLs: `redis://[[user]:password@]host[:port][/db]` and `unix:///path[?db=N]`.

#include <river/redis/config.hpp>

#include <charconv>
#include <string>

namespace river::redis {

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

bool is_cluster_url(std::string_view url) noexcept { return url.starts_with("redis+cluster://"); }

boost::system::result<std::vector<address>> parse_cluster_url(std::string_view url) {
  const error_code bad = error::invalid_url;
  constexpr std::string_view scheme = "redis+cluster://";
  if (!is_cluster_url(url)) return bad;
  auto rest = url.substr(scheme.size());
  // The login comes once, before the first node: `user:password@host:port,host:port`.
  std::string_view login;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    login = rest.substr(0, at + 1);
    rest = rest.substr(at + 1);
  }
  std::vector<address> seeds;
  while (!rest.empty() || seeds.empty()) {
    const auto comma = rest.find(',');
    const auto node = rest.substr(0, comma);
    if (node.empty() || node.find('/') != std::string_view::npos) return bad;
    std::string one("redis://");
    one.append(login).append(node);
    auto a = parse_url(one);
    if (!a) return a.error();
    seeds.push_back(std::move(*a));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (rest.empty()) return bad;
  }
  return seeds;
}

bool valid_url(std::string_view url) noexcept {
  return is_cluster_url(url) ? parse_cluster_url(url).has_value() : parse_url(url).has_value();
}

}  // namespace river::redis
