// The task queue: tasks in a JetStream work-queue stream (OMNIQ_TASKS) shared by every worker
// of a queue, with a dead-letter stream (OMNIQ_DLQ) beside it and task state in a KV bucket.
// Coroutine API on TaskQueue; its blocking twin SyncTaskQueue runs the same operations from
// plain threads over the backend's one connection. docs/task-queue.md has the layout and the
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

#include "omniq/backend.hpp"
#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/models/task.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class TaskQueue;

// A dequeued task: a lease on its message until it is settled. Settle it exactly once with
// ack (done), nack (run again, after `delay`), term (never again) or dead_letter; while
// working on it longer than ack_wait, call in_progress. A lease never settled is
// redelivered to some worker after ack_wait.
class Lease {
 public:
  const Task& task() const noexcept { return task_; }
  std::uint64_t delivery() const noexcept { return delivered_; }  // 1 on the first delivery
  std::uint64_t stream_sequence() const noexcept { return sequence_; }

  // Removes the task from the queue; completes once the server confirmed it.
  asio::awaitable<void> ack();
  // The same ack, sent without waiting for the server's confirmation: one publish instead of
  // a request. A lost ack means a redelivery, so use it where a redelivery is harmless (the
  // worker's claims make it so: a redelivered task whose outcome is stored is not rerun).
  asio::awaitable<void> ack_unconfirmed();
  // Hands the task back for redelivery after `delay` (0: at once).
  asio::awaitable<void> nack(Duration delay = Duration::zero());
  // Restarts the ack_wait timer: the task is still being worked on.
  asio::awaitable<void> in_progress();
  // Removes the task without running it again (no dead letter is written).
  asio::awaitable<void> term();
  // Writes the task to the dead-letter stream with `reason`, then removes it from the queue.
  asio::awaitable<void> dead_letter(std::string reason);
  // Another attempt: enqueues the task again with retry_count + 1, due after `delay`, then
  // acks this delivery. Deduplicated by this delivery's message, so a crash in between
  // cannot enqueue the retry twice. Returns the task as enqueued.
  asio::awaitable<Task> retry(Duration delay);
  // Not now: enqueues the same task again (same attempt), due after `delay`, then acks this
  // delivery (deduplicated like retry). Used to wait for dependencies.
  asio::awaitable<void> defer(Duration delay);

 private:
  friend class TaskQueue;
  Lease(TaskQueue& queue, Task task, detail::JsMessage message);
  TaskQueue* queue_;
  Task task_;
  std::string subject_;
  std::string ack_subject_;
  std::uint64_t delivered_ = 0;
  std::uint64_t sequence_ = 0;
};

// A task as stored, with the revision that update_task compares against.
struct TaskRecord {
  Task task{};
  // 0 while the task has only been enqueued (it lives in the tasks stream); the task-state
  // bucket's revision once it was updated, cancelled or finished.
  std::uint64_t revision = 0;
};

// A task that could not be run, kept with the reason.
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

class TaskQueue {
 public:
  // Shares the backend's connection; creates nothing until first used. Use the backend's
  // own (backend.task_queue()): each TaskQueue keeps long-poll pulls open on the queues it
  // dequeues, and a connection serves one pull per consumer at a time.
  explicit TaskQueue(NatsBackend& backend);
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Creates or checks the tasks stream, the dead-letter stream and the task-state bucket.
  asio::awaitable<void> ensure();
  asio::awaitable<StreamReport> info();

  // Stores the task durably and returns its id. Idempotent by id within the stream's
  // duplicate window. A failure that may pass (a timeout, no responders while the cluster
  // elects a leader, a reconnect) is retried with the same message id for up to config
  // `publish_timeout` (15 s), so a node failure does not reach the caller; only the tasks
  // stream is provisioned or checked. Throws omniq::Error: invalid_name / invalid_argument
  // (before any network call), payload_too_large, stream_full (nothing stored), timeout /
  // jetstream_unavailable once publish_timeout has passed (the task may have been stored:
  // enqueueing it again is safe).
  asio::awaitable<std::string> enqueue(Task task);
  // Enqueues many tasks with their publishes in flight together; every task is validated
  // before any is sent. Failures that may pass are retried like enqueue's, only for the tasks
  // not yet stored. On a failure the error says how many were stored; enqueueing the same
  // batch again is safe (ids are deduplicated).
  asio::awaitable<std::vector<std::string>> enqueue_batch(std::vector<Task> tasks);

