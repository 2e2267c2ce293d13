// The task queue: enqueue as JetStream publishes with a dedup id, dequeue as pulls from one
// durable consumer per (queue, lane), task state in a KV bucket written only on changes after
// enqueue. docs/task-queue.md explains the layout and the guarantees. This unit holds
// provisioning, enqueue, the queue's consumers and dequeue; leases, the lane watchers, task
// state and dead letters have units of their own (docs/architecture.md lists them).
#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/ensure.hpp"
#include "omniq/task_queue.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/layout.hpp"
#include "omniq/detail/retry.hpp"
#include "omniq/detail/settling.hpp"
#include "omniq/detail/task_feed.hpp"
#include "omniq/detail/task_publish.hpp"
#include "omniq/detail/task_view.hpp"
#include "omniq/event_log.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

using asio::use_awaitable;
using detail::JsMessage;
using detail::decode_or_dead_letter;
using detail::kDemandWindow;
using detail::publish_task;
using detail::task_publish;
using detail::watch_delayed;
using detail::watch_lane;
using namespace std::chrono_literals;

namespace {

// Publishes in flight at once in enqueue_batch.
constexpr std::size_t kPublishWindow = 4096;

}  // namespace

asio::any_io_executor TaskQueue::executor() const noexcept { return backend_.get_executor(); }

TaskQueue::TaskQueue(NatsBackend& backend)
    : backend_(backend),
      doorbell_(std::make_shared<detail::Doorbell>(backend.get_executor())),
      prefetch_(static_cast<std::size_t>(backend.config().prefetch)) {}

TaskQueue::~TaskQueue() {
  std::lock_guard lock(mu_);
  for (auto& [name, feed] : feeds_) feed->stopped = true;
}

asio::awaitable<void> TaskQueue::ensure() {
  auto make = [&c = backend_.config()] {
    return [tasks = detail::tasks_stream_spec(c), dead_letters = detail::dead_letter_stream_spec(c),
            state = c.task_state_bucket](natsConnection*, jsCtx* js) {
      detail::ensure_stream(js, tasks);
      detail::ensure_stream(js, dead_letters);
      detail::ensure_bucket(js, state);
    };
  };
  co_await detail::ensure_once(provisioned_, backend_.connection(), std::move(make));
}

asio::awaitable<void> TaskQueue::ensure_tasks_stream() {
  if (provisioned_.done()) co_return;
  auto make = [&c = backend_.config()] {
    return [tasks = detail::tasks_stream_spec(c)](natsConnection*, jsCtx* js) { detail::ensure_stream(js, tasks); };
  };
  co_await detail::ensure_once(tasks_stream_provisioned_, backend_.connection(), std::move(make));
}

asio::awaitable<StreamReport> TaskQueue::info() {
  co_await ensure();
  co_return co_await detail::stream_report(backend_.connection(), backend_.config().tasks_stream.name);
}

std::string TaskQueue::encode_checked(const Task& task) const {
  task.validate();
  std::string data = encode(task);
  const std::int64_t limit = backend_.connection().max_payload();
  // Headers (message id, expected stream) take a little of max_payload too.
  const std::size_t overhead = 64 + task.id.size() + backend_.config().tasks_stream.name.size();
  if (limit > 0 && static_cast<std::int64_t>(data.size() + overhead) > limit)
    throw_error(errc::payload_too_large, "task " + task.id + " is " + std::to_string(data.size()) +
                                             " bytes encoded, over the server's max_payload of " +
                                             std::to_string(limit) + " bytes");
  return data;
}

namespace detail {
detail::Request task_publish(const Config& c, const Task& task, std::string data, std::string msg_id) {
  const bool delayed = task.run_at && *task.run_at > now();
  const std::string_view lane = delayed ? detail::kDelayedLane : detail::band_for(task.priority);
  return detail::Request{.subject = detail::task_subject(c, task.queue_name, lane, task.id),
                         .data = std::move(data),
                         .headers = {{"Nats-Msg-Id", std::move(msg_id)},
                                     {"Nats-Expected-Stream", c.tasks_stream.name}}};
}
// Publishes an encoded task on its lane, deduplicated by `msg_id`; returns once stored.
asio::awaitable<void> publish_task(detail::Connection& connection, const Task& task, std::string data,
                                   std::string msg_id, std::string what) {
  detail::Request req = task_publish(connection.config(), task, std::move(data), std::move(msg_id));
  co_await detail::js_publish(connection, std::move(req.subject), std::move(req.data), std::move(req.headers),
                              std::move(what));
}
}  // namespace detail

