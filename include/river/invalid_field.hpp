#pragma once

#include <stdexcept>
#include <string>

namespace river {

/// Rejects an input value, naming its field: throw it from an input type's `from_json` (or from
/// any conversion it calls) for checks nlohmann_json cannot make itself, such as ranges.
///
/// ```
/// void from_json(const nlohmann::json& j, ask& in) {
///   j.at("question").get_to(in.question);
///   if (in.question.empty()) throw river::invalid_field("question", "must not be empty");
/// }
/// ```
///
/// The start is refused as any invalid input is: `errc::invalid_input`, HTTP 400, error type
/// "validation", context `{"field": "question", "reason": "must not be empty"}`. Thrown from the
/// `from_json` of a member of a described input type, the field is prefixed with the member's path
/// (`opts.question`). An empty `field` names the input itself.
class invalid_field : public std::invalid_argument {
 public:
  invalid_field(std::string field, std::string reason)
      : std::invalid_argument(field.empty() ? reason : "'" + field + "' " + reason),
        field_(std::move(field)),
        reason_(std::move(reason)) {}

  /// The field's name or path ("" for the input itself).
  const std::string& field() const noexcept { return field_; }
  /// What is wrong with it.
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string field_, reason_;
};

}  // namespace river
