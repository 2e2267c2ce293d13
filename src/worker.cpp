// The worker runtime. Everything of a worker runs on one strand of the backend's executor
// (fetch loop, per-task coroutines, heartbeat, cancellation watch); blocking handlers run on
// the worker's own thread pool and post their outcome back to the strand. docs/worker.md has
// the per-task steps and what they guarantee.
#include "omniq/detail/connection.hpp"
#include "omniq/worker.hpp"

#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/claim.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/kv.hpp"
#include "omniq/detail/retry.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/detail/worker_registry.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/validation.hpp"
#include "launch.hpp"

namespace omniq {

using asio::use_awaitable;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// Storing a task's outcome is retried this long (the task keeps its lease meanwhile) before
// the worker gives up and lets the server redeliver it.
constexpr auto kPersistFor = 60s;
// Result metadata the worker records: the deduplication id of the outcome's event, and the
// reason a failed task was dead-lettered with (both used again by settle_stored).
constexpr const char* kOutcomeEventKey = "outcome_event";
constexpr const char* kDeadLetterKey = "dead_letter_reason";
// Fetch slices: how quickly the loop notices stop().
constexpr auto kFetchSlice = 250ms;
// Cancelled task ids remembered, and for how long.
constexpr std::size_t kCancelledKept = 100'000;
constexpr auto kCancelledFor = std::chrono::hours(1);

std::string demangled(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

std::string default_worker_id() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof host, "host");
  std::string id = std::string(host) + "-" + std::to_string(getpid()) + "-" + new_uuid().substr(0, 8);
  for (char& ch : id)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  return id;
}

// The text of a failure, for logs.
std::string what_of(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

// Of several failures of operations run together, the one to report: a failure no retry can
// fix before a passing one.
void rethrow_worst(std::initializer_list<std::exception_ptr> failures) {
  std::exception_ptr first;
  for (const auto& f : failures) {
    if (!f) continue;
    if (!detail::is_transient(f)) std::rethrow_exception(f);
    if (!first) first = f;
  }
  if (first) std::rethrow_exception(first);
}

struct Failure {
  std::string type;
  std::string message;
  bool retryable = true;
};

Failure describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const TaskError& e) {
    return {e.type(), e.what(), e.retryable()};
  } catch (const std::exception& e) {
    return {demangled(typeid(e)), e.what(), true};
  } catch (...) {
    return {"unknown", "a handler threw something that is not a std::exception", true};
  }
}

json progress_details(double fraction, const std::string& message) {
  json d = json::object();
  d["progress"] = fraction;
  if (!message.empty()) d["message"] = message;
  return d;
}

}  // namespace

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
  if (heartbeat < Duration::zero()) throw_error(errc::invalid_argument, "worker.heartbeat must be >= 0");
}

// ---- one task being worked on ------------------------------------------------------------------


namespace detail {

struct WorkerRun : std::enable_shared_from_this<WorkerRun> {
  WorkerRun(std::shared_ptr<Worker::Impl> worker, Lease lease, asio::any_io_executor strand)
      : worker(std::move(worker)), lease(std::move(lease)), context(*this), wake(strand) {
    wake.expires_at(Steady::time_point::max());
  }

  std::shared_ptr<Worker::Impl> worker;
  Lease lease;
  TaskContext context;
  std::string claim_id;              // unique per run: recognises this run's own writes
  std::uint64_t claim_revision = 0;  // of this run's pending result; 0 before the claim
  std::optional<TaskResult> stored_outcome;  // found by the claim: the task already ran
  bool start_pending = false;                       // the start events are being logged
  std::optional<asio::steady_timer> start_logged;  // cancelled once they are
  Timestamp started_at = now();
  Steady::time_point last_signal = Steady::now();

  // Stopping the handler.
  asio::cancellation_signal signal;  // emitted on the strand
  std::stop_source stop;
  std::atomic<StopReason> reason{StopReason::none};

  // The handler's outcome; all on the strand.
  bool finished = false;   // the handler returned or threw
  bool abandoned = false;  // settled without waiting for the handler any longer
  json value{};
  std::exception_ptr error{};
  asio::steady_timer wake;                     // cancelled when finished or abandoned
  std::optional<asio::steady_timer> deadline;  // the task's timeout, if it has one
  std::optional<asio::steady_timer> grace;     // after a stop request, how long the handler may still take

