// Settling deliveries of the task queue (detail/settling.hpp): acks confirmed by the server,
// the task-state record, dead letters, and the decoding of a delivery that dead-letters what
// cannot be read. docs/task-queue.md explains the guarantees.
#include "omniq/detail/settling.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/kv.hpp"
#include "omniq/detail/layout.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

using detail::JsMessage;
using nlohmann::json;

namespace {

// The queue and id in a task subject "{tasks_subject}.{queue}.{lane}.{id}", viewing into it;
// empty when it is not one.
struct SubjectParts {
  std::string_view queue, id;
};

SubjectParts split_task_subject(const Config& c, std::string_view subject) {
  SubjectParts p;
  if (subject.size() <= c.tasks_subject.size() + 1 || subject.substr(0, c.tasks_subject.size()) != c.tasks_subject)
    return p;
  std::string_view rest = subject.substr(c.tasks_subject.size() + 1);
  const auto a = rest.find('.');
  const auto b = a == std::string_view::npos ? a : rest.find('.', a + 1);
  if (b == std::string_view::npos) return p;
  p.queue = rest.substr(0, a);
  p.id = rest.substr(b + 1);
  return p;
}

json dead_letter_json(const std::string& queue, const std::string& task_id, const JsMessage& message,
                      const std::optional<Task>& task, const std::string& reason) {
  json letter = {{"schema_version", 1},
                 {"task_id", task_id},
                 {"queue_name", queue},
                 {"reason", reason},
                 {"subject", message.subject},
                 {"stream_sequence", message.stream_sequence},
                 {"deliveries", message.delivered},
                 {"dead_lettered_at", format_timestamp(now())}};
  if (task) letter["task"] = json::parse(encode(*task));
  else letter["raw"] = message.data;
  return letter;
}

}  // namespace

// ---- shared by the queue and its lane watchers ------------------------------------------
// Free functions over the connection, so a watcher running on the backend's executor needs
// nothing from the TaskQueue object.

namespace detail {

using asio::use_awaitable;

std::string nak_body(Duration delay) {
  if (delay <= Duration::zero()) return "-NAK";
  return "-NAK {\"delay\":" + std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count()) + "}";
}

asio::awaitable<void> settle_on(detail::Connection& connection, const std::string& ack_subject, std::string verb) {
  // A request, not a plain publish: the server confirms the ack, so a lost or refused ack
  // is an error here instead of a silent redelivery later.
  detail::Request req{.subject = ack_subject, .data = std::move(verb)};
  const detail::Reply reply = co_await connection.async_request(std::move(req), use_awaitable);
  if (auto e = detail::js_error(reply))
    throw_error(errc::nats_error, "acknowledging " + ack_subject + ": " + e->description);
}

asio::awaitable<void> mark_on(detail::Connection& connection, Task task, TaskStatus status) {
  task.status = status;
  detail::KvBucket state(connection, connection.config().task_state_bucket.name);
  co_await state.put(task.id, encode(task));
}

asio::awaitable<void> dead_letter_on(detail::Connection& connection, const std::string& queue,
                                     const std::string& task_id, const JsMessage& message,
                                     const std::optional<Task>& task, std::string reason) {
  const Config& c = connection.config();
  const std::string id = is_valid_token(task_id) ? task_id : "seq-" + std::to_string(message.stream_sequence);
  const std::string q = is_valid_token(queue) ? queue : "unknown";
  std::string data =
      dead_letter_json(queue, task_id, message, task, reason).dump(-1, ' ', false, json::error_handler_t::replace);
  // Deduplicated by the original message: a retry after a crash writes it once.
  detail::Headers headers{
      {"Nats-Msg-Id", "dlq-" + c.tasks_stream.name + "-" + std::to_string(message.stream_sequence)}};
  co_await detail::js_publish(connection, detail::dead_letter_subject(c, q, id), std::move(data), std::move(headers),
                              "dead-lettering task " + id);
  connection.log().warn("omniq: task {} of queue {} dead-lettered: {}", id, q, reason);
}

// Decodes a delivered task; one that cannot be decoded is dead-lettered with the reason and
// removed, so it never blocks its lane.
asio::awaitable<std::optional<Task>> decode_or_dead_letter(detail::Connection& connection, const JsMessage& m) {
  std::optional<Task> task;
  std::string decode_error;
  const SubjectParts where = split_task_subject(connection.config(), m.subject);
  try {
    task = decode_task(m.data);
    // Another client may have published a task that is not valid, or that claims another
    // queue or id than its subject (results, state and dead letters go by those).
    if (task->queue_name != where.queue || task->id != where.id)
      throw_error(errc::decode_error, "task " + task->id + " of queue " + task->queue_name +
                                          " does not belong on subject " + m.subject);
    task->validate();
  } catch (const Error& e) {
    task.reset();
    decode_error = e.what();
  }
  if (!task) {
    std::string queue(where.queue), id(where.id);
    co_await dead_letter_on(connection, queue, id, m, std::nullopt, "cannot decode task: " + decode_error);
    co_await settle_on(connection, m.reply, "+TERM");
  }
  co_return task;
}

}  // namespace detail

}  // namespace omniq
