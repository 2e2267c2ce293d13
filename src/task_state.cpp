// Task state: the task-state bucket records a task's status after enqueue, and a task not
// recorded there yet is read from the tasks stream. Lookups, compare-and-set updates,
// cancellation, deletion, listing and the cleanup of expired tasks. docs/task-queue.md
// explains the layout.
#include "omniq/task_queue.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/kv.hpp"
#include "omniq/detail/task_view.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

namespace {

// A task's recorded state, or decode_error naming its key (another client may have put
// anything there).
Task decode_state(const Config& c, const detail::KvEntry& entry) {
  return detail::decode_entry(entry, "task state", c.task_state_bucket.name,
                              [](std::string_view text) { return decode_task(text); });
}

}  // namespace

asio::awaitable<std::optional<std::pair<Task, std::uint64_t>>> TaskQueue::find_pending(const std::string& task_id) {
  const Config& c = backend_.config();
  auto stored = co_await detail::direct_get_next(backend_.connection(), c.tasks_stream.name,
                                                 c.tasks_subject + ".*.*." + task_id, 1);
  if (!stored) co_return std::nullopt;
  try {
    co_return std::pair{decode_task(stored->data), stored->sequence};
  } catch (const Error& e) {
    backend_.log().warn("omniq: task {} in the stream cannot be decoded: {}", task_id, e.what());
    co_return std::nullopt;
  }
}

asio::awaitable<std::optional<TaskRecord>> TaskQueue::get_task(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  // The facts, each from where it is stored (detail/task_view.hpp has the rules): the recorded
  // state and the result first; the message only while the task may still wait or run; the
  // dead letter only for a failure the worker dead-lettered.
  detail::TaskFacts facts;
  detail::KvBucket state(backend_.connection(), backend_.config().task_state_bucket.name);
  if (auto entry = co_await state.get(task_id)) {
    facts.state = decode_state(backend_.config(), *entry);
    facts.state_revision = entry->revision;
  }
  facts.result = co_await backend_.result_store().get(task_id);
  const bool finished = facts.result && facts.result->status != ResultStatus::pending;
  if (!finished) {
    if (auto pending = co_await find_pending(task_id)) {
      facts.message = std::move(pending->first);
      facts.message_sequence = pending->second;
    }
  }
  if (facts.result && detail::dead_lettered_failure(*facts.result)) facts.dead_letter = co_await find_dead_letter(task_id);
  co_return detail::task_view(std::move(facts), now());
}

asio::awaitable<std::optional<std::uint64_t>> TaskQueue::update_task(Task task, std::uint64_t expected_revision) {
  std::string data = encode_checked(task);
  co_await ensure();
  detail::KvBucket state(backend_.connection(), backend_.config().task_state_bucket.name);
  co_return co_await state.update(task.id, std::move(data), expected_revision);
}

asio::awaitable<bool> TaskQueue::cancel_task(std::string task_id) {
  auto record = co_await get_task(task_id);
  if (!record) co_return false;
  const TaskStatus was = record->task.status;
  if (was != TaskStatus::pending && was != TaskStatus::delayed && was != TaskStatus::running)
    co_return false;  // finished
  Task task = record->task;
  task.status = TaskStatus::cancelled;
  auto revision = co_await update_task(task, record->revision);
  if (!revision) co_return false;  // changed meanwhile (updated, cancelled): not cancelled
  // A running task's worker follows the task-state bucket: it stops the handler, then stores
  // the cancelled result and event over its claim and acks the message.
  if (was == TaskStatus::running) co_return true;
  // A waiting one: removing the message keeps it from ever being delivered; the result
  // answers wait_for_result.
  if (auto pending = co_await find_pending(task_id))
    co_await detail::delete_message(backend_.connection(), backend_.config().tasks_stream.name, pending->second);
  co_await store_end(task, ResultStatus::cancelled, "cancelled", "cancelled before it ran");
  TaskEvent event = events::cancelled(task.id);
  event.queue_name = task.queue_name;
  co_await log_end(std::move(event));
  co_return true;
}