  // The next task from `queues`, tried in the order given; within a queue higher priority
  // bands first. Waits up to `timeout` for one; nullopt when none came.
  asio::awaitable<std::optional<Lease>> dequeue(std::vector<std::string> queues, Duration timeout = Duration::zero());
  // Up to `max` tasks, in the same order.
  asio::awaitable<std::vector<Lease>> dequeue_batch(std::vector<std::string> queues, std::size_t max,
                                                    Duration timeout = Duration::zero());

  asio::awaitable<std::optional<TaskRecord>> get_task(std::string task_id);
  // Stores `task` if its state is still at `expected_revision` (from get_task); returns the
  // new revision, or nullopt when another writer changed it first.
  asio::awaitable<std::optional<std::uint64_t>> update_task(Task task, std::uint64_t expected_revision);
  // Cancels a task that has not run: it will never be delivered. False when the task is
  // unknown or already running or finished.
  asio::awaitable<bool> cancel_task(std::string task_id);
  // Removes the task from the queue and its state; false when there was nothing to remove.
  asio::awaitable<bool> delete_task(std::string task_id);
  // Tasks of `queue` (all queues when empty) with `status` (all when empty), oldest first.
  asio::awaitable<std::vector<Task>> list_tasks(std::optional<std::string> queue = std::nullopt,
                                                std::optional<TaskStatus> status = std::nullopt,
                                                std::size_t limit = 100, std::size_t offset = 0);
  // Work waiting in `queue`: tasks not yet delivered plus delivered and not yet acked,
  // delayed tasks included (from the consumers' state, not the stream's message count).
  asio::awaitable<std::uint64_t> get_queue_size(std::string queue);
  // Removes pending tasks whose expiry has passed, marking them expired; returns how many.
  asio::awaitable<std::size_t> cleanup_expired_tasks();

  asio::awaitable<std::vector<DeadLetter>> list_dead_letters(std::optional<std::string> queue = std::nullopt,
                                                             std::size_t limit = 100, std::size_t offset = 0);
  // Puts a dead-lettered task back on its queue with its retry count reset; false when no
  // dead letter has that task id.
  asio::awaitable<bool> requeue_dead_letter(std::string task_id);

  // Deliveries this process holds ready per priority lane of each queue it dequeues
  // (config `prefetch` until set). A worker sets it to its concurrency, so one process does
  // not hold work another could run. Throws invalid_argument for 0.
  void set_prefetch(std::size_t per_lane);
  // Hands every delivery prefetched for `queues` back to the server (redelivered at once to
  // other workers) and stops prefetching them until the next dequeue; returns how many.
  std::size_t hand_back(const std::vector<std::string>& queues);

  NatsBackend& backend() noexcept { return backend_; }

  struct Feed;  // internal: deliveries prefetched by the lane watchers of one queue

 private:
  friend class Lease;

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
  // Publishes `task` again (on its lane, or the delayed lane when run_at is ahead) under
  // message id `msg_id`; a duplicate counts as done.
  asio::awaitable<void> republish(const Task& task, std::string msg_id);
  asio::awaitable<void> mark(Task task, TaskStatus status);
  asio::awaitable<std::optional<std::pair<Task, std::uint64_t>>> find_pending(const std::string& task_id);
  std::string encode_checked(const Task& task) const;

  // The tasks stream only: what enqueue needs.
  asio::awaitable<void> ensure_tasks_stream();

  NatsBackend& backend_;
  detail::Provisioned provisioned_;
  detail::Provisioned tasks_stream_provisioned_;
  std::shared_ptr<detail::Doorbell> doorbell_;  // rung when a watcher brings work
  std::atomic<std::size_t> prefetch_;
  std::mutex mu_;
  std::set<std::string> consumers_ready_;                // guarded by mu_
  std::map<std::string, std::shared_ptr<Feed>> feeds_;  // guarded by mu_: per queue dequeued
};

