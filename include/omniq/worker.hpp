// The worker runtime: serves queues by running registered handlers on dequeued tasks, with
// concurrency, per-task timeouts, retries with backoff, dead letters, cancellation,
// dependencies and graceful shutdown. docs/worker.md describes the per-task steps and the
// guarantees.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "omniq/async.hpp"
#include "omniq/backend.hpp"
#include "omniq/models/task.hpp"

namespace omniq {

/// Thrown by a handler to fail with a chosen error type; `retryable = false` skips the
/// remaining retries (the task is failed and dead-lettered at once). Any other exception
/// fails the attempt with its demangled type name as error_type and what() as the message.
class TaskError : public std::runtime_error {
 public:
  TaskError(std::string type, const std::string& message, bool retryable = true)
      : std::runtime_error(message), type_(std::move(type)), retryable_(retryable) {}
  const std::string& type() const noexcept { return type_; }
  bool retryable() const noexcept { return retryable_; }

 private:
  std::string type_;
  bool retryable_;
};

/// Why a running handler is asked to stop.
enum class StopReason { none, timeout, cancelled, shutdown };

namespace detail {
struct WorkerRun;
}

/// What a handler knows about the task it runs. Valid for the duration of the handler call.
class TaskContext {
 public:
  const Task& task() const noexcept;
  /// 1 on the first attempt, retry_count + 1 on later ones.
  int attempt() const noexcept { return task().retry_count + 1; }
  /// How often the server has delivered this attempt's message (1 unless a worker died or
  /// gave it back).
  std::uint64_t delivery() const noexcept;
  const std::string& worker_id() const noexcept;

  /// True once the handler should stop: its timeout passed, the task was cancelled, or the
  /// worker is shutting down past its grace period. Thread-safe; blocking handlers poll it
  /// (or stop_token()); coroutine handlers are also cancelled at their next cancellable
  /// await (timers, Asio I/O).
  bool cancelled() const noexcept;
  StopReason stop_reason() const noexcept;
  std::stop_token stop_token() const noexcept;

  /// Reports progress (fraction 0..1 and a message): restarts the task's ack_wait timer,
  /// logs an `executing` event whose details hold {"progress", "message"}, and stores both with
  /// the run's claim, where get_task reads them (TaskRecord::progress): void(error_code).
  /// A fraction outside 0..1 fails with errc::invalid_argument.
  /// From a coroutine handler: co_await ctx.async_progress(0.5, "half").
  template <class CompletionToken = default_token>
  auto async_progress(double fraction, std::string message = {}, CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this, fraction, message = std::move(message)]() mutable {
      return progress(fraction, std::move(message));
    });
  }
  /// The same from a blocking handler (it runs on the worker's thread pool, never the io thread).
  void report_progress(double fraction, std::string message = {});

 private:
  friend struct detail::WorkerRun;
  explicit TaskContext(detail::WorkerRun& run) : run_(&run) {}
  asio::any_io_executor executor() const;
  asio::awaitable<void> progress(double fraction, std::string message);
  detail::WorkerRun* run_;
};

struct WorkerOptions {
  /// Queues served, in priority order (an earlier queue's tasks first); within a queue higher
  /// priority bands first.
  std::vector<std::string> queues{"default"};
  /// Tasks run at once. Also the number of deliveries prefetched per lane.
  std::size_t concurrency = 8;
  /// Names this worker in events and results; default "<host>-<pid>-<random>".
  std::string worker_id{};
  /// Per-attempt limit for tasks without their own `timeout`; nullopt: no limit.
  std::optional<Duration> default_timeout{};
  /// On stop: how long running tasks may take to finish; the rest are cancelled and handed
  /// back to the queue for other workers.
  Duration shutdown_timeout = std::chrono::seconds(30);
  /// After a timeout or cancellation, how long a handler may take to return before the
  /// attempt is settled without it (its result, if it ever returns, is discarded).
  Duration cancel_grace = std::chrono::seconds(2);
  /// Threads for blocking handlers; 0: as many as `concurrency`.
  std::size_t blocking_threads = 0;
  /// A task whose dependencies have not completed is checked again after this long.
  Duration dependency_poll = std::chrono::seconds(1);
  /// How long a dependency may stay unknown (never enqueued, or deleted before it ran and
  /// before omniq recorded that) before the task waiting for it fails, counted from the
  /// task's created_at. nullopt: until the task's own expiry when it has one (it then ends
  /// as expired), else 24 hours.
  std::optional<Duration> dependency_timeout{};
  /// In-progress signals to the server while a handler runs; 0: a third of ack_wait.
  Duration heartbeat = Duration::zero();

