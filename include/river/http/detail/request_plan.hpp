#pragma once

// What a request to the River endpoint asks for, decided without I/O: the pure half of the
// handler (the other half, handler.cpp, does it). Tested request by request, field by field.

#include <river/error.hpp>
#include <river/http/handler.hpp>
#include <river/read_from.hpp>

#include <optional>
#include <string>
#include <variant>

namespace river::http::detail {

/// A complete answer that needs no run: an error (its body is the error's JSON), or the `204`
/// of a CORS preflight.
struct answer {
  unsigned status = 204;
  std::optional<river::error> error;
  std::string fields;  ///< further header fields, each `Name: value\r\n`
};

/// `POST`: start a run of `stream` with `input`.
struct start_run {
  std::string stream;
  nlohmann::json input;
};

/// `GET`: resume the run of `token` from `from`.
struct resume_run {
  std::string token;
  read_from from;
};

/// `DELETE`: cancel the run of `token`.
struct cancel_run {
  std::string token;
};

using request_plan = std::variant<answer, start_run, resume_run, cancel_run>;

/// What `req` asks of the endpoint configured by `opts` (docs/protocol.md sections 1 to 3a):
/// malformed targets, other paths, other methods, bad content types, bodies over the limit or
/// not JSON, missing keys, are answers (errors); the rest is a run to start, resume or cancel.
request_plan plan_request(const request& req, const handler_options& opts);

/// The CORS header fields for `req`'s origin (`Access-Control-Allow-Origin`, `Vary`), empty when
/// CORS does not apply to it.
std::string cors_fields(const request& req, const handler_options& opts);

/// The client `req` comes from, for the per-client limits: `opts.client_address` when set, else
/// the peer address, an IPv6 one by its /64 prefix (a user typically holds a whole /64).
std::string client_of(const request& req, std::string_view peer, const handler_options& opts);

}  // namespace river::http::detail