class SyncLease {
 public:
  explicit SyncLease(Lease lease, asio::any_io_executor ex) : lease_(std::move(lease)), ex_(std::move(ex)) {}
  const Task& task() const noexcept { return lease_.task(); }
  std::uint64_t delivery() const noexcept { return lease_.delivery(); }
  std::uint64_t stream_sequence() const noexcept { return lease_.stream_sequence(); }
  void ack() { run(lease_.ack(), "Lease::ack"); }
  void nack(Duration delay = Duration::zero()) { run(lease_.nack(delay), "Lease::nack"); }
  void in_progress() { run(lease_.in_progress(), "Lease::in_progress"); }
  void term() { run(lease_.term(), "Lease::term"); }
  void dead_letter(std::string reason) { run(lease_.dead_letter(std::move(reason)), "Lease::dead_letter"); }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(ex_, std::move(op), what);
  }
  Lease lease_;
  asio::any_io_executor ex_;
};

class SyncTaskQueue {
 public:
  explicit SyncTaskQueue(TaskQueue& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "task_queue.ensure"); }
  StreamReport info() { return run(part_.info(), "task_queue.info"); }
  std::string enqueue(Task task) { return run(part_.enqueue(std::move(task)), "task_queue.enqueue"); }
  std::vector<std::string> enqueue_batch(std::vector<Task> tasks) {
    return run(part_.enqueue_batch(std::move(tasks)), "task_queue.enqueue_batch");
  }
  std::optional<SyncLease> dequeue(std::vector<std::string> queues, Duration timeout = Duration::zero()) {
    auto lease = run(part_.dequeue(std::move(queues), timeout), "task_queue.dequeue");
    if (!lease) return std::nullopt;
    return SyncLease(std::move(*lease), executor());
  }
  std::vector<SyncLease> dequeue_batch(std::vector<std::string> queues, std::size_t max,
                                       Duration timeout = Duration::zero()) {
    auto leases = run(part_.dequeue_batch(std::move(queues), max, timeout), "task_queue.dequeue_batch");
    std::vector<SyncLease> out;
    for (auto& l : leases) out.emplace_back(std::move(l), executor());
    return out;
  }
  std::optional<TaskRecord> get_task(std::string id) { return run(part_.get_task(std::move(id)), "task_queue.get_task"); }
  std::optional<std::uint64_t> update_task(Task task, std::uint64_t expected_revision) {
    return run(part_.update_task(std::move(task), expected_revision), "task_queue.update_task");
  }
  bool cancel_task(std::string id) { return run(part_.cancel_task(std::move(id)), "task_queue.cancel_task"); }
  bool delete_task(std::string id) { return run(part_.delete_task(std::move(id)), "task_queue.delete_task"); }
  std::vector<Task> list_tasks(std::optional<std::string> queue = std::nullopt,
                               std::optional<TaskStatus> status = std::nullopt, std::size_t limit = 100,
                               std::size_t offset = 0) {
    return run(part_.list_tasks(std::move(queue), status, limit, offset), "task_queue.list_tasks");
  }
  std::uint64_t get_queue_size(std::string queue) {
    return run(part_.get_queue_size(std::move(queue)), "task_queue.get_queue_size");
  }
  std::size_t cleanup_expired_tasks() { return run(part_.cleanup_expired_tasks(), "task_queue.cleanup_expired_tasks"); }
  std::vector<DeadLetter> list_dead_letters(std::optional<std::string> queue = std::nullopt, std::size_t limit = 100,
                                            std::size_t offset = 0) {
    return run(part_.list_dead_letters(std::move(queue), limit, offset), "task_queue.list_dead_letters");
  }
  bool requeue_dead_letter(std::string id) {
    return run(part_.requeue_dead_letter(std::move(id)), "task_queue.requeue_dead_letter");
  }

 private:
  asio::any_io_executor executor() { return part_.backend().get_executor(); }
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(executor(), std::move(op), what);
  }
  TaskQueue& part_;
};

}  // namespace omniq
