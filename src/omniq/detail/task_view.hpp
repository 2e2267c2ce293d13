// One task's status and run facts (TaskRecord) from the facts stored about it, wherever they
// are: its recorded state, its result (the worker's claim or outcome), its message in the tasks
// stream and its dead letter. Plain logic, no I/O, so the rules are unit-tested
// (tests/unit/test_task_view.cpp); get_task and list_tasks do the reads. docs/task-queue.md
// ("Task state") states the rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "omniq/models/result.hpp"
#include "omniq/models/task.hpp"
#include "omniq/models/task_record.hpp"

namespace omniq::detail {

// The error_type of the `cancelled` result delete_task leaves for a task deleted before it ran:
// its dependents fail and wait_for_result answers, but get_task and list_tasks know no task.
inline constexpr const char* kDeletedType = "deleted";

// Result metadata the worker writes with a failure it dead-letters: the letter's reason.
inline constexpr const char* kDeadLetterKey = "dead_letter_reason";

struct TaskFacts {
  std::optional<Task> state{};  // the task-state bucket's record
  std::uint64_t state_revision = 0;
  std::optional<TaskResult> result{};  // the results bucket: a claim (pending) or an outcome
  std::optional<Task> message{};       // the task's message in the tasks stream
  std::uint64_t message_sequence = 0;
  std::optional<Task> dead_letter{};  // the task as dead-lettered, when its letter is kept
};

// True for a failure the worker dead-lettered (its result carries the letter's reason).
bool dead_lettered_failure(const TaskResult& result);

// The task's record at `now`; nullopt when nothing is stored about it.
std::optional<TaskRecord> task_view(TaskFacts facts, Timestamp now);

// A dependency cycle among `tasks` (enqueued together), as the ids along it with the first
// repeated at the end ("a -> b -> a"); empty when there is none.
std::vector<std::string> dependency_cycle(const std::vector<Task>& tasks);

}  // namespace omniq::detail
