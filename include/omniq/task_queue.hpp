// The task queue: tasks in a JetStream work-queue stream (OMNIQ_TASKS) shared by every worker
// of a queue, with a dead-letter stream (OMNIQ_DLQ) beside it and task state in a KV bucket.
// Asynchronous API on TaskQueue (initiating functions taking any completion token); its
// blocking twin SyncTaskQueue runs the same operations from plain threads over the backend's
// one connection. docs/task-queue.md has the layout and the
// delivery guarantees.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "omniq/async.hpp"
#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/models/event.hpp"
#include "omniq/models/result.hpp"
#include "omniq/models/task.hpp"
#include "omniq/models/task_record.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class TaskContext;

class TaskQueue;
class Worker;
class Scheduler;
namespace detail {
struct WorkerRun;
struct TaskFeed;  // deliveries prefetched by the lane watchers of one queue (src/omniq/detail/task_feed.hpp)
struct JsMessage;
class Doorbell;
}

/// A dequeued task: a lease on its message until it is settled. Settle it exactly once with
/// ack (done), nack (run again, after `delay`), term (never again) or dead_letter; while
/// working on it longer than ack_wait, call in_progress. A lease never settled is
/// redelivered to some worker after ack_wait. Each operation completes with
/// void(error_code) (retry: void(error_code, Task)); errors: not_connected, closed, timeout,
/// permission_denied; a cancelled one completes with operation_aborted (the settlement may
/// still reach the server: settling again is safe).
class Lease {
 public:
  const Task& task() const noexcept { return task_; }
  std::uint64_t delivery() const noexcept { return delivered_; }  // 1 on the first delivery
  std::uint64_t stream_sequence() const noexcept { return sequence_; }

  /// Removes the task from the queue; completes once the server confirmed it.
  template <class CompletionToken = default_token>
  auto async_ack(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this] { return ack(); });
  }
  /// The same ack, sent without waiting for the server's confirmation: one publish instead of
  /// a request. A lost ack means a redelivery, so use it where a redelivery is harmless (the
  /// worker's claims make it so: a redelivered task whose outcome is stored is not rerun).
  template <class CompletionToken = default_token>
  auto async_ack_unconfirmed(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this] { return ack_unconfirmed(); });
  }
  /// Hands the task back for redelivery after `delay` (0: at once).
  template <class CompletionToken = default_token>
  auto async_nack(Duration delay = Duration::zero(), CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this, delay] { return nack(delay); });
  }
  /// Restarts the ack_wait timer: the task is still being worked on.
  template <class CompletionToken = default_token>
  auto async_in_progress(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this] { return in_progress(); });
  }
  /// Removes the task without running it again (no dead letter is written).
  template <class CompletionToken = default_token>
  auto async_term(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this] { return term(); });
  }
  /// Writes the task to the dead-letter stream with `reason`, then removes it from the queue.
  template <class CompletionToken = default_token>
  auto async_dead_letter(std::string reason, CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(),
                                  [this, reason = std::move(reason)]() mutable { return dead_letter(std::move(reason)); });
  }
  /// Another attempt: enqueues the task again with retry_count + 1, due after `delay`, then
  /// acks this delivery. Deduplicated by this delivery's message, so a crash in between
  /// cannot enqueue the retry twice. Completes with the task as enqueued.
  template <class CompletionToken = default_token>
  auto async_retry(Duration delay, CompletionToken&& token = {}) {
    return detail::initiate<Task>(token, executor(), [this, delay] { return retry(delay); });
  }
  /// Not now: enqueues the same task again (same attempt), due after `delay`, then acks this
  /// delivery (deduplicated like retry). Used to wait for dependencies.
  template <class CompletionToken = default_token>
  auto async_defer(Duration delay, CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this, delay] { return defer(delay); });
  }

 private:
  friend class TaskContext;
  friend class TaskQueue;
  friend class Worker;
  friend struct detail::WorkerRun;
  Lease(TaskQueue& queue, Task task, detail::JsMessage message);
  asio::any_io_executor executor() const;
  asio::awaitable<void> ack();
  asio::awaitable<void> ack_unconfirmed();
  asio::awaitable<void> nack(Duration delay = Duration::zero());
  asio::awaitable<void> in_progress();
  asio::awaitable<void> term();
  asio::awaitable<void> dead_letter(std::string reason);
  asio::awaitable<Task> retry(Duration delay);
  asio::awaitable<void> defer(Duration delay);

  TaskQueue* queue_;
  Task task_;
  std::string subject_;
  std::string ack_subject_;
  std::uint64_t delivered_ = 0;
  std::uint64_t sequence_ = 0;
};

