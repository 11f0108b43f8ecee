#pragma once

#include <string_view>

namespace river {

/// A chunk that is already JSON text, appended as it is: `co_await ctx.append(river::json_text(s))`
/// stores `s` after a validity check (JSON grammar and UTF-8), without a round trip through a JSON
/// library, so large chunks produced elsewhere (a model's raw answer, a cache) cost one copy. Text
/// that is not valid JSON is refused with `errc::invalid_chunk` and nothing is stored.
///
/// It views the text: keep the text alive until the `append` completes.
class json_text {
 public:
  constexpr explicit json_text(std::string_view text) noexcept : text_(text) {}
  constexpr std::string_view text() const noexcept { return text_; }

 private:
  std::string_view text_;
};

}  // namespace river
