#pragma once

#include <river/disconnect_policy.hpp>
#include <river/provider.hpp>
#include <river/run_context.hpp>

#include <functional>
#include <memory>

namespace river {

/// A stream definition: its input and chunk types, a provider and a runner. Built fluently, as
/// in the TypeScript and Python River libraries:
///
/// ```
/// auto chat = river::stream<chat_input, chat_chunk>()
///                 .provider(std::make_shared<river::memory::provider>())
///                 .runner([](auto& ctx) -> asio::awaitable<void> {
///                   chat_chunk chunk{.text = "hello"};  // named, not braced inside co_await (GCC 12)
///                   co_await ctx.append(chunk);
///                 });
/// ```
///
/// `Input` and `Chunk` are types with nlohmann_json conversions. Decoding the input is its
/// validation: a request whose input does not decode never reaches the runner. Describe `Input`
/// with `BOOST_DESCRIBE_STRUCT` and a mistyped field is named in the error too (nlohmann_json
/// alone names only missing ones). `Chunk = nlohmann::json` is the untyped case.
///
/// A stream without a provider uses its router's in-memory provider.
template <class Input, class Chunk = nlohmann::json>
class stream {
 public:
  using input_type = Input;
  using chunk_type = Chunk;
  using context_type = run_context<Input, Chunk>;
  /// The runner: a coroutine that receives the run's context and appends to its log. It runs
  /// detached from whoever started the run: dropping every reader stops it only under the
  /// disconnect policy `cancel_when_unwatched`.
  using runner_type = std::function<asio::awaitable<void>(context_type&)>;

  stream& provider(std::shared_ptr<river::provider> p) & {
    provider_ = std::move(p);
    return *this;
  }
  stream&& provider(std::shared_ptr<river::provider> p) && { return std::move(provider(std::move(p))); }

  stream& runner(runner_type r) & {
    runner_ = std::move(r);
    return *this;
  }
  stream&& runner(runner_type r) && { return std::move(runner(std::move(r))); }

  /// What happens to a run when its readers go away: it goes on (the default) or, with
  /// `disconnect_policy::cancel_when_unwatched(grace)`, it is cancelled once nobody has read it
  /// for the grace period.
  stream& disconnect(disconnect_policy policy) & {
    disconnect_ = policy;
    return *this;
  }
  stream&& disconnect(disconnect_policy policy) && { return std::move(disconnect(policy)); }

  const std::shared_ptr<river::provider>& get_provider() const noexcept { return provider_; }
  const runner_type& get_runner() const noexcept { return runner_; }
  const disconnect_policy& get_disconnect() const noexcept { return disconnect_; }

 private:
  std::shared_ptr<river::provider> provider_;
  runner_type runner_;
  disconnect_policy disconnect_;
};

}  // namespace river
