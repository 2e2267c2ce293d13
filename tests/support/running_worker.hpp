// A Worker serving on a thread of its own for an integration test, stopped and joined at scope
// exit; and an awaitable pause for handlers, which the worker's cancellation interrupts.
#pragma once

#include <chrono>
#include <future>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/worker.hpp"

namespace omniq::test {

struct Running {
  Worker& worker;
  std::future<void> done;
  explicit Running(Worker& w) : worker(w), done(std::async(std::launch::async, [&w] { w.run_sync(); })) {}
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;
  ~Running() {
    worker.stop();
    if (done.valid()) done.wait();
  }
  // Stops the worker and rethrows what its run ended with.
  void stop_and_join() {
    worker.stop();
    done.get();
  }
};

// Awaits `ms`; throws operation_aborted when the worker cancels the handler.
inline boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds ms) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, ms);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace omniq::test
