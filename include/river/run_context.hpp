#pragma once

#include <river/detail/json_validator.hpp>
#include <river/detail/run_core.hpp>
#include <river/json_text.hpp>

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

  /// Appends a chunk event. The chunk is written straight into the run's event buffer (see
  /// `detail::write_json` for how each type is written: types described with
  /// `BOOST_DESCRIBE_STRUCT` member by member, others through their nlohmann_json conversion).
  ///
  /// A runner whose appends complete without suspending (the in-memory provider stores at once)
  /// is suspended after a bounded budget (`caller_options::budget`), so that a tight loop of
  /// appends never starves the readers and runs that share its thread.
  asio::awaitable<void> append(const Chunk& chunk) {
    return core_->append(event_kind::chunk, [&chunk](std::string& out) { detail::append_chunk_event(out, chunk); });
  }

  /// Appends a chunk that is already JSON text, as it is, after checking that it is valid JSON;
  /// text that is not is refused with `errc::invalid_chunk` (thrown) and nothing is stored.
  asio::awaitable<void> append(json_text chunk)
    requires(!std::is_same_v<Chunk, json_text>)
  {
    return append_text(chunk);
  }

  /// Appends a `stream_error` event: a failure the run survives.
  asio::awaitable<void> append_error(river::error e) {
    return core_->append(event_kind::error,
                         [e = std::move(e)](std::string& out) { detail::append_error_event(out, false, e); });
  }

  /// Appends a `stream_fatal_error` event, which ends the run.
  asio::awaitable<void> fail(river::error e) {
    core_->report_failure("the runner failed the run: " + e.message);
    return core_->append(event_kind::fatal_error,
                         [e = std::move(e)](std::string& out) { detail::append_error_event(out, true, e); });
  }

  /// Appends the `stream_end` event, which ends the run. A runner that returns without a
  /// terminal event gets this one.
  asio::awaitable<void> close() {
    return core_->append(event_kind::end, [core = core_.get()](std::string& out) { core->write_end(out); });
  }

 private:
  asio::awaitable<void> append_text(json_text chunk) {
    if (!detail::is_valid_json(chunk.text()))
      throw boost::system::system_error(make_error_code(errc::invalid_chunk),
                                        "The chunk is not valid JSON; nothing was stored");
    co_await core_->append(event_kind::chunk, [chunk](std::string& out) { detail::append_chunk_event(out, chunk); });
  }

  std::shared_ptr<detail::run_core> core_;
  Input input_;
};

}  // namespace river
