// The bridge between nats.c's threads and Asio executors (docs/architecture.md, "Threads").
// Two rules hold everywhere: a coroutine is never resumed on a nats.c thread (completions are
// posted to the awaiting handler's associated executor, with outstanding work tracked while
// pending), and a blocking nats.c call never runs on an io thread (it is offloaded here).
#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

namespace omniq::detail {

namespace asio = boost::asio;

// The executor a completion of `handler` runs on (its associated one, or `fallback`), with
// outstanding work tracked: the io_context stays running until the completion has run. Every
// deferred completion (bridge, detail::launch) holds one.
template <class Handler, class Fallback>
auto tracked_executor_of(const Handler& handler, const Fallback& fallback) {
  return asio::prefer(asio::get_associated_executor(handler, fallback), asio::execution::outstanding_work.tracked);
}

// Type-erases `handler` into a completion that may be invoked from any thread (a nats.c
// callback, the blocking pool): invoking it posts the real completion to the handler's
// associated executor (or `fallback`), whose outstanding work is tracked until then.
template <class... Args, class Handler, class Fallback>
asio::any_completion_handler<void(Args...)> post_to_associated(Handler handler, const Fallback& fallback) {
  auto work = tracked_executor_of(handler, fallback);
  return [handler = std::move(handler), work = std::move(work)](Args... args) mutable {
    asio::post(work, asio::append(std::move(handler), std::move(args)...));
  };
}

template <class R>
struct offload_signature {
  using type = void(std::exception_ptr, R);
};
template <>
struct offload_signature<void> {
  using type = void(std::exception_ptr);
};

// Runs the blocking callable `f` on `pool` and completes the token with
// void(std::exception_ptr, R) — or void(std::exception_ptr) when R is void — on the awaiting
// handler's executor. Exceptions thrown by `f` travel to the awaiter, never into a C thread.
template <class PoolExecutor, class F, class CompletionToken>
auto async_offload(PoolExecutor pool, F&& f, CompletionToken&& token) {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  using Signature = typename offload_signature<R>::type;
  return asio::async_initiate<CompletionToken, Signature>(
      [pool](auto handler, std::decay_t<F> fn) {
        // Keep the awaiting executor's context alive while the call runs on the pool.
        auto work = asio::prefer(asio::get_associated_executor(handler, pool),
                                 asio::execution::outstanding_work.tracked);
        asio::post(pool, [handler = std::move(handler), fn = std::move(fn),
                          work = std::move(work)]() mutable {
          if constexpr (std::is_void_v<R>) {
            std::exception_ptr ep;
            try {
              fn();
            } catch (...) {
              ep = std::current_exception();
            }
            asio::post(work, asio::append(std::move(handler), ep));
          } else {
            std::exception_ptr ep;
            R result{};
            try {
              result = fn();
            } catch (...) {
              ep = std::current_exception();
            }
            asio::post(work, asio::append(std::move(handler), ep, std::move(result)));
          }
        });
      },
      token, std::forward<F>(f));
}

}  // namespace omniq::detail
