// Dead letters: listing the OMNIQ_DLQ stream and requeueing a dead-lettered task.
// docs/task-queue.md explains the layout.
#include "omniq/task_queue.hpp"

#include <nlohmann/json.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/kv.hpp"
#include "omniq/detail/task_publish.hpp"
#include "omniq/error.hpp"
#include "omniq/result_store.hpp"
#include "omniq/validation.hpp"
#include "json_limits.hpp"

namespace omniq {

using detail::publish_task;
using nlohmann::json;

namespace {

// Any client allowed to publish dead letters may have put anything in the stream: what cannot
// be read comes back as a letter whose reason says so, with the raw bytes.
DeadLetter decode_dead_letter(const std::string& data, std::uint64_t sequence) {
  DeadLetter d;
  d.sequence = sequence;
  const json j = detail::json_nested_deeper_than(data) ? json(json::value_t::discarded)
                                                       : json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    d.reason = "dead letter is not JSON";
    d.raw = data;
    return d;
  }
  try {
    d.task_id = j.value("task_id", "");
    d.queue_name = j.value("queue_name", "");
    d.reason = j.value("reason", "");
    d.subject = j.value("subject", "");
    d.raw = j.value("raw", "");
    d.deliveries = j.value("deliveries", std::uint64_t{0});
    if (j.contains("dead_lettered_at") && j["dead_lettered_at"].is_string())
      d.dead_lettered_at = parse_timestamp(j["dead_lettered_at"].get<std::string>());
  } catch (const std::exception& e) {
    DeadLetter unreadable;
    unreadable.sequence = sequence;
    unreadable.reason = std::string("dead letter cannot be read: ") + e.what();
    unreadable.raw = data;
    return unreadable;
  }
  if (j.contains("task") && j["task"].is_object()) {
    try {
      d.task = decode_task(j["task"].dump());
    } catch (const Error&) {
    }
  }
  if (d.reason.empty()) {
    d.reason = "dead letter without a reason (not written by omniq)";
    if (!d.task && d.raw.empty()) d.raw = data;
  }
  return d;
}

}  // namespace

asio::awaitable<std::vector<DeadLetter>> TaskQueue::list_dead_letters(std::optional<std::string> queue,
                                                                      std::size_t limit, std::size_t offset) {
  if (queue) validate_token("queue_name", *queue);
  co_await ensure();
  const Config& c = backend_.config();
  const std::string filter = c.dead_letter_subject + "." + (queue ? *queue : std::string("*")) + ".*";
  auto messages = co_await detail::scan(backend_.connection(), c.dead_letter_stream.name, filter, false);
  std::vector<DeadLetter> out;
  for (std::size_t i = offset; i < messages.size() && out.size() < limit; ++i)
    out.push_back(decode_dead_letter(messages[i].data, messages[i].stream_sequence));
  co_return out;
}

asio::awaitable<std::optional<Task>> TaskQueue::find_dead_letter(const std::string& task_id) {
  const Config& c = backend_.config();
  auto stored = co_await detail::direct_get_next(backend_.connection(), c.dead_letter_stream.name,
                                                 c.dead_letter_subject + ".*." + task_id, 1);
  if (!stored) co_return std::nullopt;
  DeadLetter letter = decode_dead_letter(stored->data, stored->sequence);
  if (letter.task) co_return std::move(letter.task);
  Task t;  // a letter without a readable task still says the task is dead-lettered
  t.id = task_id;
  t.queue_name = letter.queue_name;
  co_return t;
}

asio::awaitable<bool> TaskQueue::requeue_dead_letter(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  const Config& c = backend_.config();
  auto stored = co_await detail::direct_get_next(backend_.connection(), c.dead_letter_stream.name,
                                                 c.dead_letter_subject + ".*." + task_id, 1);
  if (!stored) co_return false;
  DeadLetter letter = decode_dead_letter(stored->data, stored->sequence);
  if (!letter.task)
    throw_error(errc::decode_error, "dead letter of task " + task_id +
                                        " holds no decodable task (reason: " + letter.reason + "); it cannot be requeued");
  Task task = std::move(*letter.task);
  task.retry_count = 0;
  task.status = TaskStatus::pending;
  std::string data = encode_checked(task);
  std::string msg_id = task.id + ":requeue:" + std::to_string(stored->sequence);
  std::string what = "requeueing task " + task.id;
  // Its recorded state (failed) and its result no longer hold: the task is pending again, and
  // a worker runs a task id only while it has no final result. Both go first, unconditionally
  // (a replica's view of whether they exist may lag): published before, the task could meet
  // its old result and be settled from it without running. A crash in between leaves the
  // dead letter in place, to requeue again.
  detail::KvBucket state(backend_.connection(), c.task_state_bucket.name);
  co_await state.erase(task.id);
  detail::KvBucket results(backend_.connection(), c.results_bucket.name);
  co_await backend_.result_store().ensure();
  co_await results.erase(task.id);
  co_await publish_task(backend_.connection(), task, std::move(data), std::move(msg_id), std::move(what));
  co_await detail::delete_message(backend_.connection(), c.dead_letter_stream.name, stored->sequence);
  co_return true;
}

}  // namespace omniq
