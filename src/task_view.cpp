// A task's status from the facts stored about it (see detail/task_view.hpp).
#include "omniq/detail/task_view.hpp"

#include <string_view>
#include <unordered_map>

#include "omniq/detail/claim.hpp"

namespace omniq::detail {

namespace {

bool final_status(TaskStatus s) {
  return s == TaskStatus::completed || s == TaskStatus::failed || s == TaskStatus::dead_lettered ||
         s == TaskStatus::cancelled || s == TaskStatus::expired;
}

// A waiting task: delayed while its run_at is ahead (a delay, or a retry's backoff).
TaskStatus waiting_status(const Task& t, Timestamp now) {
  return t.run_at && *t.run_at > now ? TaskStatus::delayed : TaskStatus::pending;
}

// A finished task known only from its result: what the result says of it.
Task task_of(const TaskResult& r, int attempts) {
  Task t;
  t.id = r.task_id;
  t.func = r.func.value_or("");
  t.queue_name = r.queue_name.value_or("");
  t.created_at = r.created_at;
  t.retry_count = attempts > 0 ? attempts - 1 : 0;
  return t;
}

std::uint64_t claimed_message(const TaskResult& r) {
  if (!r.metadata.is_object()) return 0;
  const auto it = r.metadata.find(kClaimMessageKey);
  return it != r.metadata.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

}  // namespace

bool dead_lettered_failure(const TaskResult& result) {
  return result.status == ResultStatus::error && result.metadata.is_object() &&
         result.metadata.contains(kDeadLetterKey);
}

std::optional<TaskRecord> task_view(TaskFacts facts, Timestamp now) {
  if (!facts.state && !facts.result && !facts.message && !facts.dead_letter) return std::nullopt;
  if (facts.result && facts.result->status == ResultStatus::cancelled &&
      facts.result->error_type == kDeletedType && !facts.state && !facts.message && !facts.dead_letter)
    return std::nullopt;  // deleted
  TaskRecord rec;
  rec.revision = facts.state ? facts.state_revision : 0;
  const TaskResult* r = facts.result ? &*facts.result : nullptr;
  if (r) {
    rec.worker_id = r->worker_id;
    rec.attempts = attempts_of(*r);
    rec.started_at = r->started_at;
    rec.progress = r->progress;
    rec.progress_message = r->progress_message;
  }
  // The task itself: its recorded state wins over its message (update_task changed it), the
  // message over its dead letter, and a result alone rebuilds what it can.
  if (facts.state) rec.task = std::move(*facts.state);
  else if (facts.message) rec.task = *facts.message;
  else if (facts.dead_letter) rec.task = *facts.dead_letter;
  else rec.task = task_of(*r, rec.attempts);

  const TaskStatus recorded = rec.task.status;
  if (r && r->status != ResultStatus::pending) {
    // An outcome is final (a requeue from the dead letters removes it).
    rec.finished_at = r->completed_at;
    rec.error_type = r->error_type;
    rec.error = r->error;
    switch (r->status) {
      case ResultStatus::success:
        rec.task.status = TaskStatus::completed;
        break;
      case ResultStatus::error:
        rec.task.status = dead_lettered_failure(*r) && facts.dead_letter ? TaskStatus::dead_lettered
                                                                         : TaskStatus::failed;
        break;
      case ResultStatus::cancelled:
        rec.task.status = TaskStatus::cancelled;
        break;
      case ResultStatus::expired:
        rec.task.status = TaskStatus::expired;
        break;
      case ResultStatus::pending:
        break;
    }
    return rec;
  }
  if (facts.state && (final_status(recorded) || recorded == TaskStatus::running)) return rec;  // as recorded
  if (r) {
    // Claimed. A message other than the claimed one is the task enqueued again (a retry
    // waiting out its backoff): it waits; else the claim's run holds it.
    if (facts.message && facts.message_sequence != 0 && claimed_message(*r) != 0 &&
        claimed_message(*r) != facts.message_sequence) {
      rec.task.status = waiting_status(*facts.message, now);
      return rec;
    }
    rec.task.status = TaskStatus::running;
    return rec;
  }
  rec.task.status = waiting_status(rec.task, now);
  return rec;
}

std::vector<std::string> dependency_cycle(const std::vector<Task>& tasks) {
  std::unordered_map<std::string_view, const Task*> by_id;
  for (const auto& t : tasks) by_id.emplace(t.id, &t);
  // Depth-first, iteratively (a long chain must not exhaust the stack): 1 on the current
  // path, 2 done.
  std::unordered_map<std::string_view, int> mark;
  for (const auto& start : tasks) {
    if (mark[start.id] != 0) continue;
    std::vector<std::pair<const Task*, std::size_t>> path{{&start, 0}};
    mark[start.id] = 1;
    while (!path.empty()) {
      auto& [task, next] = path.back();
      if (next == task->dependencies.size()) {
        mark[task->id] = 2;
        path.pop_back();
        continue;
      }
      const std::string& dep = task->dependencies[next++];
      const auto it = by_id.find(dep);
      if (it == by_id.end()) continue;  // not in this batch
      const int m = mark[dep];
      if (m == 2) continue;
      if (m == 1) {
        std::vector<std::string> cycle;
        std::size_t from = 0;
        while (path[from].first->id != dep) ++from;
        for (std::size_t i = from; i < path.size(); ++i) cycle.push_back(path[i].first->id);
        cycle.push_back(dep);
        return cycle;
      }
      mark[dep] = 1;
      path.emplace_back(it->second, 0);
    }
  }
  return {};
}

}  // namespace omniq::detail