  // On the strand.
  void finish(std::exception_ptr e, json v) {
    if (finished) return;
    finished = true;
    if (abandoned) return;  // already settled; its outcome is discarded
    error = std::move(e);
    value = std::move(v);
    wake.cancel();
  }
  void abandon() {
    if (finished || abandoned) return;
    abandoned = true;
    wake.cancel();
  }
  // On the strand: asks the handler to stop; after `grace_period` the attempt is settled
  // without it.
  void interrupt(StopReason why, Duration grace_period) {
    if (finished || abandoned) return;
    StopReason expected = StopReason::none;
    reason.compare_exchange_strong(expected, why);
    stop.request_stop();
    signal.emit(asio::cancellation_type::terminal);
    if (grace_period <= Duration::zero()) {
      abandon();
      return;
    }
    grace.emplace(wake.get_executor(), grace_period);
    grace->async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->abandon();
    });
  }
};

}  // namespace detail

// ---- the worker ----------------------------------------------------------------------------------

struct Worker::Impl : std::enable_shared_from_this<Worker::Impl> {
  struct Entry {
    Handler coroutine{};
    BlockingHandler blocking{};
  };

  Impl(NatsBackend& b, WorkerOptions o)
      : backend(b),
        options(std::move(o)),
        strand(asio::make_strand(b.get_executor())),
        wake(std::make_shared<detail::Doorbell>(strand)),
        rng(std::random_device{}()) {
    if (options.worker_id.empty()) options.worker_id = default_worker_id();
    claim_prefix = options.worker_id + "." + new_uuid().substr(0, 8) + ".";
  }
  ~Impl() {
    if (pool) pool->join();
  }

  NatsBackend& backend;
  WorkerOptions options;
  asio::any_io_executor strand;
  std::shared_ptr<detail::Doorbell> wake;  // rung on stop() and when a task finishes