asio::awaitable<void> TaskQueue::republish(const Task& task, std::string msg_id) {
  std::string data = encode_checked(task);
  std::string what = "enqueueing task " + task.id + " again on queue " + task.queue_name;
  co_await publish_task(backend_.connection(), task, std::move(data), std::move(msg_id), std::move(what));
}

namespace {
// Runs `attempt` again while it fails with a failure that may pass, until `limit` has passed
// since the first try; pauses grow from 100 ms to 1 s.
template <class Attempt>
asio::awaitable<void> while_passing(Duration limit, Attempt attempt) {
  const auto until = std::chrono::steady_clock::now() + limit;
  auto past_limit = [until](std::chrono::milliseconds pause) { return std::chrono::steady_clock::now() + pause >= until; };
  co_await detail::retry_transient(std::move(attempt), past_limit, [](const std::exception_ptr&, auto) {},
                                   std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
}
}  // namespace

asio::awaitable<std::string> TaskQueue::enqueue(Task task) {
  const std::string data = encode_checked(task);
  auto attempt = [&]() -> asio::awaitable<void> {
    co_await ensure_tasks_stream();
    std::string what = "enqueueing task " + task.id + " on queue " + task.queue_name;
    std::string msg_id = task.id;
    co_await publish_task(backend_.connection(), task, data, std::move(msg_id), std::move(what));
  };
  try {
    co_await while_passing(backend_.config().publish_timeout, std::move(attempt));
  } catch (const Error& e) {
    if (!is_transient(e.kind())) throw;
    const std::string what = e.what();
    const std::string named = what.starts_with("enqueueing task ")
                                  ? what
                                  : "enqueueing task " + task.id + " on queue " + task.queue_name + ": " + what;
    throw_error(e.kind(), named + " (retried for up to publish_timeout; the task may have been stored, and "
                                  "enqueueing it again is safe)");
  }
  co_return task.id;
}

asio::awaitable<std::vector<std::string>> TaskQueue::enqueue_batch(std::vector<Task> tasks) {
  // Every task is checked before anything is sent: a bad task stops the batch, not half of it.
  std::vector<std::string> encoded;
  encoded.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    try {
      encoded.push_back(encode_checked(tasks[i]));
    } catch (const Error& e) {
      throw_error(e.kind(), "enqueue_batch: task " + std::to_string(i) + " of " + std::to_string(tasks.size()) +
                                ": " + e.what() + "; nothing was enqueued");
    }
  }
  if (const auto cycle = detail::dependency_cycle(tasks); !cycle.empty()) {
    std::string path;
    for (const auto& id : cycle) path += (path.empty() ? "" : " -> ") + id;
    throw_error(errc::invalid_argument,
                "enqueue_batch: the tasks' dependencies form a cycle (" + path + "), so none could ever run; "
                "nothing was enqueued");
  }
  const Config& config = backend_.config();
  // Indexes of the tasks not stored yet; a round sends them all and keeps those that failed.
  std::vector<std::size_t> left(tasks.size());
  for (std::size_t i = 0; i < left.size(); ++i) left[i] = i;
  auto round = [&]() -> asio::awaitable<void> {
    co_await ensure_tasks_stream();
    std::vector<detail::Request> requests;
    requests.reserve(left.size());
    // Copies: the data is kept for a retry.
    for (std::size_t i : left) requests.push_back(task_publish(config, tasks[i], encoded[i], tasks[i].id));
    detail::BatchFailures failures = co_await detail::publish_batch(
        backend_.connection(), std::move(requests), kPublishWindow,
        [&](std::size_t k) { return "enqueueing task " + tasks[left[k]].id; });
    std::vector<std::size_t> failed;
    for (std::size_t k : failures.failed) failed.push_back(left[k]);
    left = std::move(failed);
    if (failures.worst) std::rethrow_exception(failures.worst);
  };
  try {
    co_await while_passing(config.publish_timeout, std::move(round));
  } catch (const Error& e) {
    // The failure that ended the retries, with how far the batch got.
    const std::size_t stored = tasks.size() - left.size();
    throw_error(e.kind(), "enqueue_batch: " + std::to_string(stored) + " of " + std::to_string(tasks.size()) +
                              " tasks stored; " + e.what() + " (enqueueing the batch again is safe)");
  }
  std::vector<std::string> ids;
  ids.reserve(tasks.size());
  for (const auto& t : tasks) ids.push_back(t.id);
  co_return ids;
}

