// The definition of detail::launch (declared in omniq/async.hpp): a compiled coroutine run on the
// backend's executor, completing an any_completion_handler. Included by src/launch.cpp only,
// which instantiates it for every value type an operation yields.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <utility>

#include <boost/asio/error.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>

#include "omniq/async.hpp"
#include "omniq/detail/bridge.hpp"

namespace omniq::detail {

template <class T>
void launch(const asio::any_io_executor& executor, asio::awaitable<T> op, Diagnostics* diagnostics,
            asio::any_completion_handler<completion_t<T>> handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto work = tracked_executor_of(handler, executor);
  // co_spawn completes with (failure) for awaitable<void>, (failure, value) otherwise.
  auto done = [handler = std::move(handler), work = std::move(work), diagnostics](std::exception_ptr failure,
                                                                                   auto... value) mutable {
    const error_code ec = to_error_code(failure, diagnostics);
    failure = nullptr;  // released here, on the thread that made it
    asio::dispatch(work, asio::append(std::move(handler), ec, std::move(value)...));
  };
  asio::co_spawn(executor, std::move(op), asio::bind_cancellation_slot(slot, std::move(done)));
}

}  // namespace omniq::detail

namespace omniq::detail {

// A long-running operation (a worker's or scheduler's run) whose cancellation is a request to
// stop: the handler's cancellation slot calls `stop` (from the thread that emits), the run ends
// the way it ends after stop(), and the operation then completes with operation_aborted.
inline void launch_stoppable(const asio::any_io_executor& executor, asio::awaitable<void> op, Diagnostics* diagnostics,
                             asio::any_completion_handler<void(error_code)> handler, std::function<void()> stop) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  if (slot.is_connected())
    slot.assign([cancelled, stop = std::move(stop)](asio::cancellation_type type) {
      if (type == asio::cancellation_type::none) return;
      *cancelled = true;
      stop();
    });
  auto work = tracked_executor_of(handler, executor);
  asio::co_spawn(executor, std::move(op),
                 [handler = std::move(handler), work = std::move(work), diagnostics, cancelled,
                  slot](std::exception_ptr failure) mutable {
                   if (slot.is_connected()) slot.clear();
                   error_code ec = to_error_code(failure, diagnostics);
                   failure = nullptr;
                   if (!ec && *cancelled) {
                     ec = asio::error::operation_aborted;
                     if (diagnostics) diagnostics->message = "cancelled: stopped on request";
                   }
                   asio::dispatch(work, asio::append(std::move(handler), ec));
                 });
}

}  // namespace omniq::detail
