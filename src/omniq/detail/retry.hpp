// The one retry loop: an operation tried again while it fails with a failure that may pass
// (omniq::is_transient), with growing pauses, until the caller gives up. The Worker's outcome
// writes and the producers' enqueues use it, with their own limits and logs.
#pragma once

#include <algorithm>
#include <chrono>
#include <exception>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/error.hpp"

namespace omniq::detail {

namespace asio = boost::asio;

// Runs `op()` (returning awaitable<void>) until it succeeds. A failure is rethrown when it
// cannot pass or `give_up(pause)` says so (`pause`: the wait before the next try); otherwise
// `on_retry(failure, pause)` is called and the next try follows after `pause`, which starts
// at `first` and doubles up to `longest`.
template <class Op, class GiveUp, class OnRetry>
asio::awaitable<void> retry_transient(Op op, GiveUp give_up, OnRetry on_retry, std::chrono::milliseconds first,
                                      std::chrono::milliseconds longest) {
  auto pause = first;
  for (;;) {
    std::exception_ptr failure;
    try {
      co_await op();
      co_return;
    } catch (...) {
      failure = std::current_exception();
    }
    if (!is_transient(failure) || give_up(pause)) std::rethrow_exception(failure);
    on_retry(failure, pause);
    asio::steady_timer timer(co_await asio::this_coro::executor, pause);
    co_await timer.async_wait(asio::use_awaitable);
    pause = std::min(pause * 2, longest);
  }
}

}  // namespace omniq::detail