namespace {
// The durable consumers of a queue: one per priority band, then the delayed lane's.
std::vector<detail::DurableConsumer> queue_consumers(const Config& c, const std::string& queue) {
  std::vector<detail::DurableConsumer> out;
  for (std::string_view band : detail::kPriorityBands)
    out.push_back({.stream = c.tasks_stream.name,
                   .name = detail::consumer_name(c, queue, band),
                   .filter_subject = detail::lane_filter(c, queue, band),
                   .ack_wait = c.ack_wait,
                   .max_deliver = -1,  // omniq enforces max_deliver (see admit)
                   .max_ack_pending = c.max_ack_pending});
  // Delayed tasks wait as nak'd deliveries: they must not count against the ready lanes'
  // max_ack_pending, and waiting never exhausts deliveries.
  out.push_back({.stream = c.tasks_stream.name,
                 .name = detail::consumer_name(c, queue, detail::kDelayedLane),
                 .filter_subject = detail::lane_filter(c, queue, detail::kDelayedLane),
                 .ack_wait = c.ack_wait,
                 .max_deliver = -1,
                 .max_ack_pending = -1});
  return out;
}
}  // namespace

asio::awaitable<void> TaskQueue::ensure_consumers(const std::string& queue) {
  {
    std::lock_guard lock(mu_);
    if (consumers_ready_.count(queue)) co_return;
  }
  for (auto& consumer : queue_consumers(backend_.config(), queue))
    co_await detail::ensure_consumer(backend_.connection(), std::move(consumer));
  std::lock_guard lock(mu_);
  consumers_ready_.insert(queue);
}

asio::awaitable<void> TaskQueue::ensure_queue(const std::string& queue) {
  if (feed_of(queue)) co_return;
  co_await ensure_consumers(queue);
  auto feed = std::make_shared<Feed>();
  feed->doorbell = doorbell_;
  for (auto& bell : feed->space) bell = std::make_shared<detail::Doorbell>(backend_.get_executor());
  feed->capacity = prefetch_.load();
  {
    std::lock_guard lock(mu_);
    if (feeds_.count(queue)) co_return;  // another dequeue got here first
    feeds_[queue] = feed;
  }
  const Config& c = backend_.config();
  std::vector<detail::DurableConsumer> consumers = queue_consumers(c, queue);
  detail::DurableConsumer delayed = std::move(consumers.back());
  consumers.pop_back();
  const auto executor = backend_.get_executor();
  for (std::size_t lane = 0; lane < consumers.size(); ++lane)
    asio::co_spawn(executor, watch_lane(feed, backend_.connection(), std::move(consumers[lane]), lane),
                   asio::detached);
  // A task that expired in the delayed lane ends as every expired task does (expire()); the
  // queue lives as long as the backend, whose close ends the watcher.
  auto expire_task = [this](Task task) { return expire(std::move(task)); };
  asio::co_spawn(executor, watch_delayed(feed, backend_.connection(), std::move(delayed), std::move(expire_task)),
                 asio::detached);
}

asio::awaitable<std::optional<Lease>> TaskQueue::admit(JsMessage m) {
  const Config& c = backend_.config();
  std::optional<Task> task = co_await decode_or_dead_letter(backend_.connection(), m);
  if (!task) co_return std::nullopt;
  if (c.max_deliver > 0 && m.delivered > static_cast<std::uint64_t>(c.max_deliver)) {
    co_await write_dead_letter(task->queue_name, task->id, m, task,
                               "delivered " + std::to_string(m.delivered) + " times, over max_deliver " +
                                   std::to_string(c.max_deliver) + " (a worker took it and never settled it)");
    co_await settle(m.reply, "+TERM");
    co_return std::nullopt;
  }
  if (task->is_expired(now())) {
    co_await expire(*task);
    co_await settle(m.reply, "+ACK");
    co_return std::nullopt;
  }
  co_return Lease(*this, std::move(*task), std::move(m));
}

