// Settling deliveries of the task queue: acks confirmed by the server, the task-state record,
// dead letters. Shared by the queue and its lease (src/task_queue.cpp, src/lease.cpp) and its
// lane watchers (src/task_feed.cpp): free functions over the connection, so a watcher running
// on the backend's executor needs nothing from the TaskQueue object. Defined in
// src/settling.cpp.
#pragma once

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/models/task.hpp"
#include "omniq/time.hpp"

namespace omniq::detail {

// The body of a NAK: redelivered at once, or after `delay` when it is positive.
std::string nak_body(Duration delay);
// Settles the delivery of `ack_subject` with `verb` (+ACK, +TERM ...), confirmed by the server.
asio::awaitable<void> settle_on(Connection& connection, const std::string& ack_subject, std::string verb);
// Records `task` with `status` in the task-state bucket.
asio::awaitable<void> mark_on(Connection& connection, Task task, TaskStatus status);
// Writes the dead letter of a delivered message (with its task when it could be decoded),
// deduplicated by the message's stream sequence.
asio::awaitable<void> dead_letter_on(Connection& connection, const std::string& queue, const std::string& task_id,
                                     const JsMessage& message, const std::optional<Task>& task, std::string reason);
// Decodes a delivered task; one that cannot be decoded is dead-lettered and removed.
asio::awaitable<std::optional<Task>> decode_or_dead_letter(Connection& connection, const JsMessage& m);

}  // namespace omniq::detail
