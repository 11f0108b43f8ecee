#pragma once

// Runs an awaitable that returns `result<T>` for a completion token: the token's handler gets
// `(error_code, T)` on its own executor, and its cancellation slot cancels the coroutine.

#include <river/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <new>

namespace river::detail {

template <class T>
struct result_signature {
  using type = void(error_code, T);
};
template <>
struct result_signature<void> {
  using type = void(error_code);
};

inline error_code code_of(const error& e) { return e.code ? e.code : make_error_code(errc::storage_failure); }

template <class T, class Token>
auto spawn_result(const executor& ex, asio::awaitable<result<T>> op, Token&& token) {
  return asio::async_initiate<Token, typename result_signature<T>::type>(
      [ex](auto handler, asio::awaitable<result<T>> operation) {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto handler_ex = asio::get_associated_executor(handler, ex);
        asio::co_spawn(
            ex, std::move(operation),
            asio::bind_cancellation_slot(
                slot, asio::bind_executor(handler_ex, [h = std::move(handler)](std::exception_ptr ep,
                                                                               result<T> r) mutable {
                  error_code ec;
                  if (ep) {
                    // The operation threw (out of memory, or cancelled while suspended).
                    try {
                      std::rethrow_exception(ep);
                    } catch (const boost::system::system_error& e) {
                      ec = e.code();
                    } catch (...) {
                      ec = make_error_code(errc::storage_failure);
                    }
                  } else if (!r) {
                    ec = code_of(r.error());
                  }
                  if constexpr (std::is_void_v<T>) {
                    std::move(h)(ec);
                  } else {
                    if (ec || !r)
                      std::move(h)(ec, T{});
                    else
                      std::move(h)(ec, std::move(*r));
                  }
                })));
      },
      token, std::move(op));
}

}  // namespace river::detail