  std::mutex handlers_mu;
  std::map<std::string, Entry> handlers;  // fixed once running
  std::unique_ptr<asio::thread_pool> pool;

  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};
  // Thread-safe: the run stops fetching and drains (Worker::stop, a signal, a cancelled run).
  void request_stop() noexcept {
    stopping = true;
    wake->ring();
  }
  bool done = false;  // strand: run() finished; background loops end

  // Strand only.
  std::set<std::shared_ptr<detail::WorkerRun>> active;
  // Runs from delivery to settlement: their leases are kept alive by the heartbeat.
  std::set<std::shared_ptr<detail::WorkerRun>> leased;
  // Runs of each task id under way in this process (from delivery to settlement).
  std::unordered_map<std::string, int> holding;
  std::uint64_t claims_made = 0;
  // "<worker id>.<instance>.": begins every claim id of this Worker object, so its claims are
  // told from those of another process configured with the same worker_id.
  std::string claim_prefix;
  detail::WorkerRegistry registry{backend};
  bool registry_refused = false;  // the user may not read or write the workers bucket (warned once)
  std::optional<asio::steady_timer> registry_timer;  // the registry loop's pause; cancelled at the end
  Timestamp started_at = now();
  std::size_t in_flight = 0;  // process() coroutines, including ones not running a handler
  std::unordered_map<std::string, Steady::time_point> cancelled_ids;
  std::deque<std::pair<std::string, Steady::time_point>> cancelled_order;
  std::mt19937_64 rng;

  struct Counters {
    std::atomic<std::uint64_t> received{0}, completed{0}, retried{0}, failed{0}, dead_lettered{0}, cancelled{0},
        deferred{0}, already_done{0}, duplicates{0}, held{0}, handed_back{0}, running{0};
  } counters;

  spdlog::logger& log() { return backend.log(); }
  TaskQueue& queue() { return backend.task_queue(); }
  Duration heartbeat() const {
    if (options.heartbeat > Duration::zero()) return options.heartbeat;
    return std::max<Duration>(std::chrono::duration_cast<Duration>(backend.config().ack_wait) / 3, 100ms);
  }

  void remember_cancelled(const std::string& id) {
    const auto t = Steady::now();
    cancelled_ids[id] = t;
    cancelled_order.emplace_back(id, t);
    while (!cancelled_order.empty() &&
           (cancelled_order.size() > kCancelledKept || cancelled_order.front().second < t - kCancelledFor)) {
      auto it = cancelled_ids.find(cancelled_order.front().first);
      if (it != cancelled_ids.end() && it->second == cancelled_order.front().second) cancelled_ids.erase(it);
      cancelled_order.pop_front();
    }
  }

  Duration jittered(Duration backoff) {
    // Equal jitter: half fixed, half random, so retries of many tasks do not come back at once.
    if (backoff <= Duration::zero()) return backoff;
    std::uniform_int_distribution<Duration::rep> half(0, backoff.count() / 2);
    return Duration(backoff.count() - backoff.count() / 2 + half(rng));
  }

  std::optional<Duration> timeout_of(const Task& t) const { return t.timeout ? t.timeout : options.default_timeout; }

  // Registers a handler under `name`; `call` names the public call in errors.
  void add(std::string name, Entry entry, bool empty, const char* call) {
    if (empty) throw_error(errc::invalid_argument, std::string(call) + "(\"" + name + "\"): the handler is empty");
    if (name.empty()) throw_error(errc::invalid_argument, std::string(call) + ": the function name is empty");
    if (started) throw_error(errc::invalid_argument, std::string(call) + "(\"" + name + "\"): the worker already runs");
    std::lock_guard lock(handlers_mu);
    if (!handlers.emplace(name, std::move(entry)).second)
      throw_error(errc::invalid_argument, std::string(call) + ": \"" + name + "\" is already registered");
  }

  asio::awaitable<void> serve();
  asio::awaitable<void> process(std::shared_ptr<detail::WorkerRun> run);
  asio::awaitable<void> execute(std::shared_ptr<detail::WorkerRun> run, const Entry& entry);
  asio::awaitable<void> heartbeat_loop();
  asio::awaitable<void> cancellation_watch();
  template <class Op>
  asio::awaitable<void> persist(const char* what, const std::string& task_id, Op op);
  // Runs `op` (a callable returning awaitable<void>) again, after a pause growing from 50 ms
  // to 2 s, while it fails with an error that may pass (a reconnect, a timeout) and
  // `give_up()` is false; logs each failure as "<what>[ for task <task_id>]".
  template <class Op, class GiveUp>
  asio::awaitable<void> retrying(const char* what, std::string_view task_id, GiveUp give_up, Op op);
  asio::awaitable<void> settle_failure(std::shared_ptr<detail::WorkerRun> run, Failure failure,
                                       std::string dead_letter_reason);
  // Stores the outcome (result, its event, and the task state when given), retrying through
  // outages. False when another worker took the task over (nothing must be acked then).
  asio::awaitable<bool> store_outcome(std::shared_ptr<detail::WorkerRun> run, TaskResult result,
                                      const TaskEvent& event, std::optional<TaskStatus> state);
  enum class Claim { run, done, superseded, held };
  // A redelivery of the message whose outcome is stored: the worker that stored it may have
  // died before its event or dead letter were stored too (they follow the result), so both
  // are written again, deduplicated by the ids the first writes used. Then the message is
  // settled.
  asio::awaitable<void> settle_stored(std::shared_ptr<detail::WorkerRun> run);
  asio::awaitable<Claim> claim_run(std::shared_ptr<detail::WorkerRun> run);
  // Whether the worker holding a claim is alive (its key in the workers bucket).
  asio::awaitable<bool> holder_alive(const std::string& worker_id);
  // Stores the final result: over the claim (compare-and-set) when there is one. A failed
  // compare-and-set is judged on the result read through the leader: this run's own write
  // that landed counts as stored, this run's claim at another revision is written over. False
  // when another worker took the task over (this run's lease had expired).
  asio::awaitable<bool> store_result(detail::WorkerRun& run, const TaskResult& result);
  // Writes this worker's key in the workers bucket while it runs; removes it at the end.
  asio::awaitable<void> registry_loop();
  nlohmann::json registry_entry() const;
  asio::awaitable<void> settle_cancelled(std::shared_ptr<detail::WorkerRun> run, bool ran);
  // `result` with what every result of this run carries: worker, start, execution time,
  // and the message and attempt it came from (metadata "message", "attempts").
  TaskResult stamped(TaskResult result, const detail::WorkerRun& run) const;
  asio::awaitable<void> acknowledge(std::shared_ptr<detail::WorkerRun> run);
  // `event` naming this worker and the task's queue.
  TaskEvent tagged(TaskEvent event, const Task& task) const;
  // "met", "wait", or the reason a dependency can never be met.
  asio::awaitable<std::string> dependencies_state(const Task& task);
};

template <class Op, class GiveUp>
asio::awaitable<void> Worker::Impl::retrying(const char* what, std::string_view task_id, GiveUp give_up, Op op) {
  // Whatever mix of failures arrives (several parallel writes failing together included),
  // one classifier decides: omniq::is_transient.
  auto log_retry = [&](const std::exception_ptr& failure, std::chrono::milliseconds pause) {
    log().warn("omniq: worker {}: {}{}{} failed ({}); retrying in {} ms", options.worker_id, what,
               task_id.empty() ? "" : " for task ", task_id, what_of(failure), pause.count());
  };
  co_await detail::retry_transient(std::move(op), [&](std::chrono::milliseconds) { return give_up(); }, log_retry,
                                   50ms, 2000ms);
}

// Retries `op` while the failure may be passing, up to kPersistFor; the task's lease is kept
// alive meanwhile.
template <class Op>
asio::awaitable<void> Worker::Impl::persist(const char* what, const std::string& task_id, Op op) {
  const auto until = Steady::now() + kPersistFor;
  co_await retrying(what, task_id, [until] { return Steady::now() >= until; }, std::move(op));
}

