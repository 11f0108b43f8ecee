#pragma once

#include <river/memory/config.hpp>
#include <river/memory/detail/run_log.hpp>
#include <river/provider.hpp>

namespace river::memory {

/// The in-memory provider: the embedded default. Runs are resumable from any position within
/// one process while they are retained (see `config`).
///
/// Thread safety: all operations may be called from any thread. A reader never slows the
/// writer or other readers: readers follow the log at their own pace and the writer only wakes
/// them.
class provider final : public river::provider {
 public:
  /// What the provider holds now.
  struct stats {
    std::size_t runs = 0;         ///< runs kept, in progress or finished
    std::size_t running = 0;      ///< runs in progress
    std::size_t bytes = 0;        ///< bytes of event text kept
    std::uint64_t evicted = 0;    ///< finished runs evicted or expired so far
  };

  explicit provider(config cfg = {}) : state_(std::make_shared<detail::store>(std::move(cfg))) {}

  std::string_view id() const noexcept override { return "memory"; }
  std::string_view storage_id() const noexcept override { return state_->cfg.storage_id; }
  bool resumable() const noexcept override { return true; }

  asio::awaitable<result<new_log>> create_log(std::string run_id,
                                              std::function<void()> on_cancel_request) override {
    auto ex = co_await asio::this_coro::executor;
    co_return state_->create(std::move(run_id), std::move(on_cancel_request), ex);
  }

  asio::awaitable<result<std::unique_ptr<log_reader>>> open_log(std::string storage_id, std::string run_id,
                                                                read_from from) override {
    auto ex = co_await asio::this_coro::executor;
    co_return state_->open(storage_id, run_id, from, ex);
  }

  asio::awaitable<result<void>> request_cancel(std::string storage_id, std::string run_id) override {
    co_return state_->cancel(storage_id, run_id);
  }

  /// Drops expired runs now (they are otherwise dropped when the provider is next used).
  void sweep() { state_->sweep(); }

  stats get_stats() const {
    auto s = state_->snapshot();
    return {s.runs, s.running, s.bytes, s.evicted};
  }

 private:
  std::shared_ptr<detail::store> state_;
};

}  // namespace river::memory
