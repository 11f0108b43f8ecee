#pragma once

#include <river/detail/stream_entry.hpp>
#include <river/memory/provider.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace river {

/// Maps names to streams, for the HTTP adapter and the in-process caller.
///
/// Copies share their streams. Build the router first, then hand it to a caller or a server,
/// which keep their own copy.
class router {
 public:
  /// Adds a stream under `name`.
  /// \throws std::invalid_argument for an empty or duplicate name, or a stream without runner.
  template <class Input, class Chunk>
  router& add(std::string name, stream<Input, Chunk> s) {
    if (name.empty()) throw std::invalid_argument("river::router: a stream name must not be empty");
    if (streams_.contains(name))
      throw std::invalid_argument("river::router: a stream named '" + name + "' already exists");
    if (!s.get_runner())
      throw std::invalid_argument("river::router: the stream '" + name + "' has no runner");
    auto p = s.get_provider() ? s.get_provider() : default_provider();
    streams_.emplace(std::move(name),
                     std::make_shared<detail::typed_stream_entry<Input, Chunk>>(std::move(p), s.get_runner()));
    return *this;
  }

  /// The stream of that name, or nullptr.
  const detail::stream_entry* find(std::string_view name) const noexcept {
    auto it = streams_.find(name);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, _] : streams_) out.push_back(name);
    return out;
  }

  std::size_t size() const noexcept { return streams_.size(); }

  /// The providers of the router's streams, each once.
  std::vector<std::shared_ptr<provider>> providers() const {
    std::vector<std::shared_ptr<provider>> out;
    for (const auto& [_, entry] : streams_) {
      const auto& p = entry->get_provider();
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
    return out;
  }

  /// The in-memory provider that streams without their own provider use.
  const std::shared_ptr<provider>& default_provider() {
    if (!default_provider_) default_provider_ = std::make_shared<memory::provider>();
    return default_provider_;
  }

 private:
  std::map<std::string, std::shared_ptr<const detail::stream_entry>, std::less<>> streams_;
  std::shared_ptr<provider> default_provider_;
};

}  // namespace river
