// The worker runtime. Everything of a worker runs on one strand of the backend's executor
// (fetch loop, per-task coroutines, heartbeat, cancellation watch); blocking handlers run on
// the worker's own thread pool and post their outcome back to the strand. docs/worker.md has
// the per-task steps and what they guarantee. This unit holds the public members, the serve
// loop and its background loops (registry, heartbeat, cancellation watch); claiming and
// settling a task are in src/worker_settle.cpp, running one in src/worker_process.cpp, and the
// state they share (Worker::Impl, detail::WorkerRun) in detail/worker_impl.hpp.
#include "omniq/detail/worker_impl.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/validation.hpp"
#include "launch.hpp"

namespace omniq {

using asio::use_awaitable;

namespace {

// Fetch slices: how quickly the loop notices stop().
constexpr auto kFetchSlice = 250ms;

json progress_details(double fraction, const std::string& message) {
  json d = json::object();
  d["progress"] = fraction;
  if (!message.empty()) d["message"] = message;
  return d;
}

}  // namespace

std::string detail::default_worker_id() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof host, "host");
  std::string id = std::string(host) + "-" + std::to_string(getpid()) + "-" + new_uuid().substr(0, 8);
  for (char& ch : id)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  return id;
}

// ---- options -----------------------------------------------------------------------------------

