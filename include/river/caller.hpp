#pragma once

#include <river/detail/run_id.hpp>
#include <river/detail/unwatched_monitor.hpp>
#include <river/detail/watched_reader.hpp>
#include <river/event_reader.hpp>
#include <river/resume_token.hpp>
#include <river/router.hpp>

#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>

#include <functional>
#include <optional>
#include <string>

namespace river {

/// Settings of a caller.
struct caller_options {
  /// Signs a token before it is handed out (sets `signature`). Empty: tokens are not signed.
  std::function<void(resumption_token&)> sign_token;
  /// Checks a token's signature; `false` refuses the token (`errc::token_signature_mismatch`).
  /// Empty: signatures are not checked.
  std::function<bool(const resumption_token&)> verify_token;
  /// How long a runner may go on without suspending before River suspends it once (fairness
  /// towards the readers and runs that share its thread; see `runner_budget`).
  runner_budget budget;
  /// Most runs one client may have running at once (its `request_metadata::remote_address`;
  /// runs started in-process, with none, are not limited). Past it `start` fails with
  /// `errc::client_limit_exceeded` (HTTP 429). 0: no limit.
  std::size_t max_runs_per_client = 0;
  /// Receives one record per run failure (a runner that threw or failed its run, a terminal
  /// event the provider refused), with its cause. Empty: nothing is logged.
  log_function log;
};

/// Counters of a caller's runs, for metrics.
struct caller_stats {
  std::uint64_t runs_started = 0;
  std::uint64_t runs_ended = 0;    ///< ended with `stream_end`
  std::uint64_t runs_failed = 0;   ///< ended with `stream_fatal_error`
  std::uint64_t runs_aborted = 0;  ///< ended with `aborted`
  std::uint64_t events_appended = 0;
  std::size_t runs_active = 0;     ///< runners still running
};

/// Starts, resumes and cancels runs of a router's streams by name: the in-process caller, and
/// what the HTTP adapter serves.
///
/// Runs execute on strands of the caller's executor, detached from whoever started them.
/// Operations come in two forms: coroutines returning `result` (failures as `river::error`, with
/// the wire message and context an adapter sends on), and `async_*` for any completion token
/// (failures as `error_code`).
///
/// Thread safety: all operations may be called from any thread. The caller must outlive the
/// operations in progress; runs hold what they need and may outlive it.
class caller {
 public:
  using executor_type = executor;

  caller(executor_type ex, router routes, caller_options options = {})
      : ex_(std::move(ex)),
        router_(std::move(routes)),
        options_(std::move(options)),
        registry_(std::make_shared<detail::run_registry>()) {
    registry_->log = options_.log;
  }

  executor_type get_executor() const noexcept { return ex_; }
  const router& routes() const noexcept { return router_; }