asio::awaitable<void> Worker::Impl::execute(std::shared_ptr<detail::WorkerRun> run, const Entry& entry) {
  if (const auto limit = timeout_of(run->lease.task())) {
    run->deadline.emplace(strand, *limit);
    run->deadline->async_wait([run, grace = options.cancel_grace](boost::system::error_code ec) {
      if (!ec) run->interrupt(StopReason::timeout, grace);
    });
  }
  if (entry.coroutine) {
    // The handlers are fixed once the worker runs and live as long as it (run->worker): no
    // copy of the std::function per task.
    auto invoke = [](std::shared_ptr<detail::WorkerRun> r, const Handler* h) -> asio::awaitable<json> {
      co_return co_await (*h)(r->context, r->lease.task().args, r->lease.task().kwargs);
    };
    auto done = [run](std::exception_ptr e, json v) { run->finish(std::move(e), std::move(v)); };
    asio::co_spawn(strand, invoke(run, &entry.coroutine), asio::bind_cancellation_slot(run->signal.slot(), std::move(done)));
  } else {
    asio::post(*pool, [run, handler = &entry.blocking, strand = strand]() mutable {
      json value;
      std::exception_ptr error;
      try {
        value = (*handler)(run->context, run->lease.task().args, run->lease.task().kwargs);
      } catch (...) {
        error = std::current_exception();
      }
      // The run moves into the completion, so its last reference never drops on a pool thread.
      asio::post(strand, [run = std::move(run), error = std::move(error), value = std::move(value)]() mutable {
        run->finish(std::move(error), std::move(value));
      });
    });
  }
  if (!run->finished && !run->abandoned) co_await run->wake.async_wait(asio::as_tuple(use_awaitable));
  if (run->deadline) run->deadline->cancel();
  if (run->grace) run->grace->cancel();
}

// Acknowledged without waiting for the server: a lost ack only means a redelivery, which
// the claim turns into an ack without a rerun.
asio::awaitable<void> Worker::Impl::acknowledge(std::shared_ptr<detail::WorkerRun> run) {
  auto ack = [&]() -> asio::awaitable<void> { co_await run->lease.ack_unconfirmed(); };
  co_await persist("acknowledging", run->lease.task().id, std::move(ack));
}

TaskResult Worker::Impl::stamped(TaskResult result, const detail::WorkerRun& run) const {
  result.worker_id = options.worker_id;
  result.started_at = run.started_at;
  if (result.completed_at)
    result.execution_time = std::chrono::duration_cast<Duration>(*result.completed_at - run.started_at);
  result.metadata[detail::kClaimMessageKey] = run.lease.stream_sequence();
  result.metadata[detail::kClaimAttemptsKey] = run.lease.task().retry_count + 1;
  if (!run.claim_id.empty()) result.metadata[detail::kClaimIdKey] = run.claim_id;
  return result;
}

TaskEvent Worker::Impl::tagged(TaskEvent event, const Task& task) const {
  event.worker_id = options.worker_id;
  event.queue_name = task.queue_name;
  return event;
}

asio::awaitable<bool> Worker::Impl::holder_alive(const std::string& worker_id) {
  if (registry_refused) co_return false;
  try {
    co_return co_await registry.alive(worker_id);
  } catch (const Error& e) {
    if (e.kind() != errc::permission_denied) throw;
    registry_refused = true;
    log().warn("omniq: worker {}: cannot read the workers bucket ({}); a claim held by another worker is taken over "
               "without knowing whether it still runs (docs/security.md lists the permissions)",
               options.worker_id, e.what());
    co_return false;
  }
}

