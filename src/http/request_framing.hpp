#pragma once

// The checks a request's head must pass before its body is read (RFC 9112): framing that two
// parsers could read two ways is how a request is smuggled inside another, so it is refused
// rather than guessed at.

#include <boost/beast/http/message.hpp>

#include <optional>
#include <string_view>

namespace river::http::detail {

/// Why a request head must be refused with 400 and its connection closed; `std::nullopt` when it
/// is sound. `raw_head` is the head as received, up to and including its blank line; `head` is
/// the same head as Beast's parser read it.
///
/// Refused: a `Transfer-Encoding` whose codings are anything but exactly `chunked` (the server
/// decodes no other), one in an HTTP/1.0 request, one beside a `Content-Length`; a field line
/// folded onto the next (obs-fold, which Beast's parser joins silently); an HTTP/1.1 request
/// without a `Host`, or with more than one.
std::optional<std::string_view> framing_problem(std::string_view raw_head,
                                                const boost::beast::http::request_header<>& head);

}  // namespace river::http::detail
