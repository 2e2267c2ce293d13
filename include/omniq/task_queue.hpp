// The task queue: tasks in a JetStream work-queue stream (OMNIQ_TASKS) shared by every worker of a queue, with a dead-letter stream (OMNIQ_DLQ) beside it.
// Coroutine API on TaskQueue; its blocking twin SyncTaskQueue runs the same operations from plain threads
// over the backend's one connection.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class TaskQueue {
 public:
  // Shares the backend's connection; creates nothing until first used.
  explicit TaskQueue(NatsBackend& backend) : backend_(backend) {}

  // Creates or checks its streams with the configured settings (done once; every operation does it).
  asio::awaitable<void> ensure();
  // The server's view of its streams: settings as stored and current state.
  asio::awaitable<StreamReport> info();

  NatsBackend& backend() noexcept { return backend_; }

 private:
  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

class SyncTaskQueue {
 public:
  explicit SyncTaskQueue(TaskQueue& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "task_queue.ensure"); }
  StreamReport info() { return run(part_.info(), "task_queue.info"); }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(part_.backend().get_executor(), std::move(op), what);
  }
  TaskQueue& part_;
};

}  // namespace omniq
