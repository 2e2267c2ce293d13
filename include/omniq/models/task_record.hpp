// What get_task and list_tasks report about a task: the task with its lifecycle status, and
// the facts of its runs. Read from where each fact is stored, never written twice: the task's
// message in the tasks stream (pending, delayed), the worker's claim and outcome in the results
// bucket (running, completed, failed, dead-lettered, cancelled, expired), the task-state bucket
// (a state set by update_task, cancel_task or expiry) and the dead-letter stream.
// docs/task-queue.md ("Task state") has the rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "omniq/models/task.hpp"
#include "omniq/time.hpp"

namespace omniq {

/// A task as stored, with the revision that update_task compares against.
struct TaskRecord {
  /// task.status is the task's status now (see TaskStatus). A finished task whose message
  /// left the stream and which has no recorded state is rebuilt from its result: id, func,
  /// queue_name and retry_count are known, args and kwargs are not kept.
  Task task{};
  /// 0 while the task has no recorded state (only enqueued, or settled by a worker); the
  /// task-state bucket's revision once it was updated, cancelled or expired.
  std::uint64_t revision = 0;
  /// The worker that runs or ran it (its last claim).
  std::optional<std::string> worker_id{};
  /// Attempts started so far; 0 until a worker claimed it.
  int attempts = 0;
  /// When the current or last attempt started, and when the task finished (completed, failed,
  /// dead-lettered, cancelled or expired).
  std::optional<Timestamp> started_at{};
  std::optional<Timestamp> finished_at{};
  /// The last progress(fraction, message) its handler reported.
  std::optional<double> progress{};
  std::optional<std::string> progress_message{};
  /// Why it failed, was dead-lettered, cancelled or expired, when known.
  std::optional<std::string> error_type{};
  std::optional<std::string> error{};
};

}  // namespace omniq