/// A task that could not be run, kept with the reason.
struct DeadLetter {
  std::uint64_t sequence = 0;  // in the dead-letter stream
  std::string task_id{};
  std::string queue_name{};
  std::optional<Task> task{};  // nullopt when the message could not be decoded
  std::string raw{};           // the message as it was, when it could not be decoded
  std::string reason{};
  std::string subject{};       // where the task was queued
  std::uint64_t deliveries = 0;
  Timestamp dead_lettered_at{};
};

/// Each operation is an initiating function (omniq/async.hpp): it takes any completion token
/// (by default co_await in a coroutine, failures thrown as omniq::Error) and completes with
/// void(error_code, T) on the token's executor. A cancelled operation (terminal cancellation
/// through the handler's cancellation slot) completes with asio::error::operation_aborted.
class TaskQueue {
 public:
  /// Shares the backend's connection; creates nothing until first used. Use the backend's
  /// own (backend.task_queue()): each TaskQueue keeps long-poll pulls open on the queues it
  /// dequeues, and a connection serves one pull per consumer at a time.
  explicit TaskQueue(NatsBackend& backend);
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  /// Creates or checks the tasks stream, the dead-letter stream and the task-state bucket.
  /// void(error_code).
  template <class CompletionToken = default_token>
  auto async_ensure(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this] { return ensure(); });
  }
  /// The tasks stream as the server reports it. void(error_code, StreamReport).
  template <class CompletionToken = default_token>
  auto async_info(CompletionToken&& token = {}) {
    return detail::initiate<StreamReport>(token, executor(), [this] { return info(); });
  }

  /// Stores the task durably; completes with its id: void(error_code, std::string). Idempotent
  /// by id within the stream's duplicate window. A failure that may pass (a timeout, no
  /// responders while the cluster elects a leader, a reconnect) is retried with the same message
  /// id for up to config `publish_timeout` (15 s), so a node failure does not reach the caller;
  /// only the tasks stream is provisioned or checked. Errors: invalid_name / invalid_argument
  /// (before any network call), payload_too_large, stream_full (nothing stored), timeout /
  /// jetstream_unavailable once publish_timeout has passed (the task may have been stored:
  /// enqueueing it again is safe). Cancelled: operation_aborted, and the task may have been
  /// stored.
  template <class CompletionToken = default_token>
  auto async_enqueue(Task task, CompletionToken&& token = {}) {
    return detail::initiate<std::string>(token, executor(),
                                         [this, task = std::move(task)]() mutable { return enqueue(std::move(task)); });
  }
  /// Enqueues many tasks with their publishes in flight together; every task is validated
  /// before any is sent. Failures that may pass are retried like enqueue's, only for the tasks
  /// not yet stored. On a failure the diagnostics say how many were stored; enqueueing the same
  /// batch again is safe (ids are deduplicated). void(error_code, std::vector<std::string>).
  template <class CompletionToken = default_token>
  auto async_enqueue_batch(std::vector<Task> tasks, CompletionToken&& token = {}) {
    return detail::initiate<std::vector<std::string>>(
        token, executor(), [this, tasks = std::move(tasks)]() mutable { return enqueue_batch(std::move(tasks)); });
  }

  /// The next task from `queues`, tried in the order given; within a queue higher priority
  /// bands first. Waits up to `timeout` for one; nullopt when none came:
  /// void(error_code, std::optional<Lease>). Cancelled while waiting: operation_aborted, and the
  /// deliveries this process prefetched for `queues` are handed back to the server at once (when
  /// no other dequeue waits on them), so another consumer gets a task that arrives meanwhile.
  template <class CompletionToken = default_token>
  auto async_dequeue(std::vector<std::string> queues, Duration timeout = Duration::zero(),
                     CompletionToken&& token = {}) {
    return detail::initiate<std::optional<Lease>>(
        token, executor(), [this, queues = std::move(queues), timeout]() mutable { return dequeue(std::move(queues), timeout); });
  }
  /// Up to `max` tasks, in the same order: void(error_code, std::vector<Lease>).
  template <class CompletionToken = default_token>
  auto async_dequeue_batch(std::vector<std::string> queues, std::size_t max, Duration timeout = Duration::zero(),
                           CompletionToken&& token = {}) {
    return detail::initiate<std::vector<Lease>>(token, executor(), [this, queues = std::move(queues), max, timeout]() mutable {
      return dequeue_batch(std::move(queues), max, timeout);
    });
  }

  /// The task as stored, nullopt when unknown: void(error_code, std::optional<TaskRecord>).
  template <class CompletionToken = default_token>
  auto async_get_task(std::string task_id, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<TaskRecord>>(
        token, executor(), [this, id = std::move(task_id)]() mutable { return get_task(std::move(id)); });
  }
  /// Stores `task` if its state is still at `expected_revision` (from get_task); completes with
  /// the new revision, or nullopt when another writer changed it first:
  /// void(error_code, std::optional<std::uint64_t>).
  template <class CompletionToken = default_token>
  auto async_update_task(Task task, std::uint64_t expected_revision, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<std::uint64_t>>(
        token, executor(),
        [this, task = std::move(task), expected_revision]() mutable { return update_task(std::move(task), expected_revision); });
  }
  /// Cancels a task. A pending or delayed one is never delivered: its message is removed, a
  /// `cancelled` result stored (wait_for_result answers) and a `cancelled` event logged. A
  /// running one is recorded `cancelled`; the worker running it asks its handler to stop
  /// (TaskContext::cancelled()) and stores the `cancelled` result and event itself. False when
  /// the task is unknown or finished, or its state changed meanwhile: void(error_code, bool).
  template <class CompletionToken = default_token>
  auto async_cancel_task(std::string task_id, CompletionToken&& token = {}) {
    return detail::initiate<bool>(token, executor(),
                                  [this, id = std::move(task_id)]() mutable { return cancel_task(std::move(id)); });
  }
  /// Removes the task from the queue and its state; false when there was nothing to remove.
  template <class CompletionToken = default_token>
  auto async_delete_task(std::string task_id, CompletionToken&& token = {}) {
    return detail::initiate<bool>(token, executor(),
                                  [this, id = std::move(task_id)]() mutable { return delete_task(std::move(id)); });
  }
  /// Tasks of `queue` (all queues when empty) with `status` (all when empty), oldest first:
  /// void(error_code, std::vector<Task>).
  template <class CompletionToken = default_token>
  auto async_list_tasks(std::optional<std::string> queue = std::nullopt, std::optional<TaskStatus> status = std::nullopt,
                        std::size_t limit = 100, std::size_t offset = 0, CompletionToken&& token = {}) {
    return detail::initiate<std::vector<Task>>(token, executor(), [this, queue = std::move(queue), status, limit, offset]() mutable {
      return list_tasks(std::move(queue), status, limit, offset);
    });
  }
  /// Work waiting in `queue`: tasks not yet delivered plus delivered and not yet acked,
  /// delayed tasks included (from the consumers' state, not the stream's message count):
  /// void(error_code, std::uint64_t).
  template <class CompletionToken = default_token>
  auto async_get_queue_size(std::string queue, CompletionToken&& token = {}) {
    return detail::initiate<std::uint64_t>(token, executor(),
                                           [this, queue = std::move(queue)]() mutable { return get_queue_size(std::move(queue)); });
  }
  /// Removes pending tasks whose expiry has passed, marking them expired; completes with how
  /// many: void(error_code, std::size_t).
  template <class CompletionToken = default_token>
  auto async_cleanup_expired_tasks(CompletionToken&& token = {}) {
    return detail::initiate<std::size_t>(token, executor(), [this] { return cleanup_expired_tasks(); });
  }

  /// Dead letters of `queue` (all when empty), oldest first:
  /// void(error_code, std::vector<DeadLetter>).
  template <class CompletionToken = default_token>
  auto async_list_dead_letters(std::optional<std::string> queue = std::nullopt, std::size_t limit = 100,
                               std::size_t offset = 0, CompletionToken&& token = {}) {
    return detail::initiate<std::vector<DeadLetter>>(token, executor(), [this, queue = std::move(queue), limit, offset]() mutable {
      return list_dead_letters(std::move(queue), limit, offset);
    });
  }
  /// Puts a dead-lettered task back on its queue with its retry count reset; false when no
  /// dead letter has that task id: void(error_code, bool).
  template <class CompletionToken = default_token>
  auto async_requeue_dead_letter(std::string task_id, CompletionToken&& token = {}) {
    return detail::initiate<bool>(token, executor(),
                                  [this, id = std::move(task_id)]() mutable { return requeue_dead_letter(std::move(id)); });
  }

  /// Deliveries this process holds ready per priority lane of each queue it dequeues
  /// (config `prefetch` until set). A worker sets it to its concurrency, so one process does
  /// not hold work another could run. Throws invalid_argument for 0.
  void set_prefetch(std::size_t per_lane);
  /// Hands every delivery prefetched for `queues` back to the server (redelivered at once to
  /// other workers) and stops prefetching them until the next dequeue; returns how many.
  std::size_t hand_back(const std::vector<std::string>& queues);

  NatsBackend& backend() noexcept { return backend_; }

 private:
  friend class ResultStore;
  friend class EventLog;
  friend class ScheduleStore;
  friend class Lease;
  friend class NatsBackend;
  friend class Worker;
  friend class Scheduler;
  friend struct detail::WorkerRun;
  using Feed = detail::TaskFeed;

  asio::any_io_executor executor() const noexcept;

  /// The coroutines the initiating functions run (and omniq's own parts call directly).
  asio::awaitable<void> ensure();
  asio::awaitable<StreamReport> info();
  asio::awaitable<std::string> enqueue(Task task);
  asio::awaitable<std::vector<std::string>> enqueue_batch(std::vector<Task> tasks);
  asio::awaitable<std::optional<Lease>> dequeue(std::vector<std::string> queues, Duration timeout = Duration::zero());
  asio::awaitable<std::vector<Lease>> dequeue_batch(std::vector<std::string> queues, std::size_t max,
                                                    Duration timeout = Duration::zero());
  asio::awaitable<std::optional<TaskRecord>> get_task(std::string task_id);
  asio::awaitable<std::optional<std::uint64_t>> update_task(Task task, std::uint64_t expected_revision);
  asio::awaitable<bool> cancel_task(std::string task_id);
  asio::awaitable<bool> delete_task(std::string task_id);
  asio::awaitable<std::vector<Task>> list_tasks(std::optional<std::string> queue = std::nullopt,
                                                std::optional<TaskStatus> status = std::nullopt,
                                                std::size_t limit = 100, std::size_t offset = 0);
  asio::awaitable<std::uint64_t> get_queue_size(std::string queue);
  asio::awaitable<std::size_t> cleanup_expired_tasks();
  asio::awaitable<std::vector<DeadLetter>> list_dead_letters(std::optional<std::string> queue = std::nullopt,
                                                             std::size_t limit = 100, std::size_t offset = 0);
  asio::awaitable<bool> requeue_dead_letter(std::string task_id);

  asio::awaitable<void> ensure_consumers(const std::string& queue);  // the queue's durable consumers
  asio::awaitable<void> ensure_queue(const std::string& queue);      // ... and its lane watchers
  std::shared_ptr<Feed> feed_of(const std::string& queue);
  std::vector<detail::JsMessage> take(const std::vector<std::string>& queues, std::size_t max);
  bool holds_work(const std::vector<std::string>& queues);
  asio::awaitable<std::optional<Lease>> admit(detail::JsMessage message);
  asio::awaitable<void> write_dead_letter(const std::string& queue, const std::string& task_id,
                                          const detail::JsMessage& message, const std::optional<Task>& task,
                                          std::string reason);
  asio::awaitable<void> settle(const std::string& ack_subject, std::string verb);
  /// Publishes `task` again (on its lane, or the delayed lane when run_at is ahead) under
  /// message id `msg_id`; a duplicate counts as done.
  asio::awaitable<void> republish(const Task& task, std::string msg_id);
  asio::awaitable<void> mark(Task task, TaskStatus status);
  // The end of a task that never ran (expired, cancelled): its final result, unless it has
  // one (written over a claim an earlier attempt left), so wait_for_result answers.
  asio::awaitable<void> store_end(const Task& task, ResultStatus status, std::string error_type, std::string error);
  // Logs an event that ends a task, deduplicated per task and kind; a failure is logged.
  asio::awaitable<void> log_end(TaskEvent event);
  // A task found expired: state, result and event (every expiry path).
  asio::awaitable<void> expire(Task task);
  // The task of its dead letter, nullopt when it has none.
  asio::awaitable<std::optional<Task>> find_dead_letter(const std::string& task_id);
  asio::awaitable<std::optional<std::pair<Task, std::uint64_t>>> find_pending(const std::string& task_id);
  std::string encode_checked(const Task& task) const;

  /// The tasks stream only: what enqueue needs.
  asio::awaitable<void> ensure_tasks_stream();

  NatsBackend& backend_;
  detail::Provisioned provisioned_;
  detail::Provisioned tasks_stream_provisioned_;
  std::shared_ptr<detail::Doorbell> doorbell_;  // rung when a watcher brings work
  std::atomic<std::size_t> prefetch_;
  std::atomic<std::size_t> waiting_{0};          // dequeues waiting on the doorbell
  std::mutex mu_;
  std::set<std::string> consumers_ready_;                // guarded by mu_
  std::map<std::string, std::shared_ptr<Feed>> feeds_;  // guarded by mu_: per queue dequeued
};

