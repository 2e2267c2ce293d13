// The worker: registers a few handlers and serves queues until SIGINT or SIGTERM, printing its
// counters now and then and once more at exit.
//
//   omniq_worker --queues demo,default --concurrency 32 --stats-every 5
//
// Handlers:
//   add [numbers...]      coroutine: returns their sum
//   sleep [ms]            coroutine: waits on a timer; a timeout or cancellation interrupts it
//   flaky [...]           coroutine: fails on its first attempt, succeeds on the retry
//   cpu_hash [rounds]     blocking, on the worker's thread pool: hashes for `rounds` rounds,
//                         polling ctx.cancelled() and reporting progress on long runs
//   fail [...]            coroutine: always fails with a non-retryable TaskError (dead letter)
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <stop_token>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "cli.hpp"

namespace {

constexpr std::string_view usage = R"(usage: omniq_worker [options]

Serves queues with the handlers add, sleep, flaky, cpu_hash and fail until SIGINT or SIGTERM,
then stops fetching, lets running tasks finish and prints its counters.

options:
  --config <file>           JSON configuration file (instead of OMNIQ_CONFIG); NATS_SERVERS
                            and the other NATS_* variables still apply on top
  --queues <a,b,...>        queues to serve, in priority order (default: default)
  --concurrency <n>         tasks run at once (default: 8)
  --stats-every <s>         print the counters every s seconds; 0: only at exit (default: 10)
  --task-timeout <s>        limit for one attempt of tasks without their own timeout
  --shutdown-timeout <s>    on a signal, how long running tasks may take (default: 10)
  --id <name>               worker id in events and results (default: host-pid-random)
  --help                    this text

exit status: 0 stopped by a signal, 1 failed (e.g. no server), 64 bad command line or configuration
)";

}  // namespace

// The handlers; in a namespace of their own so `sleep` does not clash with ::sleep.
namespace handlers {

namespace asio = boost::asio;
using nlohmann::json;
using omniq::TaskContext;
using omniq::TaskError;

// add [numbers...]: their sum (an integer when all are integers).
asio::awaitable<json> add(TaskContext&, const json& args, const json&) {
  std::int64_t integer_sum = 0;
  double sum = 0;
  bool all_integers = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const json& a = args[i];
    if (!a.is_number())
      throw TaskError("bad_arguments", "add: argument " + std::to_string(i) + " is not a number: " + a.dump(), false);
    all_integers = all_integers && a.is_number_integer();
    if (a.is_number_integer()) integer_sum += a.get<std::int64_t>();
    sum += a.get<double>();
  }
  co_return all_integers ? json(integer_sum) : json(sum);
}

// sleep [ms]: waits on a timer. A timeout or cancellation cancels the timer, which ends the
// wait at once; the worker then records the attempt as timed out or cancelled.
asio::awaitable<json> sleep(TaskContext& ctx, const json& args, const json&) {
  const json ms = args.empty() ? json(0) : args[0];
  if (!ms.is_number_integer() || ms.get<std::int64_t>() < 0)
    throw TaskError("bad_arguments", "sleep: the argument must be milliseconds >= 0, got " + ms.dump(), false);
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(ms.get<std::int64_t>()));
  const auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec || ctx.cancelled()) throw TaskError("interrupted", "sleep: interrupted before " + ms.dump() + " ms");
  co_return json{{"slept_ms", ms}};
}

// flaky: fails on the first attempt (retryable, so the worker enqueues a retry with backoff).
asio::awaitable<json> flaky(TaskContext& ctx, const json&, const json&) {
  if (ctx.attempt() == 1) throw TaskError("flaky", "fails on its first attempt; the retry succeeds");
  co_return json{{"attempt", ctx.attempt()}};
}

// fail: never succeeds; not retryable, so the task is dead-lettered at once.
asio::awaitable<json> fail(TaskContext&, const json& args, const json&) {
  throw TaskError("demo_failure", "fail always fails (args " + args.dump() + ")", false);
  co_return json();
}