  /// Throws omniq::Error(invalid_argument / invalid_name) naming the option at fault.
  void validate() const;
};

/// Counters since the worker started; read at any time from any thread.
struct WorkerStats {
  std::uint64_t received = 0;         // deliveries taken from the queue
  std::uint64_t completed = 0;        // handlers that succeeded, result stored, acked
  std::uint64_t retried = 0;          // failed attempts enqueued again for a retry
  std::uint64_t failed = 0;           // tasks failed for good (retries spent or not retryable)
  std::uint64_t dead_lettered = 0;    // failed tasks, unknown functions, failed dependencies
  std::uint64_t cancelled = 0;        // cancelled tasks skipped or stopped
  std::uint64_t deferred = 0;         // tasks put back to wait for their dependencies
  std::uint64_t already_done = 0;     // deliveries of tasks whose outcome was already stored (acked, not rerun)
  std::uint64_t duplicates = 0;       // deliveries superseded by a later attempt of the task (acked, not run)
  std::uint64_t held = 0;             // deliveries of a task a live run holds (set aside with a delay, not run)
  std::uint64_t handed_back = 0;      // tasks returned to the queue at shutdown
  std::uint64_t running = 0;          // handlers running now
};

class Worker {
 public:
  /// A coroutine handler; `args` and `kwargs` are the task's and stay valid while it runs.
  using Handler =
      std::function<asio::awaitable<nlohmann::json>(TaskContext&, const nlohmann::json& args, const nlohmann::json& kwargs)>;
  /// A blocking handler, run on the worker's thread pool.
  using BlockingHandler =
      std::function<nlohmann::json(TaskContext&, const nlohmann::json& args, const nlohmann::json& kwargs)>;

  /// Throws omniq::Error(invalid_argument) for bad options (see WorkerOptions::validate).
  explicit Worker(NatsBackend& backend, WorkerOptions options = {});
  /// Asks a running worker to stop (as stop()). Waits for blocking handlers still running.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Registers the handler for tasks whose `func` is `name`. Throws invalid_argument for an
  /// empty or already registered name, or once the worker runs.
  void handle(std::string name, Handler handler);
  void handle_blocking(std::string name, BlockingHandler handler);

  /// Serves the queues until stop(), then shuts down gracefully and completes: void(error_code).
  /// Runs on the backend's executor; at most once per Worker (again: invalid_argument). Fails
  /// with what makes serving impossible at start (e.g. permission_denied provisioning the
  /// queues). Cancelling it (terminal cancellation through the handler's slot) is a stop():
  /// running tasks finish within shutdown_timeout, the rest is handed back, then it completes
  /// with operation_aborted.
  template <class CompletionToken = default_token>
  auto async_run(CompletionToken&& token = {}) {
    return detail::initiate_with<void>(token, [this](Diagnostics* diag, asio::any_completion_handler<void(error_code)> h) {
      start_run(diag, std::move(h));
    });
  }
  /// async_run from a plain thread (not the backend's io thread): blocks until stopped and
  /// drained. Throws like async_run fails; the error-code form fills `ec` and `diag`.
  void run_sync();
  void run_sync(error_code& ec, Diagnostics& diag);
  /// run_sync() that stops on SIGINT or SIGTERM.
  void run_until_signal();
  /// Thread-safe; returns at once. The worker stops fetching, lets running tasks finish
  /// within shutdown_timeout, hands the rest back, and run() returns.
  void stop() noexcept;

  WorkerStats stats() const;
  const std::string& id() const noexcept;

 private:
  friend struct detail::WorkerRun;
  friend class TaskContext;
  struct Impl;
  asio::awaitable<void> run();
  void start_run(Diagnostics* diag, asio::any_completion_handler<void(error_code)> handler);
  std::shared_ptr<Impl> impl_;
};

}  // namespace omniq
