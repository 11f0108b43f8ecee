#pragma once

// Input validation: decoding the input into the stream's input type is the validation, and the
// error names the offending field. nlohmann_json names a missing key but not a mistyped one, so
// for types described with Boost.Describe every member is checked by name first.
//
// nlohmann_json converts a number to an integer type with a cast: a float outside the type's
// range is undefined behaviour, an integer outside it wraps around. Client input must do neither,
// so a number meant for an integer (a member, an optional one, the elements of a vector of them,
// or the input itself) is refused unless the type holds it.

#include <river/error.hpp>
#include <river/invalid_field.hpp>

#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace river::detail {

template <class T>
concept json_decodable = requires(const nlohmann::json& j) { j.template get<T>(); };

inline std::string strip_json_exception_prefix(const char* what) {
  // "[json.exception.type_error.302] type must be string, but is number" -> the text after "] "
  std::string s(what);
  if (auto p = s.find("] "); p != std::string::npos && s.rfind("[json.exception.", 0) == 0) s.erase(0, p + 2);
  return s;
}

inline std::string join_field(const std::string& path, const std::string& field) {
  if (path.empty()) return field;
  if (field.empty()) return path;
  return path + "." + field;
}

inline error input_field_error(const std::string& field, std::string reason) {
  std::string msg = field.empty() ? "Invalid input: " + reason : "Invalid input field '" + field + "': " + reason;
  return error::from_code(errc::invalid_input, std::move(msg), {{"field", field}, {"reason", std::move(reason)}});
}

template <class T>
struct is_optional_member : std::false_type {};
template <class T>
struct is_optional_member<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector_member : std::false_type {};
template <class T, class A>
struct is_vector_member<std::vector<T, A>> : std::true_type {};

/// Why the number `j` cannot become an `Int`, or nothing when it can (or is no number).
template <class Int>
std::optional<std::string> integer_range_error(const nlohmann::json& j) {
  using limits = std::numeric_limits<Int>;
  bool fits = true;
  if (j.is_number_unsigned()) {
    fits = j.get<std::uint64_t>() <= static_cast<std::uint64_t>(limits::max());
  } else if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    if constexpr (std::is_signed_v<Int>)
      fits = v >= static_cast<std::int64_t>(limits::min()) && v <= static_cast<std::int64_t>(limits::max());
    else
      fits = v >= 0 && static_cast<std::uint64_t>(v) <= static_cast<std::uint64_t>(limits::max());
  } else if (j.is_number_float()) {
    // Truncation toward zero must land in [min, max]: below 2^digits, exactly a power of two.
    const auto v = j.get<double>();
    const double bound = 2.0 * static_cast<double>(std::uint64_t{1} << (limits::digits - 1));
    fits = std::is_signed_v<Int> ? v >= -bound && v < bound : v > -1.0 && v < bound;
  }
  if (fits) return std::nullopt;
  return "must be a number from " + std::to_string(limits::min()) + " to " + std::to_string(limits::max()) +
         ", but is " + j.dump();
}

/// The same for a member of type `M`: integers, optional ones, vectors of them.
template <class M>
std::optional<std::string> number_range_error(const nlohmann::json& j) {
  if constexpr (std::is_integral_v<M> && !std::is_same_v<M, bool>) {
    return integer_range_error<M>(j);
  } else if constexpr (is_optional_member<M>::value) {
    if (!j.is_null()) return number_range_error<typename M::value_type>(j);
  } else if constexpr (is_vector_member<M>::value) {
    if (j.is_array())
      for (const auto& e : j)
        if (auto reason = number_range_error<typename M::value_type>(e)) return reason;
  }
  return std::nullopt;
}

template <class T>
std::optional<error> check_described_members(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object())
    return input_field_error(path, std::string("must be an object, but is ") + j.type_name());
  std::optional<error> found;
  boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto member) {
    if (found) return;
    using M = std::remove_cvref_t<decltype(std::declval<T&>().*member.pointer)>;
    auto it = j.find(member.name);
    if (it == j.end()) return;  // whether it may be missing is the type's own from_json's call
    const std::string field = path.empty() ? std::string(member.name) : path + "." + member.name;
    if constexpr (boost::describe::has_describe_members<M>::value) {
      found = check_described_members<M>(*it, field);
    } else {
      if (auto reason = number_range_error<M>(*it)) {
        found = input_field_error(field, std::move(*reason));
        return;
      }
      if constexpr (json_decodable<M>) {
        try {
          (void)it->template get<M>();
        } catch (const invalid_field& e) {
          found = input_field_error(join_field(field, e.field()), e.reason());
        } catch (const nlohmann::json::exception& e) {
          found = input_field_error(field, strip_json_exception_prefix(e.what()));
        } catch (const std::exception& e) {
          found = input_field_error(field, e.what());
        }
      }
    }
  });
  return found;
}

/// Decodes `j` into `Input`; failures are `errc::invalid_input` errors of type "validation" whose
/// context names the field (`{"field": "message", "reason": "..."}`; "" for the input itself).
template <class Input>
result<Input> decode_input(const nlohmann::json& j) {
  if constexpr (std::is_same_v<Input, nlohmann::json>) {
    return j;
  } else {
    if constexpr (boost::describe::has_describe_members<Input>::value) {
      if (auto e = check_described_members<Input>(j, "")) return std::move(*e);
    }
    if (auto reason = number_range_error<Input>(j)) return input_field_error("", std::move(*reason));
    try {
      return j.template get<Input>();
    } catch (const invalid_field& e) {
      return input_field_error(e.field(), e.reason());
    } catch (const nlohmann::json::exception& e) {
      if (std::is_class_v<Input> && !j.is_object())
        return input_field_error("", std::string("must be a JSON object, but is ") + j.type_name());
      std::string reason = strip_json_exception_prefix(e.what());
      // out_of_range.403: "key 'message' not found"
      if (e.id == 403) {
        auto open = reason.find('\''), close = reason.rfind('\'');
        if (open != std::string::npos && close > open)
          return input_field_error(reason.substr(open + 1, close - open - 1), "is missing");
      }
      return input_field_error("", std::move(reason));
    } catch (const std::exception& e) {
      // A from_json that validates by throwing its own exception.
      return input_field_error("", e.what());
    }
  }
}

}  // namespace river::detail
