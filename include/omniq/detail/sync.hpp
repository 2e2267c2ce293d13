// Runs a coroutine of the backend to completion from a plain thread: the blocking twins.
#pragma once

#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include "omniq/error.hpp"

namespace omniq::detail {

namespace asio = boost::asio;

// True when the calling thread is running `ex` (for the executor types a backend can use).
inline bool running_in(const asio::any_io_executor& ex) {
  if (auto* io = ex.target<asio::io_context::executor_type>()) return io->running_in_this_thread();
  if (auto* st = ex.target<asio::strand<asio::io_context::executor_type>>()) return st->running_in_this_thread();
  if (auto* st = ex.target<asio::strand<asio::any_io_executor>>()) return st->running_in_this_thread();
  return false;
}

// An omniq::Error raised on the io thread, carried to the blocked caller as plain values and
// thrown anew there. Handing over the exception object itself (an exception_ptr through the
// future) would leave both threads sharing it, released through a reference count inside
// libstdc++, which ThreadSanitizer cannot see: each failed blocking call read as a data race.
struct CarriedError {
  errc kind;
  std::string message;
};

template <class T>
asio::awaitable<std::optional<T>> carry_error(asio::awaitable<T> op, std::optional<CarriedError>& error) {
  try {
    co_return co_await std::move(op);
  } catch (const Error& e) {
    error.emplace(CarriedError{e.kind(), e.what()});
  }
  co_return std::nullopt;
}

inline asio::awaitable<void> carry_error(asio::awaitable<void> op, std::optional<CarriedError>& error) {
  try {
    co_await std::move(op);
  } catch (const Error& e) {
    error.emplace(CarriedError{e.kind(), e.what()});
  }
}

// Blocks the calling thread until `op` completes on `ex`; rethrows its exception (an
// omniq::Error as a new Error of the same kind and message). Calling it from a thread that
// runs `ex` would wait for itself, so that is a clear error instead.
template <class T>
T run_blocking(const asio::any_io_executor& ex, asio::awaitable<T> op, const char* what) {
  if (running_in(ex))
    throw_error(errc::wrong_thread, std::string(what) +
                                        ": blocking call made on the backend's own io thread (it would deadlock); "
                                        "co_await the coroutine API there instead");
  std::optional<CarriedError> error;  // written on the io thread before the future is ready
  if constexpr (std::is_void_v<T>) {
    asio::co_spawn(ex, carry_error(std::move(op), error), asio::use_future).get();
    if (error) throw Error(error->kind, error->message);
  } else {
    std::optional<T> result = asio::co_spawn(ex, carry_error(std::move(op), error), asio::use_future).get();
    if (error) throw Error(error->kind, error->message);
    return std::move(*result);
  }
}

}  // namespace omniq::detail
