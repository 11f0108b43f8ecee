#pragma once

#include <river/detail/stream_entry.hpp>
#include <river/memory/provider.hpp>
#include <river/resume_token.hpp>

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
  /// A router whose streams without a provider of their own share an in-memory provider with
  /// the default settings (`memory::config`: 10,000 runs, 256 MiB, 10 minutes of retention).
  router() = default;
  /// A router whose streams without a provider of their own share an in-memory provider with
  /// these settings.
  explicit router(memory::config default_memory) : default_memory_(std::move(default_memory)) {}

  /// Adds a stream under `name`.
  /// \throws std::invalid_argument for an empty or duplicate name, a name so long that the
  /// stream's resumption tokens would pass `max_encoded_token_size`, or a stream without runner.
  template <class Input, class Chunk>
  router& add(std::string name, stream<Input, Chunk> s) {
    if (name.empty()) throw std::invalid_argument("river::router: a stream name must not be empty");
    if (streams_.contains(name))
      throw std::invalid_argument("river::router: a stream named '" + name + "' already exists");
    if (!s.get_runner())
      throw std::invalid_argument("river::router: the stream '" + name + "' has no runner");
    auto p = s.get_provider() ? s.get_provider() : default_provider();
    if (p->resumable() && longest_token(*p, name) > max_encoded_token_size)
      throw std::invalid_argument("river::router: the stream name '" + name.substr(0, 64) +
                                  "...' is too long: its resumption tokens would pass the " +
                                  std::to_string(max_encoded_token_size) + " bytes River decodes");
    streams_.emplace(std::move(name),
                     std::make_shared<detail::typed_stream_entry<Input, Chunk>>(std::move(p), s));
    return *this;
  }

  /// Whether a stream of that name is there.
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

  /// The provider of the stream of that name, or null when there is none.
  std::shared_ptr<provider> provider_of(std::string_view name) const {
    const auto* entry = find(name);
    return entry ? entry->get_provider() : nullptr;
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
    if (!default_provider_) default_provider_ = std::make_shared<memory::provider>(default_memory_);
    return default_provider_;
  }

 private:
  friend class caller;

  // The size of the longest token of a run of this stream: a run id as River makes them (36
  // characters) and room for a signature of up to 128 characters (HMAC-SHA256 takes 43).
  static std::size_t longest_token(const provider& p, const std::string& name) {
    resumption_token t{std::string(p.id()), name, std::string(p.storage_id()), std::string(36, 'r'),
                       std::string(128, 's')};
    return encode_token(t).size();
  }

  const detail::stream_entry* find(std::string_view name) const noexcept {
    auto it = streams_.find(name);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  std::map<std::string, std::shared_ptr<const detail::stream_entry>, std::less<>> streams_;
  memory::config default_memory_;
  std::shared_ptr<provider> default_provider_;
};

}  // namespace river
