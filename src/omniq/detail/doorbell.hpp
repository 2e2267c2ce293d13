// A coalescing wake-up signal that any thread may ring (a nats.c callback included) and a
// coroutine may wait on with a timeout.
#pragma once

#include <chrono>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace omniq::detail {

namespace asio = boost::asio;

class Doorbell {
 public:
  explicit Doorbell(asio::any_io_executor executor) : channel_(executor, 1) {}

  // Thread-safe; rings that nobody has heard yet merge into one.
  void ring() { channel_.try_send(boost::system::error_code{}); }

  // Returns when rung or after `timeout`, whichever comes first. A cancelled wait (the
  // coroutine's cancellation slot) throws operation_aborted.
  asio::awaitable<void> wait(std::chrono::milliseconds timeout) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
    // Named, not temporaries inside co_await: g++ 12 mishandles those.
    auto rung = channel_.async_receive(asio::as_tuple(asio::use_awaitable));
    auto expired = timer.async_wait(asio::as_tuple(asio::use_awaitable));
    auto either = std::move(rung) || std::move(expired);
    co_await std::move(either);
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none)
      throw boost::system::system_error(asio::error::operation_aborted);
  }

 private:
  asio::experimental::concurrent_channel<void(boost::system::error_code)> channel_;
};

}  // namespace omniq::detail