void WorkerOptions::validate() const {
  if (queues.empty()) throw_error(errc::invalid_argument, "worker.queues: at least one queue is needed");
  for (std::size_t i = 0; i < queues.size(); ++i) validate_token("worker.queues[" + std::to_string(i) + "]", queues[i]);
  if (concurrency < 1 || concurrency > 10'000)
    throw_error(errc::invalid_argument,
                "worker.concurrency must be 1 to 10000, got " + std::to_string(concurrency));
  if (!worker_id.empty()) validate_token("worker.worker_id", worker_id);
  if (default_timeout && *default_timeout <= Duration::zero())
    throw_error(errc::invalid_argument, "worker.default_timeout must be positive");
  if (shutdown_timeout < Duration::zero()) throw_error(errc::invalid_argument, "worker.shutdown_timeout must be >= 0");
  if (cancel_grace < Duration::zero()) throw_error(errc::invalid_argument, "worker.cancel_grace must be >= 0");
  if (blocking_threads > 10'000) throw_error(errc::invalid_argument, "worker.blocking_threads must be at most 10000");
  if (dependency_poll <= Duration::zero()) throw_error(errc::invalid_argument, "worker.dependency_poll must be positive");
  if (dependency_timeout && *dependency_timeout <= Duration::zero())
    throw_error(errc::invalid_argument, "worker.dependency_timeout must be positive");
  if (heartbeat < Duration::zero()) throw_error(errc::invalid_argument, "worker.heartbeat must be >= 0");
}

// ---- the worker ----------------------------------------------------------------------------------

nlohmann::json Worker::Impl::registry_entry() const {
  json queues = json::array();
  for (const auto& q : options.queues) queues.push_back(q);
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  json entry = json::object();
  entry["worker_id"] = options.worker_id;
  entry["host"] = host;
  entry["pid"] = static_cast<long>(getpid());
  entry["queues"] = std::move(queues);
  entry["concurrency"] = options.concurrency;
  entry["started_at"] = format_timestamp(started_at);
  entry["beat_at"] = format_timestamp(now());
  entry["running"] = counters.running.load();
  entry["received"] = counters.received.load();
  entry["completed"] = counters.completed.load();
  entry["failed"] = counters.failed.load();
  entry["retried"] = counters.retried.load();
  return entry;
}

asio::awaitable<void> Worker::Impl::registry_loop() {
  auto self = shared_from_this();
  bool warned = false;
  Duration pause = registry.beat_interval();  // serve() wrote the first one
  while (!done) {
    registry_timer->expires_after(pause);
    co_await registry_timer->async_wait(asio::as_tuple(use_awaitable));
    if (done) break;
    // After a failed write, again within a second: a write lost to a leader election must not
    // let the key expire while the worker runs.
    pause = std::min<Duration>(registry.beat_interval(), 1s);
    try {
      co_await registry.beat(options.worker_id, registry_entry());
      pause = registry.beat_interval();
      warned = false;
    } catch (const Error& e) {
      if (e.kind() == errc::closed) co_return;
      if (!warned) log().warn("omniq: worker {}: writing its key in the workers bucket: {}", options.worker_id, e.what());
      warned = true;
    }
  }
  try {
    co_await registry.leave(options.worker_id);
  } catch (const Error& e) {
    log().debug("omniq: worker {}: removing its key from the workers bucket: {}", options.worker_id, e.what());
  }
}

asio::awaitable<void> Worker::Impl::heartbeat_loop() {
  auto self = shared_from_this();
  const Duration every = heartbeat();
  asio::steady_timer timer(strand);
  while (!done) {
    timer.expires_after(std::max<Duration>(every / 2, 20ms));
    co_await timer.async_wait(asio::as_tuple(use_awaitable));
    const auto t = Steady::now();
    const std::vector<std::shared_ptr<detail::WorkerRun>> running(leased.begin(), leased.end());
    for (const auto& run : running) {
      if (t - run->last_signal < every) continue;
      run->last_signal = t;
      try {
        co_await run->lease.in_progress();
      } catch (const Error& e) {
        log().debug("omniq: worker {}: in-progress signal for task {}: {}", options.worker_id, run->lease.task().id,
                    e.what());
      }
    }
  }
}

// Follows the task-state bucket for cancellations: a cancelled task this process holds is
// skipped, and a running one is asked to stop.
asio::awaitable<void> Worker::Impl::cancellation_watch() {
  auto self = shared_from_this();
  auto& connection = backend.connection();
  const std::string bucket = backend.config().task_state_bucket.name;
  const std::string stream = "KV_" + bucket;
  const std::string prefix = "$KV." + bucket + ".";
  std::string reader;
  std::uint64_t last = 0;
  auto pause = 50ms;
  while (!done) {
    bool failed = false;
    try {
      if (reader.empty()) {
        detail::ReaderOptions options{.stream = stream, .filter = prefix + ">"};
        if (last == 0) options.from = detail::ReadFrom::new_only;
        else {
          options.from = detail::ReadFrom::start_sequence;
          options.start_sequence = last + 1;
        }
        const detail::Reader created = co_await detail::create_reader(connection, std::move(options));
        reader = created.name;
        if (last == 0) last = created.start_after;
      }
      detail::FetchRequest pull{.stream = stream, .consumer = reader, .batch = 256, .no_wait = false, .expires = 1000ms};
      std::vector<detail::JsMessage> got = co_await connection.async_fetch(std::move(pull), use_awaitable);
      for (auto& m : got) {
        last = std::max(last, m.stream_sequence);
        if (m.data.empty()) continue;  // a delete marker
        try {
          const Task state = decode_task(m.data);
          if (state.status != TaskStatus::cancelled) continue;
          remember_cancelled(state.id);
          for (const auto& run : active)
            if (run->lease.task().id == state.id) run->interrupt(StopReason::cancelled, options.cancel_grace);
        } catch (const Error&) {
        }
      }
      pause = 50ms;
    } catch (const Error& e) {
      if (e.kind() == errc::closed) co_return;
      if (e.kind() == errc::permission_denied) {
        log().warn("omniq: worker {}: cannot follow task cancellations ({}); a task cancelled after this "
                   "process prefetched it will still run",
                   options.worker_id, e.what());
        co_return;
      }
      failed = true;
    }
    if (failed && !done) {
      reader.clear();  // a restart loses it: create it again from where it stood
      asio::steady_timer timer(strand, pause);
      co_await timer.async_wait(asio::as_tuple(use_awaitable));
      pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
  }
  if (!reader.empty()) co_await detail::delete_reader(connection, stream, reader);
}

asio::awaitable<void> Worker::Impl::serve() {
  auto self = shared_from_this();
  TaskQueue& tq = queue();
  // Started while the cluster elects a leader, or while the server restarts, the JetStream
  // calls that provision the streams time out: wait for them instead of failing the worker.
  auto provision = [&]() -> asio::awaitable<void> {
    co_await tq.ensure();
    co_await backend.result_store().ensure();
    co_await backend.event_log().ensure();
  };
  bool provisioned = false;
  try {
    co_await retrying("preparing the streams and buckets", {}, [this] { return stopping.load(); }, std::move(provision));
    provisioned = true;
  } catch (const Error& e) {
    if (!stopping || !is_transient(e.code())) throw;  // a stop while waiting for the cluster is no failure
  }
  if (!provisioned) {
    done = true;
    log().info("omniq: worker {} stopped before it began serving", options.worker_id);
    co_return;
  }
  tq.set_prefetch(options.concurrency);
  {
    std::lock_guard lock(handlers_mu);
    bool any_blocking = false;
    for (const auto& [name, h] : handlers) any_blocking = any_blocking || static_cast<bool>(h.blocking);
    if (any_blocking)
      pool = std::make_unique<asio::thread_pool>(options.blocking_threads ? options.blocking_threads
                                                                          : options.concurrency);
  }
  std::string served;
  for (const auto& q : options.queues) served += (served.empty() ? "" : ", ") + q;
  log().info("omniq: worker {} serving {} with concurrency {}", options.worker_id, served, options.concurrency);
  // Other workers judge this one's claims by its key: it is written before the first claim
  // (retried through an election like the provisioning above), then kept by registry_loop.
  registry_timer.emplace(strand);
  bool registered = true;
  try {
    auto first_beat = [&]() -> asio::awaitable<void> { co_await registry.beat(options.worker_id, registry_entry()); };
    co_await retrying("writing its key in the workers bucket", {}, [this] { return stopping.load(); },
                      std::move(first_beat));
  } catch (const Error& e) {
    if (e.kind() != errc::permission_denied && e.kind() != errc::closed && !stopping) throw;
    registered = false;
    if (e.kind() == errc::permission_denied)
      log().warn("omniq: worker {}: cannot write the workers bucket ({}); other workers take over this one's claims "
               "as if it had stopped (docs/security.md lists the permissions)",
               options.worker_id, e.what());
  }
  if (registered) asio::co_spawn(strand, registry_loop(), asio::detached);
  asio::co_spawn(strand, heartbeat_loop(), asio::detached);
  asio::co_spawn(strand, cancellation_watch(), asio::detached);

  auto pause = 50ms;
  while (!stopping) {
    if (in_flight >= options.concurrency) {
      co_await wake->wait(std::chrono::duration_cast<std::chrono::milliseconds>(kFetchSlice));
      continue;
    }
    std::vector<Lease> leases;
    bool failed = false;
    try {
      leases = co_await tq.dequeue_batch(options.queues, options.concurrency - in_flight, kFetchSlice);
      pause = 50ms;
    } catch (const Error& e) {
      if (e.kind() == errc::closed) break;
      log().warn("omniq: worker {}: dequeue failed: {}", options.worker_id, e.what());
      failed = true;
    }
    if (failed) {
      asio::steady_timer timer(strand, pause);
      co_await timer.async_wait(use_awaitable);
      pause = std::min(pause * 2, std::chrono::milliseconds(2000));
      continue;
    }
    for (auto& lease : leases) {
      auto run = std::make_shared<detail::WorkerRun>(self, std::move(lease), strand);
      ++in_flight;
      auto finished = [self, run](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            self->log().error("omniq: worker {}: task {} left unsettled ({}); the server redelivers it after ack_wait",
                              self->options.worker_id, run->lease.task().id, x.what());
          }
        }
        --self->in_flight;
        self->wake->ring();
      };
      asio::co_spawn(strand, process(run), std::move(finished));
    }
  }

  // Graceful shutdown: nothing new; what this process prefetched goes back at once.
  counters.handed_back += tq.hand_back(options.queues);
  const auto until = Steady::now() + options.shutdown_timeout;
  while (in_flight > 0 && Steady::now() < until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now());
    co_await wake->wait(std::clamp(left, 1ms, 100ms));
  }
  if (in_flight > 0) {
    log().warn("omniq: worker {}: {} task(s) still running after the shutdown timeout; handing them back",
               options.worker_id, active.size());
    for (const auto& run : active) run->interrupt(StopReason::shutdown, Duration::zero());
    while (in_flight > 0) co_await wake->wait(100ms);
  }
  done = true;
  if (registry_timer) registry_timer->cancel();
  log().info("omniq: worker {} stopped", options.worker_id);
}