asio::awaitable<std::vector<Lease>> TaskQueue::dequeue_batch(std::vector<std::string> queues, std::size_t max,
                                                             Duration timeout) {
  if (queues.empty()) throw_error(errc::invalid_argument, "dequeue: no queue given");
  for (const auto& q : queues) validate_token("queue_name", q);
  if (max == 0) co_return std::vector<Lease>{};
  co_await ensure();
  for (const auto& q : queues) co_await ensure_queue(q);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<Lease> out;
  for (;;) {
    for (const auto& q : queues)
      if (auto feed = feed_of(q)) feed->demand();
    std::vector<JsMessage> taken = take(queues, max - out.size());
    std::vector<std::string> replies;
    for (const auto& m : taken) replies.push_back(m.reply);
    std::size_t admitted = 0;
    std::exception_ptr failure;
    try {
      for (; admitted < taken.size(); ++admitted) {
        auto lease = co_await admit(std::move(taken[admitted]));
        if (lease) out.push_back(std::move(*lease));
      }
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      // Cancelled (or failed) while admitting: what was taken and not handed out goes back at
      // once instead of waiting out ack_wait.
      std::vector<std::string> unsettled(replies.begin() + static_cast<std::ptrdiff_t>(admitted), replies.end());
      for (const auto& l : out) unsettled.push_back(l.ack_subject_);
      backend_.connection().hand_back(unsettled, "taken by a cancelled dequeue");
      std::rethrow_exception(failure);
    }
    if (!out.empty()) {
      if (holds_work(queues)) doorbell_->ring();  // more for another waiting dequeue
      co_return out;
    }
    // All taken were dead-lettered or expired: what is still held is ready now, no need to wait.
    if (holds_work(queues)) continue;
    for (const auto& q : queues) {
      std::shared_ptr<Feed> feed = feed_of(q);
      if (!feed) continue;
      std::string why;
      {
        std::lock_guard lock(feed->mu);
        if (!feed->denied.empty()) why = feed->denied.begin()->second;
      }
      if (!why.empty()) throw_error(errc::permission_denied, "dequeue from queue " + q + ": " + why);
    }
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) co_return out;
    // Woken by a watcher; at least every half demand window, to keep the demand fresh.
    const auto slice = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(left) +
                                    std::chrono::milliseconds(1),
                                std::chrono::duration_cast<std::chrono::milliseconds>(kDemandWindow / 2));
    ++waiting_;
    try {
      co_await doorbell_->wait(slice);
    } catch (...) {
      failure = std::current_exception();
    }
    // A cancelled wait: what the watchers prefetched for these queues goes back to the server
    // (unless another dequeue still waits for it), so no delivery is held for nobody.
    if (--waiting_ == 0 && failure) hand_back(queues);
    if (failure) std::rethrow_exception(failure);
  }
}

asio::awaitable<std::optional<Lease>> TaskQueue::dequeue(std::vector<std::string> queues, Duration timeout) {
  std::vector<Lease> got = co_await dequeue_batch(std::move(queues), 1, timeout);
  if (got.empty()) co_return std::nullopt;
  co_return std::move(got.front());
}

asio::awaitable<std::uint64_t> TaskQueue::get_queue_size(std::string queue) {
  validate_token("queue_name", queue);
  co_await ensure();
  co_await ensure_consumers(queue);  // not the watchers: asking the size must not prefetch work
  const Config& c = backend_.config();
  std::uint64_t total = 0;
  std::vector<std::string_view> lanes(detail::kPriorityBands.begin(), detail::kPriorityBands.end());
  lanes.push_back(detail::kDelayedLane);
  for (std::string_view lane : lanes) {
    auto s = co_await detail::consumer_state(backend_.connection(), c.tasks_stream.name,
                                             detail::consumer_name(c, queue, lane));
    if (s) total += s->num_pending + s->num_ack_pending;
  }
  co_return total;
}

}  // namespace omniq
