// Publishing a task on its lane of the tasks stream, deduplicated by a message id. Shared by
// the units of the task queue that publish tasks: enqueueing (src/task_queue.cpp, where these
// are defined), the delayed lane's promotion and requeueing a dead letter.
#pragma once

#include <string>

#include <boost/asio/awaitable.hpp>

#include "omniq/config.hpp"
#include "omniq/detail/connection.hpp"
#include "omniq/models/task.hpp"

namespace omniq::detail {

// The publish of an encoded task on its lane: its priority band, or the delayed lane while its
// run_at is ahead.
Request task_publish(const Config& c, const Task& task, std::string data, std::string msg_id);
// Publishes an encoded task on its lane, deduplicated by `msg_id`; returns once stored.
asio::awaitable<void> publish_task(Connection& connection, const Task& task, std::string data, std::string msg_id,
                                   std::string what);

}  // namespace omniq::detail
