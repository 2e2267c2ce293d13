// The scheduler process of the multi-process tests: runs omniq::Scheduler until SIGTERM
// (graceful: the tick under way finishes) or SIGKILL (a crash).
//   omniq_test_scheduler <config.json> <poll_ms>
// (the JSON config file gives every setting; see test::Fleet, which writes it). Prints
// "scheduling" once connected, so a test knows when it is ready.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "omniq/backend.hpp"
#include "omniq/config.hpp"
#include "omniq/scheduler.hpp"

using namespace omniq;

int main(int argc, char** argv) {
  if (argc < 3 || std::atoi(argv[2]) <= 0) {
    std::cerr << "usage: omniq_test_scheduler <config.json> <poll_ms>\n";
    return 2;
  }
  // Debug: each occurrence this process fired is in its log, for a failing test's message.
  spdlog::set_level(spdlog::level::debug);
  try {
    const Config config = load_config_file(argv[1]);
    NatsBackend backend(config);
    ConnectionScope scope(backend);
    Scheduler scheduler(backend,
                        SchedulerOptions{.poll_interval = std::chrono::milliseconds(std::atoi(argv[2]))});
    std::cout << "scheduling" << std::endl;
    // On the backend's io thread, with the signal set, so stop() is called where it runs.
    auto run = [&]() -> asio::awaitable<void> {
      asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
      signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec) scheduler.stop();
      });
      co_await scheduler.async_run();
      signals.cancel();
    };
    asio::co_spawn(backend.get_executor(), run(), asio::use_future).get();
    std::cout << "stopped" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "omniq_test_scheduler: " << e.what() << "\n";
    return 1;
  }
}
