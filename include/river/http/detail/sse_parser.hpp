#pragma once

// A sans-I/O parser of the `text/event-stream` format (HTML Living Standard, "Server-sent
// events", section "Parsing an event stream"): bytes in; messages, id-only messages and comments
// out, or a request for more bytes.

#include <river/http/client_error.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace river::http::detail {

/// What `sse_parser::next` found.
enum class sse_item {
  need_more,  ///< no complete item in the bytes fed so far
  message,    ///< a message with data: `data()`, `event_type()`, `last_event_id()`
  id,         ///< a message without data that set the last event ID: `last_event_id()`
  comment,    ///< a comment line: `comment()`
};

/// Parses an event stream fed in pieces of any size.
///
/// Line ends may be LF, CRLF or CR, a CRLF may be split between two pieces, and a leading UTF-8
/// byte order mark is skipped. A message is dispatched at its blank line: its `data` lines are
/// joined with LF, its `id` field (one without NUL) becomes the last event ID, `retry` fields of
/// digits set `retry()`, and other fields are ignored. A message without data dispatches nothing
/// by the standard; this parser reports it as `sse_item::id` when it set the last event ID,
/// since River sends positions that way. Bytes after the last blank line are never dispatched.
///
/// Memory is bounded: a message (its data and event type so far, plus the line being read) larger
/// than `max_message_size` fails with `client_errc::event_too_large`, and the parser stays failed.
class sse_parser {
 public:
  static constexpr std::size_t default_max_message_size = std::size_t{1} << 20;

  explicit sse_parser(std::size_t max_message_size = default_max_message_size) noexcept : max_(max_message_size) {}

  /// Appends bytes of the stream. Feed no more than a read buffer at a time, then call `next`
  /// until it needs more: only the unparsed bytes are kept.
  void feed(std::string_view bytes) {
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = scan_ = 0;
    } else if (pos_ > buf_.size() / 2) {
      buf_.erase(0, pos_);
      scan_ = scan_ > pos_ ? scan_ - pos_ : 0;
      pos_ = 0;
    }
    buf_.append(bytes.data(), bytes.size());
  }

  /// Parses the next item from the bytes fed so far. The accessors for that item stay valid until
  /// the next call of `next`, `feed` or `reset`.
  sse_item next(error_code& ec) {
    ec = {};
    if (failed_) {
      ec = client_errc::event_too_large;
      return sse_item::need_more;
    }
    for (;;) {
      if (skip_lf_) {
        if (pos_ == buf_.size()) return need_more(ec);
        if (buf_[pos_] == '\n') ++pos_;
        skip_lf_ = false;
      }
      if (at_start_) {
        constexpr std::string_view bom = "\xEF\xBB\xBF";
        std::string_view rest(buf_.data() + pos_, buf_.size() - pos_);
        auto n = std::min(rest.size(), bom.size());
        if (rest.substr(0, n) != bom.substr(0, n)) {
          at_start_ = false;
        } else if (n == bom.size()) {
          pos_ += n;
          at_start_ = false;
        } else {
          return sse_item::need_more;  // a part of the mark belongs to no message: no bound applies
        }
      }
      auto eol = buf_.find_first_of("\r\n", std::max(scan_, pos_));
      if (eol == std::string::npos) {
        scan_ = buf_.size();
        return need_more(ec);
      }
      std::string_view line(buf_.data() + pos_, eol - pos_);
      skip_lf_ = buf_[eol] == '\r';
      pos_ = scan_ = eol + 1;
      // The same bound as while the line was arriving, so that it fails wherever the input was split.
      if (data_.size() + event_.size() + line.size() > max_) return fail(ec);

      if (line.empty()) {
        if (auto item = dispatch(); item != sse_item::need_more) return item;
        continue;
      }
      if (line.front() == ':') {
        comment_ = line.substr(1);
        return sse_item::comment;
      }
      auto colon = line.find(':');
      std::string_view field = line.substr(0, colon);
      std::string_view value;
      if (colon != std::string_view::npos) {
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      }
      if (field == "data") {
        data_.append(value.data(), value.size());
        data_.push_back('\n');
      } else if (field == "event") {
        event_.assign(value.data(), value.size());
      } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) {
          id_buffer_.assign(value.data(), value.size());
          message_has_id_ = true;
        }
      } else if (field == "retry") {
        read_retry(value);
      }
      if (data_.size() + event_.size() > max_) return fail(ec);
    }
  }

  /// Starts a new stream (a new connection): unparsed bytes and the message being read are
  /// dropped; the last event ID and `retry()` stay, as an `EventSource` keeps them across
  /// reconnections.
  void reset() noexcept {
    buf_.clear();
    pos_ = scan_ = 0;
    skip_lf_ = false;
    at_start_ = true;
    failed_ = false;
    data_.clear();
    event_.clear();
    id_buffer_ = last_event_id_;
    message_has_id_ = false;
  }

  /// The data of the message just parsed, its lines joined with LF.
  const std::string& data() const noexcept { return out_data_; }
  /// The event type of the message just parsed; empty means the default, "message".
  const std::string& event_type() const noexcept { return out_event_; }
  /// The last event ID, as set by the messages dispatched so far (empty when none set one).
  const std::string& last_event_id() const noexcept { return last_event_id_; }
  /// Whether the message just parsed had an `id` field of its own.
  bool message_had_id() const noexcept { return out_had_id_; }
  /// The text of the comment just parsed, everything after its colon.
  std::string_view comment() const noexcept { return comment_; }
  /// The reconnection time, in milliseconds, from the last valid `retry` field.
  std::optional<std::uint64_t> retry() const noexcept { return retry_; }
  /// Bytes fed but not parsed yet.
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }

 private:
  sse_item need_more(error_code& ec) {
    if (data_.size() + event_.size() + (buf_.size() - pos_) > max_) return fail(ec);
    return sse_item::need_more;
  }

  sse_item fail(error_code& ec) {
    failed_ = true;
    ec = client_errc::event_too_large;
    return sse_item::need_more;
  }

  // The blank line that ends a message.
  sse_item dispatch() {
    last_event_id_ = id_buffer_;
    out_had_id_ = message_has_id_;
    message_has_id_ = false;
    if (data_.empty()) {
      event_.clear();
      return out_had_id_ ? sse_item::id : sse_item::need_more;
    }
    data_.pop_back();  // the LF after the last data line
    out_data_.swap(data_);
    out_event_.swap(event_);
    data_.clear();
    event_.clear();
    return sse_item::message;
  }

  void read_retry(std::string_view value) {
    if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos) return;
    constexpr auto limit = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t v = 0;
    for (char c : value) {
      auto digit = static_cast<std::uint64_t>(c - '0');
      v = v > (limit - digit) / 10 ? limit : v * 10 + digit;
    }
    retry_ = v;
  }

  std::size_t max_;
  std::string buf_;
  std::size_t pos_ = 0;   // first unparsed byte
  std::size_t scan_ = 0;  // bytes before it hold no line end (spares rescanning a long line)
  bool skip_lf_ = false;  // the last line ended with CR: an LF right after it belongs to it
  bool at_start_ = true;  // a byte order mark may still come
  bool failed_ = false;
  std::string data_, event_, id_buffer_;
  bool message_has_id_ = false;
  std::string out_data_, out_event_, last_event_id_;
  bool out_had_id_ = false;
  std::string_view comment_;
  std::optional<std::uint64_t> retry_;
};

}  // namespace river::http::detail
