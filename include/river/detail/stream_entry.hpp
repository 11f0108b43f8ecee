#pragma once

// The type-erased stream held by a router: it validates JSON input into the stream's input type
// and launches the typed runner on a run.

#include <river/detail/input.hpp>
#include <river/stream.hpp>

#include <boost/asio/this_coro.hpp>

namespace river::detail {

/// A run whose input is decoded, ready to launch.
class prepared_run {
 public:
  virtual ~prepared_run() = default;
  /// Starts the runner on the run's strand, bound to its cancellation slot.
  virtual void launch(std::shared_ptr<run_core> core) = 0;
};

class stream_entry {
 public:
  virtual ~stream_entry() = default;
  virtual const std::shared_ptr<provider>& get_provider() const noexcept = 0;
  virtual const disconnect_policy& disconnect() const noexcept = 0;
  /// Decodes the input: an `errc::invalid_input` error, or a run ready to launch.
  virtual result<std::unique_ptr<prepared_run>> prepare(const nlohmann::json& input) const = 0;
};

template <class Input, class Chunk>
class typed_prepared_run final : public prepared_run {
 public:
  using runner_type = typename stream<Input, Chunk>::runner_type;

  typed_prepared_run(runner_type runner, Input input) : runner_(std::move(runner)), input_(std::move(input)) {}

  void launch(std::shared_ptr<run_core> core) override {
    auto strand = core->strand();
    auto slot = core->runner_slot();
    // The coroutine's cancellation state lives in the run's signal until the coroutine's frame is
    // gone, which happens after this handler returns: release the run from a later handler.
    auto release_later = [keep = core](std::exception_ptr) mutable {
      auto ex = keep->strand();
      asio::post(ex, [k = std::move(keep)] {});
    };
    asio::co_spawn(strand, drive(std::move(core), std::move(runner_), std::move(input_)),
                   asio::bind_cancellation_slot(slot, std::move(release_later)));
  }

 private:
  // The runner and its lambda captures live in this frame for as long as the runner runs.
  static asio::awaitable<void> drive(std::shared_ptr<run_core> core, runner_type runner, Input input) {
    std::exception_ptr escaped;
    {
      run_context<Input, Chunk> ctx(core, std::move(input));
      try {
        co_await runner(ctx);
      } catch (...) {
        escaped = std::current_exception();
      }
    }
    // After a cancel, Asio throws at every co_await of this coroutine; the closing work must run.
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await core->runner_done(escaped);
  }

  runner_type runner_;
  Input input_;
};

template <class Input, class Chunk>
class typed_stream_entry final : public stream_entry {
 public:
  typed_stream_entry(std::shared_ptr<provider> p, const stream<Input, Chunk>& s)
      : provider_(std::move(p)), runner_(s.get_runner()), disconnect_(s.get_disconnect()) {}

  const std::shared_ptr<provider>& get_provider() const noexcept override { return provider_; }
  const disconnect_policy& disconnect() const noexcept override { return disconnect_; }

  result<std::unique_ptr<prepared_run>> prepare(const nlohmann::json& input) const override {
    auto decoded = decode_input<Input>(input);
    if (!decoded) return decoded.error();
    return std::unique_ptr<prepared_run>(
        std::make_unique<typed_prepared_run<Input, Chunk>>(runner_, std::move(*decoded)));
  }

 private:
  std::shared_ptr<provider> provider_;
  typename stream<Input, Chunk>::runner_type runner_;
  disconnect_policy disconnect_;
};

}  // namespace river::detail
