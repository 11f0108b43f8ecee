#pragma once

// The provider's way to Redis: one `connection`, or a `cluster` client for a
// `redis+cluster://` URL. Both route nothing the provider must know about: every request the
// provider makes keeps each run's commands on the run's slot (keys.hpp), and a cluster splits
// a request of several runs between their masters.

#include <river/redis/cluster.hpp>
#include <river/redis/connection.hpp>

#include <memory>
#include <string>
#include <utility>

namespace river::redis::detail {

class client {
 public:
  client(executor ex, const std::string& url, const connection_config& cfg) {
    if (is_cluster_url(url))
      cluster_ = std::make_unique<cluster>(std::move(ex), url, cfg);
    else
      single_ = std::make_unique<connection>(std::move(ex), url, cfg);
  }

  bool is_cluster() const noexcept { return cluster_ != nullptr; }

  template <class CompletionToken>
  auto async_exec(const request& req, CompletionToken&& token) {
    if (cluster_) return cluster_->async_exec(req, std::forward<CompletionToken>(token));
    return single_->async_exec(req, std::forward<CompletionToken>(token));
  }

  /// `connection::async_exec_in_place`: `req` stays unchanged until the handler is called. (A
  /// cluster copies it anyway, into an operation of its own, which it then sends in place.)
  template <class CompletionToken>
  auto async_exec_in_place(const request& req, CompletionToken&& token) {
    if (cluster_) return cluster_->async_exec(req, std::forward<CompletionToken>(token));
    return single_->async_exec_in_place(req, std::forward<CompletionToken>(token));
  }

  void set_push_handler(std::function<void(value)> h) {
    cluster_ ? cluster_->set_push_handler(std::move(h)) : single_->set_push_handler(std::move(h));
  }
  void set_connect_handler(std::function<void()> h) {
    cluster_ ? cluster_->set_connect_handler(std::move(h)) : single_->set_connect_handler(std::move(h));
  }
  void start() { cluster_ ? cluster_->start() : single_->start(); }
  void close() { cluster_ ? cluster_->close() : single_->close(); }
  /// Every node it needs is connected.
  bool connected() const noexcept { return cluster_ ? cluster_->connected() : single_->connected(); }
  std::string last_error() const { return cluster_ ? cluster_->last_error() : single_->last_error(); }
  /// Changes whenever requests may reach another server than before (a reconnect, a failover,
  /// a slot moved): `connection::generation`, `cluster::epoch`.
  std::uint64_t epoch() const noexcept { return cluster_ ? cluster_->epoch() : single_->generation(); }
  /// Socket writes so far, over every node.
  std::uint64_t writes() const { return cluster_ ? cluster_->get_stats().writes : single_->get_stats().writes; }
  /// A `PING` on every connection, replies ignored: lets the response timeout find a server
  /// that hangs under a connection that otherwise waits for nothing (a subscriber's).
  void ping() {
    if (cluster_) return cluster_->ping_all();
    request req;
    req.push({"PING"});
    single_->async_exec(req, [](error_code, response) {});
  }

 private:
  std::unique_ptr<connection> single_;
  std::unique_ptr<cluster> cluster_;
};

}  // namespace river::redis::detail