asio::awaitable<void> TaskQueue::store_end(const Task& task, ResultStatus status, std::string error_type,
                                           std::string error) {
  TaskResult end{.task_id = task.id, .status = status, .completed_at = now()};
  end.error_type = std::move(error_type);
  end.error = std::move(error);
  end.queue_name = task.queue_name;
  end.func = task.func;
  auto& results = backend_.result_store();
  // Over a claim left by an earlier attempt (a retry waiting out its backoff), never over an
  // outcome: a task that ran keeps what it stored.
  for (int round = 0; round < 3; ++round) {
    if (co_await results.create(end)) co_return;
    auto stored = co_await results.get_record(task.id);
    if (!stored) continue;  // removed meanwhile: create again
    if (stored->result.status != ResultStatus::pending) co_return;
    if (co_await results.update(end, stored->revision)) co_return;
  }
  backend_.log().warn("omniq: the {} result of task {} was not stored: its result kept changing", to_string(status),
                      task.id);
}

asio::awaitable<void> TaskQueue::log_end(TaskEvent event) {
  // Deduplicated per task and kind: an expiry or cancellation handled twice (a redelivery, a
  // crash in between) logs one event. Best effort: the result above is the record.
  std::string dedup_id = std::string(to_string(event.event_type)) + "-" + event.task_id;
  const std::string id = event.task_id;
  try {
    co_await backend_.event_log().log_event(std::move(event), std::move(dedup_id));
  } catch (const Error& e) {
    backend_.log().warn("omniq: logging the end of task {}: {}", id, e.what());
  }
}

asio::awaitable<void> TaskQueue::expire(Task task) {
  co_await mark(task, TaskStatus::expired);
  co_await store_end(task, ResultStatus::expired, "expired", "expired before it ran");
  TaskEvent event = events::expired(task.id);
  event.queue_name = task.queue_name;
  co_await log_end(std::move(event));
}

asio::awaitable<bool> TaskQueue::delete_task(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  bool removed = false;
  std::optional<Task> task;
  if (auto pending = co_await find_pending(task_id)) {
    task = pending->first;
    removed = co_await detail::delete_message(backend_.connection(), backend_.config().tasks_stream.name,
                                              pending->second);
  }
  detail::KvBucket state(backend_.connection(), backend_.config().task_state_bucket.name);
  if (co_await state.get(task_id)) {
    co_await state.erase(task_id);
    removed = true;
  }
  // A task deleted before it ran leaves a `cancelled` result (error_type "deleted"): a task
  // depending on it fails instead of waiting, and wait_for_result answers. A result the task
  // already has (it ran) is kept.
  if (removed && task) co_await store_end(*task, ResultStatus::cancelled, detail::kDeletedType, "deleted before it ran");
  co_return removed;
}

