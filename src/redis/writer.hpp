#pragma once

// The writer of a run this instance owns: each event one pipelined XADD (appends of every run
// share the command connection and travel together), the last one with the end entry, the
// retention and the lease's release in one MULTI/EXEC. An acknowledged append goes into the
// run's own feed, in Redis's order and with Redis's id, for the readers of this instance; a
// notice on the run's channel tells readers elsewhere, at most one in flight per run.

#include "provider_state.hpp"

namespace river::redis::detail {

class writer final : public log_writer {
 public:
  writer(std::shared_ptr<provider_state> st, std::shared_ptr<local_run> run) : st_(std::move(st)), run_(std::move(run)) {}
  ~writer() override;

  asio::awaitable<result<std::string>> append(std::string_view data, bool last) override;

 private:
  river::error failed(error_code ec);

  std::shared_ptr<provider_state> st_;
  std::shared_ptr<local_run> run_;
  request req_;  // reused: its bytes are copied when the command is queued
  // The events of appends in flight, kept for the run's feed until Redis acknowledges them
  // (the caller's buffer is reused as soon as the append is queued). Reused too.
  std::vector<std::string> spare_;
};

}  // namespace river::redis::detail
