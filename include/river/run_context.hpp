#pragma once

#include <river/detail/json_text.hpp>
#include <river/detail/run_core.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace river {

/// What a runner receives: its input, who it is, and the operations that write its run's log.
///
/// Every operation completes when the provider has stored the event (for Redis: when Redis
/// acknowledged it), so a runner is paced by its provider and never by its readers.
///
/// Exceptions: the operations throw `boost::system::system_error`: `errc::run_closed` once the
/// terminal event is written (after `close`, `fail` or a cancel), nothing being stored, or the
/// provider's error. A runner that lets one escape ends with a `stream_fatal_error`, unless the
/// run already ended.
///
/// Thread safety: use the context from the runner's coroutine (it runs on `get_executor()`).
template <class Input, class Chunk>
class run_context {
 public:
  using input_type = Input;
  using chunk_type = Chunk;
  using executor_type = detail::run_core::strand_type;

  run_context(std::shared_ptr<detail::run_core> core, Input input)
      : core_(std::move(core)), input_(std::move(input)) {}

  /// The validated input.
  const Input& input() const noexcept { return input_; }
  /// The run's id (random, unguessable).
  const std::string& run_id() const noexcept { return core_->run_id(); }
  /// The provider's storage namespace.
  const std::string& storage_id() const noexcept { return core_->storage_id(); }
  /// The stream's name in the router.
  const std::string& stream_name() const noexcept { return core_->stream_name(); }
  /// Headers of the request that started the run; empty for runs started in process.
  const request_metadata& metadata() const noexcept { return core_->metadata(); }
  /// True once a cancel was requested. Waits in the runner are cancelled then too (terminal
  /// cancellation of the runner's coroutine), so most runners need not poll this.
  bool cancelled() const noexcept { return core_->cancel_requested(); }
  /// True once the terminal event is written: every later append is refused.
  bool closed() const noexcept { return core_->closed(); }
  /// The run's strand, on which the runner executes.
  executor_type get_executor() const noexcept { return core_->strand(); }

  /// Appends a chunk event.
  asio::awaitable<void> append(const Chunk& chunk) {
    std::string json(R"({"type":"chunk","chunk":)");
    if constexpr (std::is_same_v<Chunk, nlohmann::json>)
      detail::append_json_value(json, chunk);
    else if constexpr (std::is_convertible_v<const Chunk&, std::string_view>)
      detail::append_json_string(json, std::string_view(chunk));
    else
      detail::append_json_value(json, nlohmann::json(chunk));
    json.push_back('}');
    return core_->append(std::move(json), event_kind::chunk);
  }

  /// Appends a `stream_error` event: a failure the run survives.
  asio::awaitable<void> append_error(river::error e) {
    return core_->append(to_json_text(event{events::error{std::move(e)}, {}}), event_kind::error);
  }

  /// Appends a `stream_fatal_error` event, which ends the run.
  asio::awaitable<void> fail(river::error e) {
    return core_->append(to_json_text(event{events::fatal_error{std::move(e)}, {}}), event_kind::fatal_error);
  }

  /// Appends the `stream_end` event, which ends the run. A runner that returns without a
  /// terminal event gets this one.
  asio::awaitable<void> close() { return core_->append(core_->end_json(), event_kind::end); }

 private:
  std::shared_ptr<detail::run_core> core_;
  Input input_;
};

}  // namespace river