  /// Starts a run of the stream `stream_name` with JSON `input`, and returns a reader of its
  /// events from the start. Errors: `errc::stream_not_found`, `errc::invalid_input` (type
  /// "validation", context naming the field), and the provider's (`errc::capacity_exceeded`,
  /// `errc::storage_failure`). The runner never sees invalid input.
  ///
  /// `Chunk` is the type chunks are read back as (`nlohmann::json`, the default, for any).
  template <class Chunk = nlohmann::json>
  asio::awaitable<result<basic_event_reader<Chunk>>> start(std::string stream_name, nlohmann::json input,
                                                           request_metadata metadata = {}) {
    const auto* entry = router_.find(stream_name);
    if (!entry)
      co_return error::from_code(errc::stream_not_found, "Stream not found", {{"routerStreamKey", stream_name}});
    auto prepared = entry->prepare(input);
    if (!prepared) co_return prepared.error();
    const auto& p = entry->get_provider();
    // The client's place is held from here; the run releases it when it ends.
    const auto client = metadata.remote_address;
    if (!registry_->reserve(client, options_.max_runs_per_client))
      co_return error::from_code(errc::client_limit_exceeded, "Too many runs of this client at once",
                                 {{"limit", options_.max_runs_per_client}});
    struct place_guard {
      detail::run_registry& registry;
      const std::string& client;
      bool held = true;
      ~place_guard() {
        if (held) registry.release(client);
      }
    } place{*registry_, client};

    auto run_id = detail::random_run_id();
    std::string token;
    if (p->resumable()) {
      resumption_token t{std::string(p->id()), stream_name, std::string(p->storage_id()), run_id, {}};
      if (options_.sign_token) options_.sign_token(t);
      token = encode_token(t);
      // A token nobody could use again is not handed out (the router bounds the name; a
      // signature can still be long): the server's setup is at fault (HTTP 500).
      if (token.size() > max_encoded_token_size)
        co_return error("The run's resumption token would be too long to decode: its signature is too long",
                        error_type::internal, {{"tokenBytes", token.size()}, {"limit", max_encoded_token_size}});
    }
    auto core = std::make_shared<detail::run_core>(detail::make_strand(ex_), run_id, std::string(p->storage_id()),
                                                   stream_name, std::move(metadata), registry_, options_.budget);
    std::function<void()> on_cancel_request = [weak = std::weak_ptr<detail::run_core>(core)] {
      if (auto c = weak.lock()) c->request_cancel();
    };
    auto log = co_await p->create_log(run_id, std::move(on_cancel_request));
    if (!log) co_return log.error();
    core->attach(std::move(log->writer));
    const auto& policy = entry->disconnect();
    // Whoever started the run reads it from here: counted before the monitor first looks.
    auto reader = detail::watch_if(policy, *p, core->storage_id(), run_id, std::move(log->reader));

    // The start event, appended on the run's strand like every other: a provider may run work of
    // its own on the executor of the append (the Redis writer's drain does) and counts on one strand.
    // GCC 12 mishandles temporaries inside co_await expressions: build arguments beforehand.
    auto start_json = to_json_text(event{events::start{run_id, token}, {}});
    auto append_start = core->try_append(std::move(start_json), event_kind::start);
    // Already on that strand (an io_context run by one thread is its own strand): no hop.
    auto here = co_await asio::this_coro::executor;
    result<void> stored;
    if (here == core->strand())
      stored = co_await std::move(append_start);
    else
      stored = co_await asio::co_spawn(core->strand(), std::move(append_start), asio::use_awaitable);
    if (!stored) co_return stored.error();
    registry_->add(core);
    place.held = false;  // the run's now: released when it ends
    registry_->started.fetch_add(1, std::memory_order_relaxed);
    if (policy.cancels())
      asio::co_spawn(core->strand(), detail::cancel_when_unwatched(core, p, policy.grace), asio::detached);
    (*prepared)->launch(std::move(core));
    auto reader_ex = co_await asio::this_coro::executor;
    co_return basic_event_reader<Chunk>(std::move(reader_ex), std::move(reader), std::move(run_id), std::move(token));
  }

  /// Resumes a run from its token: its events from `from` (the start, after a position, or the
  /// last N; a position alone converts), then live ones. Errors: `errc::invalid_token`,
  /// `errc::token_signature_mismatch`, `errc::stream_not_found`, `errc::provider_mismatch`,
  /// `errc::not_resumable`, `errc::run_not_found`, `errc::invalid_position`.
  template <class Chunk = nlohmann::json>
  asio::awaitable<result<basic_event_reader<Chunk>>> resume(std::string token, read_from from = {}) {
    auto target = locate(token);
    if (!target) co_return target.error();
    auto& [p, decoded, entry] = *target;
    if (!p->resumable())
      co_return error::from_code(errc::not_resumable, "This stream's provider cannot resume runs",
                                 {{"providerId", std::string(p->id())}});
    auto log = co_await p->open_log(decoded.stream_storage_id, decoded.stream_run_id, std::move(from));
    if (!log) co_return log.error();
    auto reader = detail::watch_if(entry->disconnect(), *p, decoded.stream_storage_id, decoded.stream_run_id,
                                   std::move(*log));
    auto reader_ex = co_await asio::this_coro::executor;
    co_return basic_event_reader<Chunk>(std::move(reader_ex), std::move(reader), decoded.stream_run_id,
                                        std::move(token));
  }

  /// Cancels the run a token names, wherever it executes; the run ends with `aborted`. Errors:
  /// those of `resume` for the token, `errc::run_not_found`, `errc::run_already_finished`.
  asio::awaitable<result<void>> cancel(std::string token) {
    auto target = locate(token);
    if (!target) co_return target.error();
    auto& p = target->target;
    auto& decoded = target->token;
    co_return co_await p->request_cancel(decoded.stream_storage_id, decoded.stream_run_id);
  }

