#pragma once

// The chat demo's fake model: the same message always gets the same answer, a few sentences
// picked by a hash of the message, split into word tokens (each with its following space).
// A header of its own so that tests can compute the exact answer a run must deliver.

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace chat_demo {

inline std::vector<std::string> fake_answer(std::string_view message) {
  static constexpr std::string_view sentences[] = {
      "Rivers keep flowing whether or not anyone watches them.",
      "Every token of this answer is stored before it is sent, so nothing is lost.",
      "Reload the page in the middle and the answer goes on from where it was.",
      "A run belongs to the server, not to the connection that started it.",
      "Positions travel as SSE ids, so a browser can resume by itself.",
      "This model is fake, but the durability is real.",
      "Slow readers never slow the writer or the other readers.",
      "Heartbeats keep proxies from closing an idle stream.",
  };
  constexpr std::size_t count = std::size(sentences);
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : message) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  std::string text = "You said: \"";
  text.append(message.substr(0, 200));
  text.append("\". ");
  for (std::uint64_t i = 1; i <= 4; ++i) {
    text.append(sentences[h % count]);
    text.push_back(' ');
    h = h / count + std::uint64_t{0x9e3779b97f4a7c15} * i;
  }
  text.append("That is all.");
  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(' ', start);
    end = end == std::string::npos ? text.size() : end + 1;
    tokens.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return tokens;
}

}  // namespace chat_demo