asio::awaitable<Worker::Impl::Claim> Worker::Impl::claim_run(std::shared_ptr<detail::WorkerRun> run) {
  const Task& t = run->lease.task();
  auto& results = backend.result_store();
  run->claim_id = claim_prefix + std::to_string(++claims_made);
  const TaskResult claim = stamped(TaskResult{.task_id = t.id, .status = ResultStatus::pending}, *run);
  // Every doubt (a write that timed out, a conflict) is settled by reading the result through
  // the bucket's leader, never a replica: only then is anything acked or run.
  for (int round = 0; round < 4; ++round) {
    std::optional<std::uint64_t> written;
    auto create = [&]() -> asio::awaitable<void> { written = co_await results.create(claim); };
    co_await persist("claiming", t.id, std::move(create));
    if (written) {
      run->claim_revision = *written;
      co_return Claim::run;
    }
    std::optional<ResultRecord> stored;
    auto read = [&]() -> asio::awaitable<void> { stored = co_await results.get_record(t.id); };
    co_await persist("reading the claim", t.id, std::move(read));
    std::optional<TaskResult> result;
    if (stored) result = stored->result;
    // This run counts itself in `holding`: another run here means more than one.
    const auto held_here = holding.find(t.id);
    const detail::ClaimAsker asker{.claim_id = run->claim_id, .claim_prefix = claim_prefix,
                                   .attempt = t.retry_count + 1,
                                   .runs_here = held_here != holding.end() && held_here->second > 1};
    auto verdict = detail::judge_claim(result, asker);
    if (verdict == detail::ClaimVerdict::ask_holder) {
      bool alive = true;
      auto ask = [&]() -> asio::awaitable<void> { alive = co_await holder_alive(*result->worker_id); };
      co_await persist("asking whether the claim's worker runs", t.id, std::move(ask));
      verdict = detail::judge_claim(result, asker, alive);
    }
    switch (verdict) {
      case detail::ClaimVerdict::claim_again:
        continue;
      case detail::ClaimVerdict::ours:
        run->claim_revision = stored->revision;
        co_return Claim::run;
      case detail::ClaimVerdict::done:
        run->stored_outcome = std::move(result);
        co_return Claim::done;
      case detail::ClaimVerdict::superseded:
        co_return Claim::superseded;
      case detail::ClaimVerdict::held:
      case detail::ClaimVerdict::ask_holder:
        co_return Claim::held;
      case detail::ClaimVerdict::take_over:
        break;
    }
    log().info("omniq: worker {}: taking over the claim on task {} (held by {}, attempt {})", options.worker_id, t.id,
               result->worker_id.value_or("nobody"), result->metadata.value(detail::kClaimAttemptsKey, 0));
    auto take = [&]() -> asio::awaitable<void> { written = co_await results.update(claim, stored->revision); };
    co_await persist("taking over the claim", t.id, std::move(take));
    if (written) {
      run->claim_revision = *written;
      co_return Claim::run;
    }
    // Someone wrote first, or this take-over landed and its answer was lost: read again.
  }
  // Still in doubt: set the delivery aside rather than ack it.
  co_return Claim::held;
}

asio::awaitable<bool> Worker::Impl::store_result(detail::WorkerRun& run, const TaskResult& result) {
  auto& results = backend.result_store();
  if (run.claim_revision == 0) {
    co_await results.set(result);
    co_return true;
  }
  for (int round = 0; round < 4; ++round) {
    const auto written = co_await results.update(result, run.claim_revision);
    if (written) {
      run.claim_revision = *written;
      co_return true;
    }
    std::optional<ResultRecord> stored = co_await results.get_record(result.task_id);
    if (!stored) {  // deleted meanwhile: nobody holds the task now
      const auto created = co_await results.create(result);
      if (created) {
        run.claim_revision = *created;
        co_return true;
      }
      continue;
    }
    std::optional<TaskResult> current = std::move(stored->result);
    if (detail::is_own_outcome(current, run.claim_id)) {  // an earlier try landed
      run.claim_revision = stored->revision;
      co_return true;
    }
    if (current->status == ResultStatus::pending &&
        detail::claim_id_of(*current) == run.claim_id) {
      run.claim_revision = stored->revision;  // still this run's claim, at the leader's revision
      continue;
    }
    log().warn("omniq: worker {}: task {} was taken over by {} (this run's lease had expired); its outcome here is "
               "dropped and the delivery is not acked",
               options.worker_id, result.task_id, current->worker_id.value_or("another worker"));
    co_return false;
  }
  throw_error(errc::timeout, "storing the result of task " + result.task_id +
                                 ": the claim kept changing under this run's writes");
}

asio::awaitable<std::string> Worker::Impl::dependencies_state(const Task& task) {
  auto& results = backend.result_store();
  for (const auto& dep : task.dependencies) {
    std::optional<TaskResult> r = co_await results.get(dep);
    if (!r || r->status == ResultStatus::pending) co_return "wait";
    if (r->status != ResultStatus::success)
      co_return "dependency " + dep + " ended " + std::string(to_string(r->status)) +
          (r->error ? ": " + *r->error : std::string());
  }
  co_return "met";
}

