#pragma once

// Strands as River makes them. A strand of the type-erased `any_io_executor` queries and copies
// that executor through its type erasure for every handler it runs, and is too large for
// `any_io_executor`'s inline storage: in Asio 1.26 that is a heap allocation per query and per
// copy, several per event. A strand of the io_context's own executor type has none of it, so River
// unwraps the executors it knows before making a strand. And an io_context that runs on one
// thread (built with a concurrency hint of 1, `asio::io_context io(1)`, as `run_server` does for
// one thread) is a strand already: River then uses its executor as it is, which saves two
// handler hops per wake-up.

#include <river/config.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

namespace river::detail {

/// Whether `io` was built to run on one thread.
inline bool runs_on_one_thread(asio::io_context& io) {
  const int hint = asio::use_service<asio::detail::io_context_impl>(io).concurrency_hint();
  return hint == 1 || !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(SCHEDULER, hint) ||
         !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(REACTOR_IO, hint);
}

/// A strand of `ex` (or `ex` itself when it runs on one thread), as an `executor`.
inline executor make_strand(const executor& ex) {
  if (const auto* io = ex.target<asio::io_context::executor_type>()) {
    if (runs_on_one_thread(io->context())) return *io;
    return asio::make_strand(*io);
  }
  if (const auto* pool = ex.target<asio::thread_pool::executor_type>()) return asio::make_strand(*pool);
  return asio::make_strand(ex);
}

}  // namespace river::detail