/// The blocking forms, for plain threads: each operation in a throwing form (omniq::Error with
/// the same code and message as the asynchronous form) and an error-code form filling `ec` and
/// `diag`. Not on the backend's own io thread: there they fail with errc::wrong_thread.
class SyncLease : detail::Blocking {
 public:
  SyncLease(Lease lease, asio::any_io_executor ex) : Blocking(std::move(ex)), lease_(std::move(lease)) {}
  const Task& task() const noexcept { return lease_.task(); }
  std::uint64_t delivery() const noexcept { return lease_.delivery(); }
  std::uint64_t stream_sequence() const noexcept { return lease_.stream_sequence(); }
  void ack() { wait<void>("Lease::ack", [&](auto t) { return lease_.async_ack(t); }); }
  void ack(error_code& ec, Diagnostics& diag) { wait<void>("Lease::ack", [&](auto t) { return lease_.async_ack(t); }, ec, diag); }
  void nack(Duration delay = Duration::zero()) {
    wait<void>("Lease::nack", [&](auto t) { return lease_.async_nack(delay, t); });
  }
  void nack(Duration delay, error_code& ec, Diagnostics& diag) {
    wait<void>("Lease::nack", [&](auto t) { return lease_.async_nack(delay, t); }, ec, diag);
  }
  void in_progress() { wait<void>("Lease::in_progress", [&](auto t) { return lease_.async_in_progress(t); }); }
  void in_progress(error_code& ec, Diagnostics& diag) {
    wait<void>("Lease::in_progress", [&](auto t) { return lease_.async_in_progress(t); }, ec, diag);
  }
  void term() { wait<void>("Lease::term", [&](auto t) { return lease_.async_term(t); }); }
  void term(error_code& ec, Diagnostics& diag) {
    wait<void>("Lease::term", [&](auto t) { return lease_.async_term(t); }, ec, diag);
  }
  void dead_letter(std::string reason) {
    wait<void>("Lease::dead_letter", [&](auto t) { return lease_.async_dead_letter(std::move(reason), t); });
  }
  void dead_letter(std::string reason, error_code& ec, Diagnostics& diag) {
    wait<void>("Lease::dead_letter", [&](auto t) { return lease_.async_dead_letter(std::move(reason), t); }, ec, diag);
  }

