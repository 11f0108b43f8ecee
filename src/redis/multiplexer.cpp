// The sans-I/O multiplexer of a pipelined Redis connection (detail/multiplexer.hpp).

#include <river/redis/detail/multiplexer.hpp>

#include <river/redis/detail/command_units.hpp>
#include <river/redis/error.hpp>

#include <algorithm>

namespace river::redis::detail {

multiplexer::multiplexer(std::size_t max_read_buffer) : max_read_buffer_(max_read_buffer), parser_(max_read_buffer) {}

bool multiplexer::add(const request& req, mux_entry& e, clock::time_point now) {
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
  waiting_bytes_.append(req.payload());
  waiting_sizes_.push_back(req.payload().size());
  waiting_.push_back(&e);
  return true;
}

std::deque<mux_entry*> multiplexer::expire_waiting(clock::time_point cutoff) {
  std::deque<mux_entry*> taken;
  std::size_t bytes = 0;
  while (!waiting_.empty() && waiting_.front()->queued_at < cutoff) {
    taken.push_back(waiting_.front());
    waiting_.pop_front();
    bytes += waiting_sizes_.front();
    waiting_sizes_.pop_front();
  }
  waiting_bytes_.erase(0, bytes);
  return taken;
}

std::string_view multiplexer::prepare_write(clock::time_point now) {
  // The write buffer of the previous write is done with: reuse it for this one.
  writing_bytes_.clear();
  writing_bytes_.swap(waiting_bytes_);
  for (auto* e : waiting_) {
    e->written_at = now;
    in_flight_.push_back(e);
  }
  waiting_.clear();
  waiting_sizes_.clear();
  return writing_bytes_;
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
  parser_ = reply_parser(max_read_buffer_);
  return taken;
}

std::deque<mux_entry*> multiplexer::reset_waiting() {
  std::deque<mux_entry*> taken;
  taken.swap(waiting_);
  waiting_bytes_.clear();
  waiting_sizes_.clear();
  return taken;
}

}  // namespace river::redis::detail
