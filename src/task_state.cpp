// Task state: the task-state bucket records a task's status after enqueue, and a task not
// recorded there yet is read from the tasks stream. Lookups, compare-and-set updates,
// cancellation, deletion, listing and the cleanup of expired tasks. docs/task-queue.md
// explains the layout.
#include "omniq/task_queue.hpp"

#include <algorithm>
#include <unordered_map>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/kv.hpp"
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
  detail::KvBucket state(backend_.connection(), backend_.config().task_state_bucket.name);
  if (auto entry = co_await state.get(task_id)) co_return TaskRecord{decode_state(backend_.config(), *entry), entry->revision};
  if (auto pending = co_await find_pending(task_id)) co_return TaskRecord{std::move(pending->first), 0};
  co_return std::nullopt;
}

asio::awaitable<std::optional<std::uint64_t>> TaskQueue::update_task(Task task, std::uint64_t expected_revision) {
  std::string data = encode_checked(task);
  co_await ensure();
  detail::KvBucket state(backend_.connection(), backend_.config().task_state_bucket.name);
  co_return co_await state.update(task.id, std::move(data), expected_revision);
}

asio::awaitable<bool> TaskQueue::cancel_task(std::string task_id) {
  auto record = co_await get_task(task_id);
  if (!record || record->task.status != TaskStatus::pending) co_return false;
  record->task.status = TaskStatus::cancelled;
  auto revision = co_await update_task(record->task, record->revision);
  if (!revision) co_return false;  // changed meanwhile (started, updated): not cancelled
  // Removing the message is what keeps it from ever being delivered.
  if (auto pending = co_await find_pending(task_id))
    co_await detail::delete_message(backend_.connection(), backend_.config().tasks_stream.name, pending->second);
  co_return true;
}

asio::awaitable<bool> TaskQueue::delete_task(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  bool removed = false;
  if (auto pending = co_await find_pending(task_id))
    removed = co_await detail::delete_message(backend_.connection(), backend_.config().tasks_stream.name,
                                              pending->second);
  detail::KvBucket state(backend_.connection(), backend_.config().task_state_bucket.name);
  if (co_await state.get(task_id)) {
    co_await state.erase(task_id);
    removed = true;
  }
  co_return removed;
}

asio::awaitable<std::vector<Task>> TaskQueue::list_tasks(std::optional<std::string> queue,
                                                         std::optional<TaskStatus> status, std::size_t limit,
                                                         std::size_t offset) {
  if (queue) validate_token("queue_name", *queue);
  co_await ensure();
  const Config& c = backend_.config();
  // Recorded state wins over what was enqueued (a running task is still in the stream).
  detail::KvBucket state_bucket(backend_.connection(), c.task_state_bucket.name);
  std::unordered_map<std::string, Task> recorded;
  for (auto& entry : co_await state_bucket.list()) {
    try {
      Task t = decode_task(entry.value);
      recorded.emplace(t.id, std::move(t));
    } catch (const Error& e) {
      backend_.log().warn("omniq: skipping task state {} that cannot be decoded: {}", entry.key, e.what());
    }
  }
  auto wanted = [&](const Task& t) {
    return (!queue || t.queue_name == *queue) && (!status || t.status == *status);
  };
  std::vector<Task> out;
  const std::size_t needed = offset + limit;
  std::size_t matched = 0;
  auto take = [&](Task t) {
    if (!wanted(t)) return;
    if (matched++ >= offset && out.size() < limit) out.push_back(std::move(t));
  };
  // Tasks still in the stream, in the order they were enqueued.
  const std::string filter = c.tasks_subject + "." + (queue ? *queue : std::string("*")) + ".*.*";
  std::uint64_t next = 1;
  while (matched < needed) {
    auto stored = co_await detail::direct_get_next(backend_.connection(), c.tasks_stream.name, filter, next);
    if (!stored) break;
    next = stored->sequence + 1;
    try {
      Task t = decode_task(stored->data);
      auto it = recorded.find(t.id);
      if (it != recorded.end()) {
        t = std::move(it->second);
        recorded.erase(it);
      }
      take(std::move(t));
    } catch (const Error&) {
      // Undecodable messages are dead-lettered when dequeued; they are not tasks to list.
    }
  }
  // Then tasks known only from their recorded state, oldest first.
  std::vector<Task> rest;
  for (auto& [id, t] : recorded) rest.push_back(std::move(t));
  std::sort(rest.begin(), rest.end(), [](const Task& a, const Task& b) { return a.created_at < b.created_at; });
  for (auto& t : rest) {
    if (matched >= needed) break;
    take(std::move(t));
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
      co_await mark(*task, TaskStatus::expired);
      ++removed;
    }
  }
  co_return removed;
}

}  // namespace omniq
