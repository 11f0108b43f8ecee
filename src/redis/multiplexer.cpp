// The sans-I/O multiplexer of a pipelined Redis connection (detail/multiplexer.hpp).

#include <river/redis/detail/multiplexer.hpp>

#include <river/redis/detail/command_units.hpp>
#include <river/redis/error.hpp>

#include <algorithm>

namespace river::redis::detail {

multiplexer::multiplexer(std::size_t max_read_buffer) : max_read_buffer_(max_read_buffer), parser_(max_read_buffer) {}

bool multiplexer::add(const request& req, mux_entry& e, clock::time_point now, bytes how) {
  e.expected = req.expected_replies();
  e.replies.clear();
  e.queued_at = now;
  e.unsubscribing.clear();
  if (e.expected == 0) return false;
  e.replies.reserve(e.expected);  // a batch's replies without a reallocation per doubling
  if (detect_pushes_) {
    // Its unsubscribe confirmations are replies; others the server sends by itself are pushes.
    std::size_t pos = 0;
    command_view cmd;
    while (next_command(req.payload(), pos, cmd))
      if (command_is(cmd.args[0], "SUNSUBSCRIBE") || command_is(cmd.args[0], "UNSUBSCRIBE"))
        e.unsubscribing.insert(e.unsubscribing.end(), cmd.args.begin() + 1, cmd.args.end());
  }
  if (how == bytes::referenced) {
    waiting_.push_back(waiting_request{&e, req.payload(), 0});
  } else {
    waiting_bytes_.append(req.payload());
    waiting_.push_back(waiting_request{&e, {}, req.payload().size()});
  }
  return true;
}

std::deque<mux_entry*> multiplexer::expire_waiting(clock::time_point cutoff) {
  std::deque<mux_entry*> taken;
  std::size_t n = 0, copied = 0;
  for (; n < waiting_.size() && waiting_[n].entry->queued_at < cutoff; ++n) {
    taken.push_back(waiting_[n].entry);
    copied += waiting_[n].size;
  }
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
  waiting_bytes_.erase(0, copied);
  return taken;
}

std::span<const std::string_view> multiplexer::prepare_write(clock::time_point now) {
  // The write buffer of the previous write is done with: reuse it for this one.
  writing_bytes_.clear();
  writing_bytes_.swap(waiting_bytes_);
  pieces_.clear();
  std::size_t at = 0;
  for (const auto& w : waiting_) {
    w.entry->written_at = now;
    in_flight_.push_back(w.entry);
    const auto piece = w.size > 0 ? std::string_view(writing_bytes_.data() + at, w.size) : w.referenced;
    at += w.size;
    // Bytes that follow the previous piece in memory join it: copied requests make one piece.
    if (!pieces_.empty() && pieces_.back().data() + pieces_.back().size() == piece.data())
      pieces_.back() = std::string_view(pieces_.back().data(), pieces_.back().size() + piece.size());
    else
      pieces_.push_back(piece);
  }
  waiting_.clear();
  return pieces_;
}

error_code multiplexer::feed(const char* data, std::size_t size) { return parser_.feed(data, size); }

bool multiplexer::is_push(const value& v) const {
  if (!detect_pushes_ || !v.is_array() || v.elements.empty() || !v.elements[0].is_text()) return false;
  const auto& kind = v.elements[0].text;
  if (kind == "smessage" || kind == "message" || kind == "pmessage") return true;
  if ((kind != "sunsubscribe" && kind != "unsubscribe") || v.elements.size() < 2) return false;
  // A confirmation the request in flight waits for, or the server's own notice.
  if (in_flight_.empty()) return true;
  const auto& waiting = in_flight_.front()->unsubscribing;
  return std::find(waiting.begin(), waiting.end(), v.elements[1].text) == waiting.end();
}

error_code multiplexer::next(event& out) {
  out.type = event::kind::none;
  out.entry = nullptr;
  for (;;) {
    std::optional<value> reply;
    if (auto ec = parser_.next(reply)) return ec;
    if (!reply) return {};
    if (is_push(*reply)) {
      out.type = event::kind::push;
      out.message = std::move(*reply);
      return {};
    }
    if (in_flight_.empty()) return error::protocol_error;  // a reply nobody asked for
    auto* e = in_flight_.front();
    if (!e->unsubscribing.empty() && reply->is_array() && reply->elements.size() >= 2) {
      auto& waiting = e->unsubscribing;
      if (auto it = std::find(waiting.begin(), waiting.end(), reply->elements[1].text); it != waiting.end()) waiting.erase(it);
    }
    e->replies.push_back(std::move(*reply));
    if (e->replies.size() == e->expected) {
      in_flight_.pop_front();
      out.type = event::kind::done;
      out.entry = e;
      return {};
    }
  }
}

std::deque<mux_entry*> multiplexer::reset_in_flight() {
  std::deque<mux_entry*> taken;
  taken.swap(in_flight_);
  writing_bytes_.clear();
  pieces_.clear();
  parser_ = reply_parser(max_read_buffer_);
  return taken;
}

std::deque<mux_entry*> multiplexer::reset_waiting() {
  std::deque<mux_entry*> taken;
  for (const auto& w : waiting_) taken.push_back(w.entry);
  waiting_.clear();
  waiting_bytes_.clear();
  return taken;
}

}  // namespace river::redis::detail
