#pragma once

#include <river/config.hpp>

#include <boost/container/small_vector.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace river::redis {

/// One RESP2 reply, decoded into plain C++ values.
struct value {
  enum class kind {
    nil,      ///< a null bulk string or null array
    string,   ///< a bulk string (`text`)
    status,   ///< a simple string such as `OK` (`text`)
    error,    ///< an error reply (`text` holds its message, e.g. "WRONGTYPE Operation ...")
    integer,  ///< an integer (`integer`)
    array,    ///< an array (`elements`)
  };

  kind type = kind::nil;
  std::string text;
  std::int64_t integer = 0;
  std::vector<value> elements;

  bool is_nil() const noexcept { return type == kind::nil; }
  bool is_error() const noexcept { return type == kind::error; }
  bool is_array() const noexcept { return type == kind::array; }
  /// True for bulk and simple strings.
  bool is_text() const noexcept { return type == kind::string || type == kind::status; }

  friend bool operator==(const value&, const value&) = default;
};

/// The replies to one request, in order. Small requests keep them inline.
using response = boost::container::small_vector<value, 2>;

/// A readable rendering of a reply, for messages and test output (`"OK"`, `(nil)`, `[1, "a"]`).
std::string to_string(const value& v);

}  // namespace river::redis
