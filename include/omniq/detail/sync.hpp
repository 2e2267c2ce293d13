// Runs a coroutine of the backend to completion from a plain thread: the blocking twins.
#pragma once

#include <thread>

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

// Blocks the calling thread until `op` completes on `ex`; rethrows its exception. Calling it
// from a thread that runs `ex` would wait for itself, so that is a clear error instead.
template <class T>
T run_blocking(const asio::any_io_executor& ex, asio::awaitable<T> op, const char* what) {
  if (running_in(ex))
    throw_error(errc::wrong_thread, std::string(what) +
                                        ": blocking call made on the backend's own io thread (it would deadlock); "
                                        "co_await the coroutine API there instead");
  return asio::co_spawn(ex, std::move(op), asio::use_future).get();
}

}  // namespace omniq::detail