 private:
  Lease lease_;
};

class SyncTaskQueue : detail::Blocking {
 public:
  explicit SyncTaskQueue(TaskQueue& part) : Blocking(part.backend().get_executor()), part_(part) {}
  void ensure() { wait<void>("task_queue.ensure", [&](auto t) { return part_.async_ensure(t); }); }
  void ensure(error_code& ec, Diagnostics& diag) {
    wait<void>("task_queue.ensure", [&](auto t) { return part_.async_ensure(t); }, ec, diag);
  }
  StreamReport info() { return wait<StreamReport>("task_queue.info", [&](auto t) { return part_.async_info(t); }); }
  StreamReport info(error_code& ec, Diagnostics& diag) {
    return wait<StreamReport>("task_queue.info", [&](auto t) { return part_.async_info(t); }, ec, diag);
  }
  std::string enqueue(Task task) {
    return wait<std::string>("task_queue.enqueue", [&](auto t) { return part_.async_enqueue(std::move(task), t); });
  }
  std::string enqueue(Task task, error_code& ec, Diagnostics& diag) {
    return wait<std::string>("task_queue.enqueue", [&](auto t) { return part_.async_enqueue(std::move(task), t); }, ec, diag);
  }
  std::vector<std::string> enqueue_batch(std::vector<Task> tasks) {
    return wait<std::vector<std::string>>("task_queue.enqueue_batch",
                                          [&](auto t) { return part_.async_enqueue_batch(std::move(tasks), t); });
  }
  std::vector<std::string> enqueue_batch(std::vector<Task> tasks, error_code& ec, Diagnostics& diag) {
    return wait<std::vector<std::string>>(
        "task_queue.enqueue_batch", [&](auto t) { return part_.async_enqueue_batch(std::move(tasks), t); }, ec, diag);
  }
  std::optional<SyncLease> dequeue(std::vector<std::string> queues, Duration timeout = Duration::zero()) {
    return to_sync(wait<std::optional<Lease>>(
        "task_queue.dequeue", [&](auto t) { return part_.async_dequeue(std::move(queues), timeout, t); }));
  }
  std::optional<SyncLease> dequeue(std::vector<std::string> queues, Duration timeout, error_code& ec,
                                   Diagnostics& diag) {
    return to_sync(wait<std::optional<Lease>>(
        "task_queue.dequeue", [&](auto t) { return part_.async_dequeue(std::move(queues), timeout, t); }, ec, diag));
  }
  std::vector<SyncLease> dequeue_batch(std::vector<std::string> queues, std::size_t max,
                                       Duration timeout = Duration::zero()) {
    return to_sync(wait<std::vector<Lease>>(
        "task_queue.dequeue_batch", [&](auto t) { return part_.async_dequeue_batch(std::move(queues), max, timeout, t); }));
  }
  std::vector<SyncLease> dequeue_batch(std::vector<std::string> queues, std::size_t max, Duration timeout,
                                       error_code& ec, Diagnostics& diag) {
    return to_sync(wait<std::vector<Lease>>(
        "task_queue.dequeue_batch", [&](auto t) { return part_.async_dequeue_batch(std::move(queues), max, timeout, t); },
        ec, diag));
  }
  std::optional<TaskRecord> get_task(std::string id) {
    return wait<std::optional<TaskRecord>>("task_queue.get_task", [&](auto t) { return part_.async_get_task(std::move(id), t); });
  }
  std::optional<TaskRecord> get_task(std::string id, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<TaskRecord>>(
        "task_queue.get_task", [&](auto t) { return part_.async_get_task(std::move(id), t); }, ec, diag);
  }
  std::optional<std::uint64_t> update_task(Task task, std::uint64_t expected_revision) {
    return wait<std::optional<std::uint64_t>>(
        "task_queue.update_task", [&](auto t) { return part_.async_update_task(std::move(task), expected_revision, t); });
  }
  std::optional<std::uint64_t> update_task(Task task, std::uint64_t expected_revision, error_code& ec,
                                           Diagnostics& diag) {
    return wait<std::optional<std::uint64_t>>(
        "task_queue.update_task", [&](auto t) { return part_.async_update_task(std::move(task), expected_revision, t); },
        ec, diag);
  }
  bool cancel_task(std::string id) {
    return wait<bool>("task_queue.cancel_task", [&](auto t) { return part_.async_cancel_task(std::move(id), t); });
  }
  bool cancel_task(std::string id, error_code& ec, Diagnostics& diag) {
    return wait<bool>("task_queue.cancel_task", [&](auto t) { return part_.async_cancel_task(std::move(id), t); }, ec, diag);
  }
  bool delete_task(std::string id) {
    return wait<bool>("task_queue.delete_task", [&](auto t) { return part_.async_delete_task(std::move(id), t); });
  }
  bool delete_task(std::string id, error_code& ec, Diagnostics& diag) {
    return wait<bool>("task_queue.delete_task", [&](auto t) { return part_.async_delete_task(std::move(id), t); }, ec, diag);
  }
  std::vector<Task> list_tasks(std::optional<std::string> queue = std::nullopt,
                               std::optional<TaskStatus> status = std::nullopt, std::size_t limit = 100,
                               std::size_t offset = 0) {
    return wait<std::vector<Task>>(
        "task_queue.list_tasks", [&](auto t) { return part_.async_list_tasks(std::move(queue), status, limit, offset, t); });
  }
  std::vector<Task> list_tasks(std::optional<std::string> queue, std::optional<TaskStatus> status, std::size_t limit,
                               std::size_t offset, error_code& ec, Diagnostics& diag) {
    return wait<std::vector<Task>>(
        "task_queue.list_tasks", [&](auto t) { return part_.async_list_tasks(std::move(queue), status, limit, offset, t); },
        ec, diag);
  }
  std::uint64_t get_queue_size(std::string queue) {
    return wait<std::uint64_t>("task_queue.get_queue_size",
                               [&](auto t) { return part_.async_get_queue_size(std::move(queue), t); });
  }
  std::uint64_t get_queue_size(std::string queue, error_code& ec, Diagnostics& diag) {
    return wait<std::uint64_t>(
        "task_queue.get_queue_size", [&](auto t) { return part_.async_get_queue_size(std::move(queue), t); }, ec, diag);
  }
  std::size_t cleanup_expired_tasks() {
    return wait<std::size_t>("task_queue.cleanup_expired_tasks", [&](auto t) { return part_.async_cleanup_expired_tasks(t); });
  }
  std::size_t cleanup_expired_tasks(error_code& ec, Diagnostics& diag) {
    return wait<std::size_t>(
        "task_queue.cleanup_expired_tasks", [&](auto t) { return part_.async_cleanup_expired_tasks(t); }, ec, diag);
  }
  std::vector<DeadLetter> list_dead_letters(std::optional<std::string> queue = std::nullopt, std::size_t limit = 100,
                                            std::size_t offset = 0) {
    return wait<std::vector<DeadLetter>>(
        "task_queue.list_dead_letters", [&](auto t) { return part_.async_list_dead_letters(std::move(queue), limit, offset, t); });
  }
  std::vector<DeadLetter> list_dead_letters(std::optional<std::string> queue, std::size_t limit, std::size_t offset,
                                            error_code& ec, Diagnostics& diag) {
    return wait<std::vector<DeadLetter>>(
        "task_queue.list_dead_letters",
        [&](auto t) { return part_.async_list_dead_letters(std::move(queue), limit, offset, t); }, ec, diag);
  }
  bool requeue_dead_letter(std::string id) {
    return wait<bool>("task_queue.requeue_dead_letter",
                      [&](auto t) { return part_.async_requeue_dead_letter(std::move(id), t); });
  }
  bool requeue_dead_letter(std::string id, error_code& ec, Diagnostics& diag) {
    return wait<bool>(
        "task_queue.requeue_dead_letter", [&](auto t) { return part_.async_requeue_dead_letter(std::move(id), t); }, ec,
        diag);
  }

 private:
  std::optional<SyncLease> to_sync(std::optional<Lease> lease) {
    if (!lease) return std::nullopt;
    return SyncLease(std::move(*lease), executor());
  }
  std::vector<SyncLease> to_sync(std::vector<Lease> leases) {
    std::vector<SyncLease> out;
    out.reserve(leases.size());
    for (auto& l : leases) out.emplace_back(std::move(l), executor());
    return out;
  }
  TaskQueue& part_;
};

}  // namespace omniq