asio::awaitable<bool> Worker::Impl::store_outcome(std::shared_ptr<detail::WorkerRun> run, TaskResult result,
                                                  const TaskEvent& event, std::optional<TaskStatus> state) {
  // The event's deduplication id, recorded in the result so that settle_stored can write the
  // event again without storing it twice. Per claim: two workers that ran the same message
  // (one whose lease had expired) log their events under different ids.
  const std::string dedup_id = "outcome-" + result.task_id + "-" + std::to_string(run->lease.stream_sequence()) +
                               "-" + std::to_string(run->claim_revision);
  result.metadata[kOutcomeEventKey] = dedup_id;
  // The result first: the event says what the result holds, so it is written only once the
  // result is stored (a crash in between is mended by settle_stored, under the recorded id;
  // a run whose claim was taken over logs nothing). Then the event and the task state in
  // parallel; what succeeded is not repeated when a retry follows a partial failure.
  bool kept = true;
  auto put_result = [&]() -> asio::awaitable<void> { kept = co_await store_result(*run, result); };
  co_await persist("storing the result", result.task_id, std::move(put_result));
  if (!kept) co_return false;
  bool event_done = false, state_done = !state;
  auto put_event = [&]() -> asio::awaitable<void> {
    if (event_done) co_return;
    co_await backend.event_log().log_event(event, dedup_id);
    event_done = true;
  };
  auto put_state = [&]() -> asio::awaitable<void> {
    if (state_done) co_return;
    Task task = run->lease.task();
    task.status = *state;
    detail::KvBucket bucket(backend.connection(), backend.config().task_state_bucket.name);
    co_await bucket.put(task.id, encode(task));
    state_done = true;
  };
  // Each write runs to its end (none is cancelled when the other fails), then the worse
  // failure is reported to the retry loop.
  auto store = [&]() -> asio::awaitable<void> {
    auto [order, event_error, state_error] =
        co_await asio::experimental::make_parallel_group(asio::co_spawn(strand, put_event(), asio::deferred),
                                                         asio::co_spawn(strand, put_state(), asio::deferred))
            .async_wait(asio::experimental::wait_for_all(), use_awaitable);
    rethrow_worst({event_error, state_error});
  };
  co_await persist("storing the outcome's event", result.task_id, std::move(store));
  co_return true;
}

asio::awaitable<void> Worker::Impl::settle_cancelled(std::shared_ptr<detail::WorkerRun> run, bool ran) {
  const Task& t = run->lease.task();
  TaskResult cancelled{.task_id = t.id, .status = ResultStatus::cancelled, .completed_at = now()};
  if (ran) cancelled.error = "cancelled while running";
  TaskResult result = stamped(std::move(cancelled), *run);
  const TaskEvent event = tagged(events::cancelled(t.id), t);
  if (!co_await store_outcome(run, std::move(result), event, std::nullopt)) co_return;
  co_await acknowledge(run);
  ++counters.cancelled;
}

asio::awaitable<void> Worker::Impl::settle_stored(std::shared_ptr<detail::WorkerRun> run) {
  const Task& t = run->lease.task();
  const TaskResult& r = *run->stored_outcome;
  const bool same_message = r.metadata.value("message", std::uint64_t{0}) == run->lease.stream_sequence();
  const std::string dedup_id = r.metadata.value(kOutcomeEventKey, std::string());
  // The event is written again when this is the message that stored the outcome, or when the
  // outcome is recent enough for the events stream to still know its id (its duplicate window,
  // less a margin): the outcome's worker may have died before the event, and the message may
  // have been set aside (a new message of the same task) meanwhile. Later, another message of
  // the same task id (enqueued again) is only acked: the event is not written twice.
  const auto window = std::chrono::duration_cast<Duration>(backend.config().events_stream.duplicate_window);
  const bool recent = r.completed_at && now() - *r.completed_at < window - std::min<Duration>(window / 4, 30s);
  if (dedup_id.empty() || (!same_message && !recent)) {
    co_await acknowledge(run);
    co_return;
  }
  std::optional<TaskEvent> event;
  if (r.status == ResultStatus::success)
    event = events::completed(t.id, r.execution_time.value_or(Duration::zero()), r.worker_id.value_or(""));
  else if (r.status == ResultStatus::error)
    event = events::failed(t.id, r.error_type.value_or(""), r.error.value_or(""));
  else if (r.status == ResultStatus::cancelled)
    event = events::cancelled(t.id);
  if (event) {
    event->worker_id = r.worker_id;
    event->queue_name = t.queue_name;
    auto relog = [&]() -> asio::awaitable<void> { co_await backend.event_log().log_event(*event, dedup_id); };
    co_await persist("logging the stored outcome's event", t.id, std::move(relog));
  }
  if (r.status == ResultStatus::error && same_message) {
    // Every failure the worker stores is dead-lettered; the letter is deduplicated by this
    // message, so a letter written before the crash is not written twice.
    std::string reason = r.metadata.value(kDeadLetterKey, "failed: " + r.error_type.value_or("") + ": " +
                                                              r.error.value_or(""));
    auto letter = [&]() -> asio::awaitable<void> { co_await run->lease.dead_letter(reason); };
    co_await persist("dead-lettering", t.id, std::move(letter));
    co_return;
  }
  co_await acknowledge(run);
}