// cpu_hash [rounds]: CPU work on the worker's thread pool, never on the io thread. It polls
// ctx.cancelled() between chunks and reports progress every quarter of a long run.
json cpu_hash(TaskContext& ctx, const json& args, const json&) {
  const json rounds_arg = args.empty() ? json(100'000) : args[0];
  if (!rounds_arg.is_number_integer() || rounds_arg.get<std::int64_t>() < 1)
    throw TaskError("bad_arguments", "cpu_hash: the argument must be a number of rounds >= 1, got " + rounds_arg.dump(),
                    false);
  const auto rounds = rounds_arg.get<std::uint64_t>();
  constexpr std::uint64_t chunk = 1 << 16;
  const bool long_run = rounds >= 40 * chunk;
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over the round numbers
  for (std::uint64_t i = 0; i < rounds; ++i) {
    h = (h ^ i) * 1099511628211ULL;
    if ((i + 1) % chunk != 0) continue;
    if (ctx.cancelled()) throw TaskError("interrupted", "cpu_hash: stopped after " + std::to_string(i + 1) + " rounds");
    if (long_run && (i + 1) % (rounds / 4 / chunk * chunk) == 0)
      ctx.report_progress(static_cast<double>(i + 1) / static_cast<double>(rounds), "hashing");
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return json{{"rounds", rounds}, {"hash", hex}};
}

}  // namespace handlers

namespace {

void print_stats(const char* when, const omniq::Worker& worker) {
  const omniq::WorkerStats s = worker.stats();
  // One line of key=value pairs: easy to read and to grep.
  std::printf("worker %s %s: received=%llu completed=%llu retried=%llu failed=%llu dead_lettered=%llu "
              "cancelled=%llu deferred=%llu already_done=%llu duplicates=%llu held=%llu handed_back=%llu running=%llu\n",
              worker.id().c_str(), when, static_cast<unsigned long long>(s.received),
              static_cast<unsigned long long>(s.completed), static_cast<unsigned long long>(s.retried),
              static_cast<unsigned long long>(s.failed), static_cast<unsigned long long>(s.dead_lettered),
              static_cast<unsigned long long>(s.cancelled), static_cast<unsigned long long>(s.deferred),
              static_cast<unsigned long long>(s.already_done), static_cast<unsigned long long>(s.duplicates),
              static_cast<unsigned long long>(s.held), static_cast<unsigned long long>(s.handed_back), static_cast<unsigned long long>(s.running));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  return example::run_main(
      argc, argv, usage, {"config", "queues", "concurrency", "stats-every", "task-timeout", "shutdown-timeout", "id"},
      {}, [](const example::Args& args) {
        if (!args.positional().empty()) throw example::UsageError("unexpected argument \"" + args.positional()[0] + "\"");
        omniq::WorkerOptions options;
        options.queues = example::split_list(args.value_or("queues", "default"));
        options.concurrency = static_cast<std::size_t>(args.integer("concurrency", 8, 1, 10'000));
        options.worker_id = args.value_or("id", "");
        options.default_timeout = args.seconds("task-timeout");
        options.shutdown_timeout = args.seconds("shutdown-timeout", true).value_or(std::chrono::seconds(10));
        const auto stats_every = args.seconds("stats-every", true).value_or(std::chrono::seconds(10));
        options.validate();

        example::setup_logging(spdlog::level::info);
        omniq::NatsBackend backend(example::load_config(args));
        omniq::ConnectionScope connected(backend);

        omniq::Worker worker(backend, options);
        worker.handle("add", handlers::add);
        worker.handle("sleep", handlers::sleep);
        worker.handle("flaky", handlers::flaky);
        worker.handle("fail", handlers::fail);
        worker.handle_blocking("cpu_hash", handlers::cpu_hash);

        std::jthread reporter;
        if (stats_every > omniq::Duration::zero()) {
          reporter = std::jthread([&](std::stop_token stop) {
            std::mutex mu;
            std::condition_variable_any cv;
            std::unique_lock lock(mu);
            for (;;) {
              cv.wait_for(lock, stop, stats_every, [] { return false; });  // wakes early on stop
              if (stop.stop_requested()) return;
              print_stats("stats", worker);
            }
          });
        }
        worker.run_until_signal();  // returns once stopped and drained
        reporter = {};              // stops and joins the reporter
        print_stats("final stats", worker);
        return example::exit_ok;
      });
}