asio::awaitable<std::vector<Task>> TaskQueue::list_tasks(std::optional<std::string> queue,
                                                         std::optional<TaskStatus> status, std::size_t limit,
                                                         std::size_t offset) {
  if (queue) validate_token("queue_name", *queue);
  co_await ensure();
  const Config& c = backend_.config();
  const Timestamp t = now();
  // The facts of every task known outside the stream: recorded states and results (claims and
  // outcomes). Both buckets are read whole; the stream only as far as the page needs.
  std::unordered_map<std::string, detail::TaskFacts> known;
  detail::KvBucket state_bucket(backend_.connection(), c.task_state_bucket.name);
  for (auto& entry : co_await state_bucket.list()) {
    try {
      auto& f = known[entry.key];
      f.state = decode_task(entry.value);
      f.state_revision = entry.revision;
    } catch (const Error& e) {
      known.erase(entry.key);
      backend_.log().warn("omniq: skipping task state {} that cannot be decoded: {}", entry.key, e.what());
    }
  }
  for (auto& r : co_await backend_.result_store().list(std::nullopt, std::numeric_limits<std::size_t>::max(), 0)) {
    std::string id = r.task_id;
    known[id].result = std::move(r);
  }
  auto wanted = [&](const Task& task) {
    return (!queue || task.queue_name == *queue) && (!status || task.status == *status);
  };
  std::vector<Task> out;
  const std::size_t needed = offset + limit;
  std::size_t matched = 0;
  auto take = [&](detail::TaskFacts facts) {
    auto rec = detail::task_view(std::move(facts), t);
    if (!rec || !wanted(rec->task)) return;
    if (matched++ >= offset && out.size() < limit) out.push_back(std::move(rec->task));
  };
  // Tasks still in the stream (waiting or running), in the order they were enqueued. Not
  // scanned when the status asked for is one no message has.
  const bool in_stream = !status || *status == TaskStatus::pending || *status == TaskStatus::delayed ||
                         *status == TaskStatus::running;
  const std::string filter = c.tasks_subject + "." + (queue ? *queue : std::string("*")) + ".*.*";
  std::uint64_t next = 1;
  while (in_stream && matched < needed) {
    auto stored = co_await detail::direct_get_next(backend_.connection(), c.tasks_stream.name, filter, next);
    if (!stored) break;
    next = stored->sequence + 1;
    detail::TaskFacts facts;
    try {
      facts.message = decode_task(stored->data);
    } catch (const Error&) {
      continue;  // undecodable messages are dead-lettered when dequeued; they are not tasks to list
    }
    facts.message_sequence = stored->sequence;
    if (auto it = known.find(facts.message->id); it != known.end()) {
      facts.state = std::move(it->second.state);
      facts.state_revision = it->second.state_revision;
      facts.result = std::move(it->second.result);
      known.erase(it);
    }
    take(std::move(facts));
  }
  // Then the tasks known only from their state or result, oldest first. Dead letters are
  // looked up once, when a dead-lettered failure is among them.
  std::vector<detail::TaskFacts> rest;
  bool letters_needed = false;
  for (auto& [id, f] : known) {
    if (f.result && detail::dead_lettered_failure(*f.result)) letters_needed = true;
    rest.push_back(std::move(f));
  }
  if (letters_needed) {
    std::unordered_map<std::string, Task> letters;
    for (auto& letter : co_await list_dead_letters(std::nullopt, std::numeric_limits<std::size_t>::max(), 0))
      if (letter.task) letters.emplace(letter.task->id, std::move(*letter.task));
    for (auto& f : rest) {
      if (!f.result || !detail::dead_lettered_failure(*f.result)) continue;
      if (auto it = letters.find(f.result->task_id); it != letters.end()) f.dead_letter = it->second;
    }
  }
  auto created = [](const detail::TaskFacts& f) {
    return f.state ? f.state->created_at : f.dead_letter ? f.dead_letter->created_at : f.result->created_at;
  };
  std::sort(rest.begin(), rest.end(),
            [&](const detail::TaskFacts& a, const detail::TaskFacts& b) { return created(a) < created(b); });
  for (auto& f : rest) {
    if (matched >= needed) break;
    take(std::move(f));
  }
  co_return out;
}

asio::awaitable<std::size_t> TaskQueue::cleanup_expired_tasks() {
  co_await ensure();
  const Config& c = backend_.config();
  std::size_t removed = 0;
  std::uint64_t next = 1;
  const Timestamp t = now();
  for (;;) {
    auto stored = co_await detail::direct_get_next(backend_.connection(), c.tasks_stream.name, c.tasks_subject + ".>",
                                                   next);
    if (!stored) break;
    next = stored->sequence + 1;
    std::optional<Task> task;
    try {
      task = decode_task(stored->data);
    } catch (const Error&) {
      continue;
    }
    if (!task->is_expired(t)) continue;
    if (co_await detail::delete_message(backend_.connection(), c.tasks_stream.name, stored->sequence)) {
      co_await expire(*task);
      ++removed;
    }
  }
  co_return removed;
}

}  // namespace omniq