asio::awaitable<void> Worker::Impl::settle_failure(std::shared_ptr<detail::WorkerRun> run, Failure failure,
                                                   std::string dead_letter_reason) {
  const Task& t = run->lease.task();
  TaskResult result = stamped(TaskResult::failure(t.id, failure.type, failure.message), *run);
  result.metadata[kDeadLetterKey] = dead_letter_reason;
  const TaskEvent event = tagged(events::failed(t.id, failure.type, failure.message), t);
  if (!co_await store_outcome(run, std::move(result), event, TaskStatus::failed)) co_return;
  auto letter = [&]() -> asio::awaitable<void> { co_await run->lease.dead_letter(dead_letter_reason); };
  co_await persist("dead-lettering", t.id, std::move(letter));
  ++counters.failed;
  ++counters.dead_lettered;
}

asio::awaitable<void> Worker::Impl::process(std::shared_ptr<detail::WorkerRun> run) {
  const Task& t = run->lease.task();
  ++counters.received;
  // From delivery to settlement the lease is kept (in-progress signals), also while the claim
  // is judged and the outcome stored through an outage: a redelivery meanwhile would spend
  // max_deliver. And this process's runs of a task id are counted from the start, so a second
  // delivery here never takes over a claim a run here is still making.
  leased.insert(run);
  ++holding[t.id];
  struct Release {
    Impl& impl;
    const std::shared_ptr<detail::WorkerRun>& run;
    ~Release() {
      impl.leased.erase(run);
      const auto& id = run->lease.task().id;
      if (auto it = impl.holding.find(id); it != impl.holding.end() && --it->second <= 0) impl.holding.erase(it);
    }
  } release{*this, run};

  // Dependencies not met yet: put back before anything is claimed (nothing is stored).
  std::string dependency_failure;
  if (!t.dependencies.empty()) {
    const std::string state = co_await dependencies_state(t);
    if (state == "wait") {
      auto defer = [&]() -> asio::awaitable<void> { co_await run->lease.defer(options.dependency_poll); };
      co_await persist("deferring until dependencies complete", t.id, std::move(defer));
      ++counters.deferred;
      co_return;
    }
    if (state != "met") dependency_failure = state;
  }

  // The claim: a pending result created only if the task has none, so a task id runs once
  // however often it was enqueued or delivered. Every outcome below is stored over it (no
  // outcome ever replaces a result this run has not claimed).
  run->started_at = now();
  const Claim claim = co_await claim_run(run);
  if (claim == Claim::done) {
    co_await settle_stored(run);
    ++counters.already_done;
    co_return;
  }
  if (claim == Claim::superseded) {
    co_await acknowledge(run);
    ++counters.duplicates;
    co_return;
  }
  if (claim == Claim::held) {
    // A live run holds the task (or the claim stayed in doubt): this delivery comes back
    // later, when that run has stored its outcome or is gone. Deferred, not nacked, so waiting
    // spends none of max_deliver.
    auto aside = [&]() -> asio::awaitable<void> { co_await run->lease.defer(heartbeat()); };
    co_await persist("setting aside a task another run holds", t.id, std::move(aside));
    ++counters.held;
    co_return;
  }

  if (cancelled_ids.count(t.id)) {
    co_await settle_cancelled(run, false);
    co_return;
  }
  // The handlers are fixed once the worker runs: no lock needed to read them.
  const auto found = handlers.find(t.func);
  if (found == handlers.end()) {
    std::string known;
    {
      std::lock_guard lock(handlers_mu);
      for (const auto& [name, h] : handlers) known += (known.empty() ? "" : ", ") + name;
    }
    const std::string message = "no handler for function \"" + t.func + "\" on worker " + options.worker_id +
                                " (registered: " + (known.empty() ? "none" : known) + ")";
    // Named, not temporaries inside co_await: g++ 12 destroys those twice.
    Failure failure{"unknown_function", message, false};
    std::string reason = "unknown function: " + message;
    co_await settle_failure(run, std::move(failure), std::move(reason));
    co_return;
  }
  if (!dependency_failure.empty()) {
    Failure failure{"dependency_failed", dependency_failure, false};
    std::string reason = "dependency failed: " + dependency_failure;
    co_await settle_failure(run, std::move(failure), std::move(reason));
    co_return;
  }

  // Running: the heartbeat keeps the lease while the handler works.
  run->last_signal = Steady::now();
  active.insert(run);
  ++counters.running;
  {
    std::vector<TaskEvent> starting{events::dequeued(t.id, t.queue_name, options.worker_id),
                                    tagged(events::executing(t.id, options.worker_id), t)};
    starting.back().details["attempt"] = t.retry_count + 1;
    // Logged while the handler starts; awaited before the outcome is stored, so the events
    // stay in order. A failure is not fatal to the task: the outcome is what must be stored.
    run->start_logged.emplace(strand, Steady::time_point::max());
    auto logged = [run, self = shared_from_this()](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          self->log().warn("omniq: worker {}: logging the start of task {}: {}", self->options.worker_id,
                           run->lease.task().id, x.what());
        }
      }
      run->start_pending = false;
      run->start_logged->cancel();
    };
    run->start_pending = true;
    asio::co_spawn(strand, backend.event_log().log_events(std::move(starting)), std::move(logged));
  }
  co_await execute(run, found->second);
  if (run->start_pending) co_await run->start_logged->async_wait(asio::as_tuple(use_awaitable));
  active.erase(run);
  --counters.running;

  const StopReason why = run->reason.load();
  if (why == StopReason::shutdown) {
    // Past the shutdown grace period: hand it back for another worker; nothing is stored.
    try {
      co_await run->lease.nack();
      ++counters.handed_back;
    } catch (const Error& e) {
      log().warn("omniq: worker {}: handing back task {}: {} (redelivered after ack_wait)", options.worker_id, t.id,
                 e.what());
    }
    co_return;
  }
  if (why == StopReason::cancelled) {
    co_await settle_cancelled(run, true);
    co_return;
  }

  if (run->finished && !run->abandoned && !run->error && why == StopReason::none) {
    TaskResult result = stamped(TaskResult::success(t.id, std::move(run->value)), *run);
    const TaskEvent event = tagged(events::completed(t.id, *result.execution_time, options.worker_id), t);
    bool kept = false;
    std::optional<Error> too_large;
    try {
      kept = co_await store_outcome(run, std::move(result), event, std::nullopt);
    } catch (const Error& e) {
      // A value the bucket cannot hold would fail every redelivery the same way: the task
      // fails for good instead (not retried, dead-lettered, with the reason).
      if (e.kind() != errc::payload_too_large) throw;
      too_large = e;
    }
    if (too_large) {
      Failure failure{"result_too_large", too_large->what(), false};
      std::string reason = "result too large: " + std::string(too_large->what());
      co_await settle_failure(run, std::move(failure), std::move(reason));
      co_return;
    }
    if (!kept) co_return;
    // Acknowledged only now: the result and its event are stored.
    co_await acknowledge(run);
    ++counters.completed;
    co_return;
  }

  Failure failure;
  if (why == StopReason::timeout) {
    const auto limit = timeout_of(t).value_or(Duration::zero());
    std::ostringstream text;
    text << "task " << t.id << " ran longer than its timeout of " << std::chrono::duration<double>(limit).count()
         << " s";
    failure = {"timeout", text.str(), true};
  } else if (run->error) {
    failure = describe(run->error);
  } else {
    failure = {"abandoned", "the handler did not return", true};
  }
  if (failure.retryable && t.can_retry()) {
    // Still this run's claim? A run whose claim was taken over (it was judged gone) must not
    // enqueue an attempt that would take the claim over from the live run that holds it now.
    const TaskResult still_mine = stamped(TaskResult{.task_id = t.id, .status = ResultStatus::pending}, *run);
    bool holds = true;
    auto check = [&]() -> asio::awaitable<void> { holds = co_await store_result(*run, still_mine); };
    co_await persist("checking the claim before a retry", t.id, std::move(check));
    if (!holds) co_return;
    const Duration delay = jittered(t.retry_backoff());
    TaskEvent event = tagged(events::retry(t.id, t.retry_count + 1, delay), t);
    event.error_type = failure.type;
    event.error_message = failure.message;
    auto log_retry = [&]() -> asio::awaitable<void> { co_await backend.event_log().log_event(event); };
    co_await persist("logging the retry", t.id, std::move(log_retry));
    auto again = [&]() -> asio::awaitable<void> { co_await run->lease.retry(delay); };
    co_await persist("enqueueing the retry", t.id, std::move(again));
    ++counters.retried;
    co_return;
  }
  const std::string reason = "failed after " + std::to_string(t.retry_count + 1) + " attempt(s): " + failure.type +
                             ": " + failure.message;
  co_await settle_failure(run, std::move(failure), reason);
}

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
  auto run = run_->shared_from_this();
  auto& worker = *run->worker;
  co_await run->lease.in_progress();
  run->last_signal = Steady::now();
  TaskEvent event = worker.tagged(events::executing(run->lease.task().id, worker.options.worker_id), run->lease.task());
  event.details = progress_details(fraction, message);
  event.message = message.empty() ? std::optional<std::string>{} : std::optional<std::string>{message};
  co_await worker.backend.event_log().log_event(std::move(event));
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
