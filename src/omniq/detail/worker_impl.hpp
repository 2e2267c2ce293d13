// The worker's shared state, private to the worker's units: Worker::Impl (the runtime behind
// a Worker), detail::WorkerRun (one task being worked on) and what both use. src/worker.cpp
// holds the public members, the serve loop and its background loops; src/worker_settle.cpp
// claiming a task and storing its outcome; src/worker_process.cpp running one task.
// docs/worker.md has the per-task steps and what they guarantee.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/retry.hpp"
#include "omniq/detail/worker_registry.hpp"
#include "omniq/error.hpp"
#include "omniq/models/event.hpp"
#include "omniq/models/result.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/worker.hpp"

namespace omniq {

// The worker's units all write these names as src/worker.cpp did when it held them all.
using nlohmann::json;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace detail {

// Storing a task's outcome is retried this long (the task keeps its lease meanwhile) before
// the worker gives up and lets the server redeliver it.
inline constexpr auto kPersistFor = 60s;
// Cancelled task ids remembered, and for how long.
inline constexpr std::size_t kCancelledKept = 100'000;
inline constexpr auto kCancelledFor = std::chrono::hours(1);

// The id of a worker whose options name none: host, process id and a random part, made a
// valid token (defined in src/worker.cpp).
std::string default_worker_id();
// The text of a failure, for logs (defined in src/worker_settle.cpp).
std::string what_of(const std::exception_ptr& failure);

// How a task failed, as its result and dead letter record it.
struct Failure {
  std::string type;
  std::string message;
  bool retryable = true;
};

// ---- one task being worked on ------------------------------------------------------------------

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
  // The handler's last progress(fraction, message), stored with the claim; on the strand.
  std::optional<double> progress;
  std::optional<std::string> progress_message;

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
    if (options.worker_id.empty()) options.worker_id = detail::default_worker_id();
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
           (cancelled_order.size() > detail::kCancelledKept ||
            cancelled_order.front().second < t - detail::kCancelledFor)) {
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
  asio::awaitable<void> settle_failure(std::shared_ptr<detail::WorkerRun> run, detail::Failure failure,
                                       std::string dead_letter_reason);
  // Stores the outcome (result, then its event), retrying through outages. False when
  // another worker took the task over (nothing must be acked then).
  asio::awaitable<bool> store_outcome(std::shared_ptr<detail::WorkerRun> run, TaskResult result,
                                      const TaskEvent& event);
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
               task_id.empty() ? "" : " for task ", task_id, detail::what_of(failure), pause.count());
  };
  co_await detail::retry_transient(std::move(op), [&](std::chrono::milliseconds) { return give_up(); }, log_retry,
                                   50ms, 2000ms);
}

// Retries `op` while the failure may be passing, up to kPersistFor; the task's lease is kept
// alive meanwhile.
template <class Op>
asio::awaitable<void> Worker::Impl::persist(const char* what, const std::string& task_id, Op op) {
  const auto until = Steady::now() + detail::kPersistFor;
  co_await retrying(what, task_id, [until] { return Steady::now() >= until; }, std::move(op));
}

}  // namespace omniq
