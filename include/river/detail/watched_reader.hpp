#pragma once

// A reader of a run whose stream cancels unwatched runs: it reads through another reader and
// counts as one of the run's readers for as long as it exists (disconnect_policy.hpp).

#include <river/provider.hpp>

namespace river::detail {

class watched_reader final : public log_reader {
 public:
  watched_reader(std::unique_ptr<log_reader> inner, run_watch watch)
      : inner_(std::move(inner)), watch_(std::move(watch)) {}

  asio::awaitable<result<read_status>> read(std::vector<record_view>& out, std::size_t max,
                                            std::chrono::steady_clock::time_point deadline) override {
    return inner_->read(out, max, deadline);
  }

  read_status poll(std::vector<record_view>& out, std::size_t max) override { return inner_->poll(out, max); }

  bool finished() const override { return inner_->finished(); }

 private:
  std::unique_ptr<log_reader> inner_;
  run_watch watch_;  // released after the inner reader is gone, when this one is
};

/// `reader`, counted as a reader of the run when the stream's policy cancels unwatched runs.
inline std::unique_ptr<log_reader> watch_if(const disconnect_policy& policy, provider& p, std::string_view storage_id,
                                            std::string_view run_id, std::unique_ptr<log_reader> reader) {
  if (!policy.cancels()) return reader;
  return std::make_unique<watched_reader>(std::move(reader), p.watch(storage_id, run_id));
}

}  // namespace river::detail
