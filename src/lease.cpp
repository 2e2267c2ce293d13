// A lease on a dequeued task: acked, nacked, retried, deferred, termed or dead-lettered; and
// the queue's settling of deliveries that leases and dequeue go through (detail/settling.hpp
// does the work). docs/task-queue.md explains the guarantees.
#include "omniq/task_queue.hpp"

#include <algorithm>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/settling.hpp"

namespace omniq {

using detail::JsMessage;
using detail::dead_letter_on;
using detail::mark_on;
using detail::nak_body;
using detail::settle_on;

// ---- Lease ---------------------------------------------------------------------------------

Lease::Lease(TaskQueue& queue, Task task, JsMessage message)
    : queue_(&queue),
      task_(std::move(task)),
      subject_(std::move(message.subject)),
      ack_subject_(std::move(message.reply)),
      delivered_(message.delivered),
      sequence_(message.stream_sequence) {}

asio::awaitable<void> Lease::ack() { co_await queue_->settle(ack_subject_, "+ACK"); }

asio::awaitable<void> Lease::ack_unconfirmed() {
  queue_->backend_.connection().publish(ack_subject_, "+ACK");
  co_return;
}

asio::awaitable<void> Lease::nack(Duration delay) {
  queue_->backend_.connection().publish(ack_subject_, nak_body(delay));
  co_return;
}

asio::awaitable<void> Lease::in_progress() {
  queue_->backend_.connection().publish(ack_subject_, "+WPI");
  co_return;
}

asio::awaitable<Task> Lease::retry(Duration delay) {
  Task next = task_;
  next.retry_count += 1;
  next.status = TaskStatus::pending;
  if (delay > Duration::zero()) next.run_at = now() + delay;
  else next.run_at.reset();
  std::string msg_id = task_.id + ":retry:" + std::to_string(sequence_);  // named: see g++ 12 note
  co_await queue_->republish(next, std::move(msg_id));
  co_await ack();
  co_return next;
}

asio::awaitable<void> Lease::defer(Duration delay) {
  Task next = task_;
  next.run_at = now() + std::max(delay, Duration::zero());
  std::string msg_id = task_.id + ":defer:" + std::to_string(sequence_);
  co_await queue_->republish(next, std::move(msg_id));
  co_await ack();
}

asio::awaitable<void> Lease::term() { co_await queue_->settle(ack_subject_, "+TERM"); }

asio::awaitable<void> Lease::dead_letter(std::string reason) {
  JsMessage m;
  m.subject = subject_;
  m.reply = ack_subject_;
  m.delivered = delivered_;
  m.stream_sequence = sequence_;
  m.data = encode(task_);
  // Written first: on a work-queue stream the term deletes the message.
  co_await queue_->write_dead_letter(task_.queue_name, task_.id, m, task_, std::move(reason));
  co_await queue_->settle(ack_subject_, "+TERM");
}

asio::any_io_executor Lease::executor() const { return queue_->executor(); }

// ---- TaskQueue: settling -------------------------------------------------------------------

asio::awaitable<void> TaskQueue::settle(const std::string& ack_subject, std::string verb) {
  co_await settle_on(backend_.connection(), ack_subject, std::move(verb));
}

asio::awaitable<void> TaskQueue::mark(Task task, TaskStatus status) {
  co_await mark_on(backend_.connection(), std::move(task), status);
}

asio::awaitable<void> TaskQueue::write_dead_letter(const std::string& queue, const std::string& task_id,
                                                   const JsMessage& message, const std::optional<Task>& task,
                                                   std::string reason) {
  co_await dead_letter_on(backend_.connection(), queue, task_id, message, task, std::move(reason));
}

}  // namespace omniq
