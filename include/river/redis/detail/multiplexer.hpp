#pragma once

// The sans-I/O core of a pipelined connection: requests in, bytes to write out, bytes read in,
// replies matched to their requests in order. No socket, no executor: the connection drives it,
// and tests feed it replies split at every byte.
//
// A request moves from waiting (its bytes queued) to in flight (its bytes handed out in a write)
// to done (all its replies arrived). On a connection that subscribed to pub/sub channels, a
// message pushed by the server (`smessage`, `message`, `pmessage`) is not a reply: it is handed
// out as a push, whatever is in flight; so is an `sunsubscribe` that no request in flight
// asked for (Redis Cluster sends one when the channel's slot moves to another node).

#include <river/redis/detail/resp.hpp>
#include <river/redis/request.hpp>
#include <river/redis/value.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace river::redis::detail {

/// A request as the multiplexer tracks it. Owned by the caller, which keeps it alive until the
/// multiplexer hands it back (done, or taken by `reset`).
struct mux_entry {
  std::size_t expected = 0;  ///< replies the request gets
  response replies;          ///< those that arrived
  std::chrono::steady_clock::time_point queued_at{};   ///< when it was added
  std::chrono::steady_clock::time_point written_at{};  ///< when its bytes were handed out
  /// On a connection that tells pushes: the channels the request unsubscribes from whose
  /// confirmation has not arrived yet.
  std::vector<std::string> unsubscribing;
};

class multiplexer {
 public:
  using clock = std::chrono::steady_clock;

  /// `max_read_buffer` bounds the bytes held for a reply that has not fully arrived.
  explicit multiplexer(std::size_t max_read_buffer = std::size_t{64} << 20);

  /// How `add` takes a request's bytes: copied into the multiplexer's buffer, or written from
  /// the request itself, which must then stay unchanged until its entry is done or reset (a
  /// caller with one request in flight that it keeps saves a copy of every byte).
  enum class bytes { copied, referenced };

  /// Queues `req`'s bytes and its entry. A request that expects no reply is done at once and not
  /// queued: returns false then.
  bool add(const request& req, mux_entry& e, clock::time_point now = clock::now(), bytes how = bytes::copied);

  /// Whether bytes wait to be written.
  bool has_pending_write() const noexcept { return !waiting_.empty(); }

  /// Hands out every waiting byte for one (gathering) write, in order: copied bytes in runs of
  /// the multiplexer's buffer, referenced ones where they are; their requests are in flight from
  /// now. The pieces stay valid until the next `prepare_write` or `reset`.
  std::span<const std::string_view> prepare_write(clock::time_point now = clock::now());

  /// Received bytes. Fails with `error::read_buffer_exceeded`; the multiplexer must be reset then.
  error_code feed(const char* data, std::size_t size);

  /// What `next` found.
  struct event {
    enum class kind { none, done, push } type = kind::none;
    mux_entry* entry = nullptr;  ///< done: the request whose replies all arrived
    value message;               ///< push: the message
  };

  /// The next request done or message pushed, or `kind::none` when more bytes are needed.
  /// Fails with `error::protocol_error` for bytes that are not RESP, or for a reply that no
  /// request in flight waits for; the multiplexer must be reset then.
  error_code next(event& out);

  /// Whether pushed messages are told from replies (set on connections that subscribe).
  void detect_pushes(bool on) noexcept { detect_pushes_ = on; }

  /// The request in flight the longest, or null.
  const mux_entry* oldest_in_flight() const noexcept { return in_flight_.empty() ? nullptr : in_flight_.front(); }
  /// The request waiting the longest, or null.
  const mux_entry* oldest_waiting() const noexcept { return waiting_.empty() ? nullptr : waiting_.front().entry; }

  /// Takes the waiting requests queued before `cutoff` (their bytes are dropped with them).
  std::deque<mux_entry*> expire_waiting(clock::time_point cutoff);
  std::size_t waiting() const noexcept { return waiting_.size(); }
  std::size_t in_flight() const noexcept { return in_flight_.size(); }

  /// Ends a connection: returns the requests in flight and those waiting (in that order, to be
  /// failed by the caller) and starts over with empty buffers and a fresh parser.
  std::deque<mux_entry*> reset_in_flight();
  std::deque<mux_entry*> reset_waiting();

 private:
  bool is_push(const value& v) const;

  std::size_t max_read_buffer_;
  reply_parser parser_;
  // A request not written yet: its bytes are `referenced`, or the next `size` of `waiting_bytes_`.
  struct waiting_request {
    mux_entry* entry;
    std::string_view referenced;
    std::size_t size;
  };
  std::vector<waiting_request> waiting_;
  std::deque<mux_entry*> in_flight_;
  std::string waiting_bytes_, writing_bytes_;
  std::vector<std::string_view> pieces_;  // of the last `prepare_write`
  bool detect_pushes_ = false;
};

}  // namespace river::redis::detail
