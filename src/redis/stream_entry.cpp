// Stream entry ids and the decoding of XRANGE replies.

#include <river/redis/detail/stream_entry.hpp>

#include <charconv>

namespace river::redis::detail {

namespace {

bool parse_number(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::optional<entry_id> entry_id::parse(std::string_view text) noexcept {
  auto dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  entry_id id;
  // Decimal digits as Redis writes them: no sign, no leading zero (but "0" itself).
  auto canonical = [](std::string_view s) {
    for (char c : s)
      if (c < '0' || c > '9') return false;
    return !s.empty() && (s.size() == 1 || s[0] != '0');
  };
  auto ms = text.substr(0, dash), seq = text.substr(dash + 1);
  if (!canonical(ms) || !canonical(seq) || !parse_number(ms, id.ms) || !parse_number(seq, id.seq)) return std::nullopt;
  return id;
}

std::string entry_id::to_string() const { return std::string(entry_id_text(*this).view()); }

entry_id_text::entry_id_text(const entry_id& id) noexcept {
  char* end = std::to_chars(chars_, chars_ + 20, id.ms).ptr;
  *end++ = '-';
  end = std::to_chars(end, end + 20, id.seq).ptr;
  size_ = static_cast<std::uint8_t>(end - chars_);
}

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

bool range_starts_at(const value& reply, const entry_id& id) {
  if (!reply.is_array() || reply.elements.empty()) return false;
  const auto& first = reply.elements.front();
  if (!first.is_array() || first.elements.empty() || !first.elements[0].is_text()) return false;
  return entry_id::parse(first.elements[0].text) == id;
}

}  // namespace river::redis::detail