// ---- TaskContext -----------------------------------------------------------------------------

const Task& TaskContext::task() const noexcept { return run_->lease.task(); }
std::uint64_t TaskContext::delivery() const noexcept { return run_->lease.delivery(); }
const std::string& TaskContext::worker_id() const noexcept { return run_->worker->options.worker_id; }
bool TaskContext::cancelled() const noexcept { return run_->stop.stop_requested(); }
StopReason TaskContext::stop_reason() const noexcept { return run_->reason.load(); }
std::stop_token TaskContext::stop_token() const noexcept { return run_->stop.get_token(); }

asio::awaitable<void> TaskContext::progress(double fraction, std::string message) {
  if (!(fraction >= 0.0 && fraction <= 1.0))  // NaN too
    throw_error(errc::invalid_argument, "progress: the fraction must be from 0 to 1, got " + std::to_string(fraction));
  auto run = run_->shared_from_this();
  auto& worker = *run->worker;
  co_await run->lease.in_progress();
  run->last_signal = Steady::now();
  TaskEvent event = worker.tagged(events::executing(run->lease.task().id, worker.options.worker_id), run->lease.task());
  event.details = progress_details(fraction, message);
  event.message = message.empty() ? std::optional<std::string>{} : std::optional<std::string>{message};
  co_await worker.backend.event_log().log_event(std::move(event));
  // Readable on the task too (get_task): stored with this run's claim, unless the run has
  // settled meanwhile (a progress report not awaited by its handler).
  run->progress = fraction;
  run->progress_message = message.empty() ? std::optional<std::string>{} : std::optional<std::string>{message};
  if (run->claim_revision == 0 || run->finished || run->abandoned) co_return;
  const TaskResult claim =
      worker.stamped(TaskResult{.task_id = run->lease.task().id, .status = ResultStatus::pending}, *run);
  if (!co_await worker.store_result(*run, claim))
    worker.log().debug("omniq: worker {}: progress of task {} not stored: another run holds its claim",
                       worker.options.worker_id, run->lease.task().id);
}

