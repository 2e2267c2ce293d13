// The blocking forms: run an initiating function from a plain thread and wait for its
// completion. Each blocking member of the Sync* classes is a one-liner over these.
#pragma once

#include <future>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "omniq/async.hpp"
#include "omniq/error.hpp"

namespace omniq::detail {

namespace asio = boost::asio;

/// True when the calling thread is running `ex` (for the executor types a backend can use).
inline bool running_in(const asio::any_io_executor& ex) {
  if (auto* io = ex.target<asio::io_context::executor_type>()) return io->running_in_this_thread();
  if (auto* st = ex.target<asio::strand<asio::io_context::executor_type>>()) return st->running_in_this_thread();
  if (auto* st = ex.target<asio::strand<asio::any_io_executor>>()) return st->running_in_this_thread();
  return false;
}

/// Starts `start(token)` (an initiating function given its token) and blocks the calling thread
/// until it completes; the error-code form. The completion runs on the backend's executor `ex`
/// and hands plain values over, never an exception object. Calling it from a thread that runs
/// `ex` would wait for itself: that completes with errc::wrong_thread at once instead.
template <class T, class Start>
T wait_blocking(const asio::any_io_executor& ex, const char* what, Start&& start, error_code& ec,
                Diagnostics& diagnostics) {
  ec.clear();
  diagnostics.clear();
  if (running_in(ex)) {
    ec = make_error_code(errc::wrong_thread);
    diagnostics.message = std::string(what) +
                          ": blocking call made on the backend's own io thread (it would deadlock); "
                          "co_await the asynchronous form there instead";
    if constexpr (!std::is_void_v<T>) return T{};
    else return;
  }
  /// The promise is shared with the handler: the io thread may still be inside set_value when
  /// this thread, woken, returns.
  if constexpr (std::is_void_v<T>) {
    auto done = std::make_shared<std::promise<error_code>>();
    auto outcome = done->get_future();
    std::forward<Start>(start)(bind_diagnostics(diagnostics, [done](error_code e) { done->set_value(e); }));
    ec = outcome.get();
  } else {
    auto done = std::make_shared<std::promise<std::pair<error_code, T>>>();
    auto outcome = done->get_future();
    std::forward<Start>(start)(bind_diagnostics(diagnostics, [done](error_code e, T value) {
      done->set_value(std::pair<error_code, T>(e, std::move(value)));
    }));
    auto [e, value] = outcome.get();
    ec = e;
    return std::move(value);
  }
}

/// The throwing form: an omniq::Error with the same code and message the error-code form reports.
template <class T, class Start>
T wait_blocking(const asio::any_io_executor& ex, const char* what, Start&& start) {
  error_code ec;
  Diagnostics diagnostics;
  if constexpr (std::is_void_v<T>) {
    wait_blocking<void>(ex, what, std::forward<Start>(start), ec, diagnostics);
    throw_if_failed(ec, diagnostics);
  } else {
    T value = wait_blocking<T>(ex, what, std::forward<Start>(start), ec, diagnostics);
    throw_if_failed(ec, diagnostics);
    return value;
  }
}

/// The base of the blocking classes (SyncTaskQueue, SyncLease, ...): the executor their
/// operations run on, and the one wait every blocking member goes through.
class Blocking {
 protected:
  explicit Blocking(asio::any_io_executor ex) : ex_(std::move(ex)) {}
  const asio::any_io_executor& executor() const noexcept { return ex_; }
  template <class T, class Start, class... Out>
  T wait(const char* what, Start&& start, Out&... out) const {
    return wait_blocking<T>(ex_, what, std::forward<Start>(start), out...);
  }

 private:
  asio::any_io_executor ex_;
};

}  // namespace omniq::detail
