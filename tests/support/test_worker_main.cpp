// The worker process of the multi-process tests: serves one queue with handlers whose
// behaviour the tests choose per task, until SIGTERM (graceful) or SIGKILL (a crash).
//   omniq_test_worker <config.json> <queue> <concurrency> [worker_id]
// (the JSON config file gives every setting: servers, ack_wait, replicas for a cluster; see
// test::Fleet, which writes it)
// Handlers: noop (returns its args), fail_first (fails the first attempt), sleep_ms (awaits
// args[0] ms), sleep_ms_2 (awaits 2 ms), always_fail.
#include <cstdlib>
#include <iostream>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "omniq/backend.hpp"
#include "omniq/config.hpp"
#include "omniq/worker.hpp"

using nlohmann::json;
using namespace omniq;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: omniq_test_worker <config.json> <queue> <concurrency> [worker_id]\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  try {
    const Config config = load_config_file(argv[1]);
    NatsBackend backend(config);
    ConnectionScope scope(backend);
    WorkerOptions options{.queues = {argv[2]}, .concurrency = static_cast<std::size_t>(std::atoi(argv[3]))};
    if (argc > 4) options.worker_id = argv[4];
    Worker worker(backend, options);
    worker.handle("noop", [](TaskContext&, const json& args, const json&) -> asio::awaitable<json> { co_return args; });
    worker.handle("fail_first", [](TaskContext& ctx, const json& args, const json&) -> asio::awaitable<json> {
      if (ctx.attempt() == 1) throw TaskError("FirstAttempt", "fails on purpose the first time");
      co_return args;
    });
    worker.handle("sleep_ms", [](TaskContext&, const json& args, const json&) -> asio::awaitable<json> {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(args.at(0).get<int>()));
      co_await timer.async_wait(asio::use_awaitable);
      co_return args;
    });
    worker.handle("sleep_ms_2", [](TaskContext&, const json& args, const json&) -> asio::awaitable<json> {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(2));
      co_await timer.async_wait(asio::use_awaitable);
      co_return args;
    });
    worker.handle("always_fail", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
      throw TaskError("Poison", "always fails");
      co_return nullptr;
    });
    std::cout << "serving " << argv[2] << " as " << worker.id() << std::endl;
    worker.run_until_signal();
    const WorkerStats s = worker.stats();
    std::cout << "stopped: completed " << s.completed << " retried " << s.retried << " failed " << s.failed
              << " handed_back " << s.handed_back << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "omniq_test_worker: " << e.what() << "\n";
    return 1;
  }
}