asio::any_io_executor TaskContext::executor() const { return run_->worker->strand; }

void TaskContext::report_progress(double fraction, std::string message) {
  detail::wait_blocking<void>(executor(), "TaskContext::report_progress",
                              [&](auto t) { return async_progress(fraction, std::move(message), t); });
}

// ---- Worker ----------------------------------------------------------------------------------

Worker::Worker(NatsBackend& backend, WorkerOptions options) {
  options.validate();
  impl_ = std::make_shared<Impl>(backend, std::move(options));
}

Worker::~Worker() { stop(); }

void Worker::handle(std::string name, Handler handler) {
  const bool empty = !handler;
  impl_->add(std::move(name), Impl::Entry{.coroutine = std::move(handler)}, empty, "worker.handle");
}

void Worker::handle_blocking(std::string name, BlockingHandler handler) {
  const bool empty = !handler;
  impl_->add(std::move(name), Impl::Entry{.blocking = std::move(handler)}, empty, "worker.handle_blocking");
}

asio::awaitable<void> Worker::run() {
  if (impl_->started.exchange(true)) throw_error(errc::invalid_argument, "worker.run: the worker already ran");
  auto impl = impl_;
  co_await asio::co_spawn(impl->strand, impl->serve(), use_awaitable);
}

void Worker::start_run(Diagnostics* diag, asio::any_completion_handler<void(error_code)> handler) {
  detail::launch_stoppable(impl_->backend.get_executor(), run(), diag, std::move(handler),
                           [impl = impl_] { impl->request_stop(); });
}

void Worker::run_sync() {
  detail::wait_blocking<void>(impl_->backend.get_executor(), "Worker::run", [&](auto t) { return async_run(t); });
}

void Worker::run_sync(error_code& ec, Diagnostics& diag) {
  detail::wait_blocking<void>(impl_->backend.get_executor(), "Worker::run", [&](auto t) { return async_run(t); }, ec,
                              diag);
}

void Worker::run_until_signal() {
  asio::signal_set signals(impl_->backend.get_executor(), SIGINT, SIGTERM);
  signals.async_wait([impl = impl_](boost::system::error_code ec, int signal) {
    if (ec) return;
    impl->log().info("omniq: worker {} received signal {}; shutting down", impl->options.worker_id, signal);
    impl->request_stop();
  });
  run_sync();
  signals.cancel();
}

void Worker::stop() noexcept { impl_->request_stop(); }

WorkerStats Worker::stats() const {
  const auto& c = impl_->counters;
  return WorkerStats{.received = c.received,
                     .completed = c.completed,
                     .retried = c.retried,
                     .failed = c.failed,
                     .dead_lettered = c.dead_lettered,
                     .cancelled = c.cancelled,
                     .deferred = c.deferred,
                     .already_done = c.already_done,
                     .duplicates = c.duplicates,
                     .held = c.held,
                     .handed_back = c.handed_back,
                     .running = c.running};
}

const std::string& Worker::id() const noexcept { return impl_->options.worker_id; }

}  // namespace omniq