  /// `start` for any completion token. Signature: `void(error_code, basic_event_reader<Chunk>)`.
  template <class Chunk = nlohmann::json, class Token = asio::default_completion_token_t<executor_type>>
    requires(!std::is_convertible_v<Token, request_metadata>)
  auto async_start(std::string stream_name, nlohmann::json input, Token&& token = {}) {
    return async_start<Chunk>(std::move(stream_name), std::move(input), request_metadata{}, std::forward<Token>(token));
  }

  /// `start` with request metadata, for any completion token.
  template <class Chunk = nlohmann::json, class Token = asio::default_completion_token_t<executor_type>>
  auto async_start(std::string stream_name, nlohmann::json input, request_metadata metadata, Token&& token) {
    return detail::spawn_result<basic_event_reader<Chunk>>(
        ex_, start<Chunk>(std::move(stream_name), std::move(input), std::move(metadata)), std::forward<Token>(token));
  }

  /// `resume` for any completion token. Signature: `void(error_code, basic_event_reader<Chunk>)`.
  template <class Chunk = nlohmann::json, class Token = asio::default_completion_token_t<executor_type>>
    requires(!std::is_convertible_v<Token, read_from>)
  auto async_resume(std::string token, Token&& completion = {}) {
    return async_resume<Chunk>(std::move(token), read_from{}, std::forward<Token>(completion));
  }

  /// `resume` from a place, for any completion token.
  template <class Chunk = nlohmann::json, class Token = asio::default_completion_token_t<executor_type>>
  auto async_resume(std::string token, read_from from, Token&& completion) {
    return detail::spawn_result<basic_event_reader<Chunk>>(ex_, resume<Chunk>(std::move(token), std::move(from)),
                                                           std::forward<Token>(completion));
  }

  /// `cancel` for any completion token. Signature: `void(error_code)`.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_cancel(std::string token, Token&& completion = {}) {
    return detail::spawn_result<void>(ex_, cancel(std::move(token)), std::forward<Token>(completion));
  }

  /// Cancels every run of this caller that is still running (at shutdown).
  void cancel_all() {
    registry_->for_each([](detail::run_core& run) { run.request_cancel(); });
  }

  /// Runners of this caller still running.
  std::size_t active_runs() const { return registry_->active(); }
  /// Runners of this caller still running that `client` (a `request_metadata::remote_address`)
  /// started.
  std::size_t active_runs(const std::string& client) const { return registry_->active(client); }

  caller_stats stats() const {
    caller_stats s;
    s.runs_started = registry_->started.load(std::memory_order_relaxed);
    s.runs_ended = registry_->ended.load(std::memory_order_relaxed);
    s.runs_failed = registry_->failed.load(std::memory_order_relaxed);
    s.runs_aborted = registry_->aborted.load(std::memory_order_relaxed);
    s.events_appended = registry_->events.load(std::memory_order_relaxed);
    s.runs_active = registry_->active();
    return s;
  }

 private:
  struct located {
    std::shared_ptr<river::provider> target;
    resumption_token token;
    const detail::stream_entry* entry;
  };

  // Decodes and checks a token, and finds the provider of the stream it names.
  result<located> locate(const std::string& text) const {
    auto decoded = decode_token(text);
    if (!decoded) return decoded.error();
    if (options_.verify_token && !options_.verify_token(*decoded))
      return error::from_code(errc::token_signature_mismatch, "The resumption token's signature does not match");
    const auto* entry = router_.find(decoded->router_stream_key);
    if (!entry)
      return error::from_code(errc::stream_not_found, "Stream not found",
                              {{"routerStreamKey", decoded->router_stream_key}});
    const auto& p = entry->get_provider();
    if (decoded->provider_id != p->id())
      return error::from_code(errc::provider_mismatch, "The resumption token names another provider",
                              {{"providerId", decoded->provider_id}});
    return located{p, std::move(*decoded), entry};
  }

  executor_type ex_;
  router router_;
  caller_options options_;
  std::shared_ptr<detail::run_registry> registry_;
};

}  // namespace river
