// The task queue: enqueue as JetStream publishes with a dedup id, dequeue as pulls from one
// durable consumer per (queue, lane), task state in a KV bucket written only on changes after
// enqueue. docs/task-queue.md explains the layout and the guarantees.
#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/ensure.hpp"
#include "omniq/task_queue.hpp"

#include <algorithm>
#include <array>
#include <deque>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/layout.hpp"
#include "omniq/detail/retry.hpp"
#include "omniq/detail/settling.hpp"
#include "omniq/detail/task_publish.hpp"
#include "omniq/event_log.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

using asio::use_awaitable;
using detail::JsMessage;
using detail::decode_or_dead_letter;
using detail::mark_on;
using detail::nak_body;
using detail::publish_task;
using detail::settle_on;
using detail::task_publish;
using namespace std::chrono_literals;

namespace {

// Publishes in flight at once in enqueue_batch.
constexpr std::size_t kPublishWindow = 4096;
constexpr int kPromoteBatch = 256;

}  // namespace

asio::any_io_executor TaskQueue::executor() const noexcept { return backend_.get_executor(); }

void TaskQueue::give_back(const std::vector<std::string>& ack_subjects) noexcept {
  for (const auto& subject : ack_subjects) {
    try {
      backend_.connection().publish(subject, "-NAK");
    } catch (const std::exception& e) {
      backend_.log().warn("omniq: handing back a delivery of a cancelled dequeue: {} (redelivered after ack_wait)",
                          e.what());
    }
  }
}

TaskQueue::TaskQueue(NatsBackend& backend)
    : backend_(backend),
      doorbell_(std::make_shared<detail::Doorbell>(backend.get_executor())),
      prefetch_(static_cast<std::size_t>(backend.config().prefetch)) {}

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
    std::vector<detail::RequestOutcome> outcomes =
        co_await detail::request_all(backend_.connection(), std::move(requests), kPublishWindow);
    std::vector<std::size_t> failed;
    std::exception_ptr worst;  // a failure that cannot pass before one that may
    for (std::size_t k = 0; k < outcomes.size(); ++k) {
      const std::size_t i = left[k];
      try {
        if (outcomes[k].error) std::rethrow_exception(outcomes[k].error);
        detail::parse_pub_ack(outcomes[k].reply, "enqueueing task " + tasks[i].id);
      } catch (...) {
        auto failure = std::current_exception();
        if (!worst || (detail::is_transient(worst) && !detail::is_transient(failure))) worst = failure;
        failed.push_back(i);
      }
    }
    left = std::move(failed);
    if (worst) std::rethrow_exception(worst);
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

// A delivery from a delayed lane: due tasks move to their priority band (deduplicated, so a
// crash in between cannot enqueue twice), the others go back with a NAK delay equal to the
// time left, so the server returns them when they are due.
asio::awaitable<void> promote_on(detail::Connection& connection, JsMessage m) {
  const Config& c = connection.config();
  std::optional<Task> task = co_await decode_or_dead_letter(connection, m);
  if (!task) co_return;
  const Timestamp t = now();
  if (task->is_expired(t)) {
    co_await mark_on(connection, *task, TaskStatus::expired);
    co_await settle_on(connection, m.reply, "+ACK");
  } else if (task->run_at && *task->run_at > t) {
    connection.publish(m.reply, nak_body(*task->run_at - t));  // not a delivery attempt
  } else {
    // Deduplicated per delayed message: the same task can pass the delayed lane again (a retry
    // or a wait for dependencies) and must be promoted again then.
    detail::Request req = task_publish(c, *task, m.data, task->id + ":ready:" + std::to_string(m.stream_sequence));
    req.subject = detail::task_subject(c, task->queue_name, detail::band_for(task->priority), task->id);
    const detail::Reply reply = co_await connection.async_request(std::move(req), use_awaitable);
    detail::parse_pub_ack(reply, "moving delayed task " + task->id + " to its queue");
    co_await settle_on(connection, m.reply, "+ACK");
  }
}

// A watcher holds one long-poll pull open on its lane; the server delivers into it as soon
// as work arrives, so waiting costs nothing per dequeue and empty lanes are never polled
// (on nats-server 2.9 asking an empty filtered lane costs time proportional to the stream).
constexpr auto kLongPoll = std::chrono::milliseconds(1000);
// A queue counts as wanted for this long after a dequeue asked for it.
constexpr auto kDemandWindow = std::chrono::milliseconds(1000);
constexpr auto kDelayedPoll = std::chrono::milliseconds(1000);

}  // namespace

// Prefetched deliveries of one queue, per priority band, filled by the lane watchers.
struct detail::TaskFeed {
  struct Held {
    JsMessage message;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex mu;
  std::array<std::deque<Held>, detail::kPriorityBands.size()> lanes;  // guarded by mu
  // Consumer -> why the server refused its watcher (permissions), until a pull succeeds;
  // guarded by mu. Dequeue reports it instead of waiting in vain.
  std::map<std::string, std::string> denied;
  std::atomic<bool> stopped{false};
  std::atomic<std::size_t> capacity{1};  // deliveries held per lane at most
  std::shared_ptr<detail::Doorbell> doorbell;
  // Per lane, rung when a dequeue takes deliveries: a full lane's watcher pulls again at once.
  std::array<std::shared_ptr<detail::Doorbell>, detail::kPriorityBands.size()> space;
  // When a dequeue last asked this queue for work (steady clock, ns since epoch). Watchers
  // pull only while there is demand, so a process that stops dequeuing (idle, or busy with
  // long tasks) does not hold tasks other workers could run.
  std::atomic<std::int64_t> last_demand{0};

  void demand() { last_demand = std::chrono::steady_clock::now().time_since_epoch().count(); }
  // Records (error: a permission refusal) or clears (nullptr) what the server said to the
  // watcher of `consumer`; a refusal wakes the waiting dequeues.
  void refused(const std::string& consumer, const Error* error) {
    const bool denial = error != nullptr && error->kind() == errc::permission_denied;
    {
      std::lock_guard lock(mu);
      if (denial) denied[consumer] = error->what();
      else if (denied.empty() || denied.erase(consumer) == 0) return;
    }
    if (denial) doorbell->ring();
  }
  bool wanted(std::chrono::steady_clock::duration window) const {
    return std::chrono::steady_clock::now().time_since_epoch().count() - last_demand.load() <
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(window).count();
  }
  // Hands back (NAK) the deliveries of `lane` held since before `older_than`: redelivered at
  // once, to a process that is dequeuing.
  std::size_t release(std::size_t lane, std::chrono::steady_clock::time_point older_than, detail::Connection& c) {
    std::vector<std::string> acks;
    {
      std::lock_guard lock(mu);
      auto& held = lanes[lane];
      while (!held.empty() && held.front().at < older_than) {
        acks.push_back(std::move(held.front().message.reply));
        held.pop_front();
      }
    }
    for (const auto& ack : acks) {
      try {
        c.publish(ack, "-NAK");
      } catch (const Error&) {  // redelivered after ack_wait anyway
      }
    }
    return acks.size();
  }
};

namespace {

asio::awaitable<void> watch_lane(std::shared_ptr<detail::TaskFeed> feed, detail::Connection& connection,
                                 detail::DurableConsumer consumer, std::size_t lane);
asio::awaitable<void> watch_delayed(std::shared_ptr<detail::TaskFeed> feed, detail::Connection& connection,
                                    detail::DurableConsumer consumer);

// Waits `pause`, growing it up to a second: a watcher retrying after an error.
asio::awaitable<void> back_off(std::chrono::milliseconds& pause) {
  asio::steady_timer timer(co_await asio::this_coro::executor, pause);
  co_await timer.async_wait(use_awaitable);
  pause = std::min(pause * 2, std::chrono::milliseconds(1000));
}

}  // namespace

TaskQueue::~TaskQueue() {
  std::lock_guard lock(mu_);
  for (auto& [name, feed] : feeds_) feed->stopped = true;
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

void TaskQueue::set_prefetch(std::size_t per_lane) {
  if (per_lane == 0) throw_error(errc::invalid_argument, "set_prefetch: at least 1 delivery per lane");
  prefetch_ = per_lane;
  std::lock_guard lock(mu_);
  for (auto& [name, feed] : feeds_) feed->capacity = per_lane;
}

std::size_t TaskQueue::hand_back(const std::vector<std::string>& queues) {
  std::size_t returned = 0;
  for (const auto& queue : queues) {
    std::shared_ptr<Feed> feed = feed_of(queue);
    if (!feed) continue;
    feed->last_demand = 0;  // the watchers stop pulling for this process
    for (std::size_t lane = 0; lane < feed->lanes.size(); ++lane)
      returned += feed->release(lane, std::chrono::steady_clock::time_point::max(), backend_.connection());
  }
  return returned;
}

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
  asio::co_spawn(executor, watch_delayed(feed, backend_.connection(), std::move(delayed)), asio::detached);
}

namespace {

asio::awaitable<void> watch_lane(std::shared_ptr<detail::TaskFeed> feed, detail::Connection& connection,
                                 detail::DurableConsumer consumer, std::size_t lane) {
  auto pause = std::chrono::milliseconds(50);
  bool recreate = false;
  while (!feed->stopped) {
    if (recreate) {
      // The consumer is gone (deleted, or a restart of a memory-backed server): make it again.
      try {
        co_await detail::ensure_consumer(connection, consumer);
      } catch (const Error&) {
      }
      recreate = false;
    }
    const auto now = std::chrono::steady_clock::now();
    if (!feed->wanted(kDemandWindow)) {
      // Nobody here is dequeuing this queue: give back what is held and pull nothing.
      feed->release(lane, now + std::chrono::hours(1), connection);
      auto idle = std::chrono::milliseconds(20);
      co_await back_off(idle);
      continue;
    }
    // Held longer than half of ack_wait: soon redelivered elsewhere anyway; hand it back now.
    feed->release(lane, now - connection.config().ack_wait / 2, connection);
    const std::size_t capacity = feed->capacity;
    std::size_t held = 0;
    {
      std::lock_guard lock(feed->mu);
      held = feed->lanes[lane].size();
    }
    if (held >= capacity) {  // full: wait for a dequeue to take some
      co_await feed->space[lane]->wait(std::chrono::milliseconds(50));
      continue;
    }
    detail::FetchRequest pull{.stream = consumer.stream,
                              .consumer = consumer.name,
                              .batch = static_cast<int>(capacity - held),
                              .no_wait = false,
                              .expires = kLongPoll,
                              .on_message = [feed, lane](JsMessage&& m) {
                                {
                                  std::lock_guard lock(feed->mu);
                                  feed->lanes[lane].push_back({std::move(m), std::chrono::steady_clock::now()});
                                }
                                feed->doorbell->ring();
                              }};
    bool failed = false;
    try {
      co_await connection.async_fetch(std::move(pull), use_awaitable);
      pause = std::chrono::milliseconds(50);
      feed->refused(consumer.name, nullptr);
    } catch (const Error& e) {
      if (e.kind() == errc::closed || e.kind() == errc::not_connected) co_return;  // the backend closed
      failed = true;
      recreate = e.kind() == errc::nats_error;
      feed->refused(consumer.name, &e);
    }
    if (failed) co_await back_off(pause);
  }
}

asio::awaitable<void> watch_delayed(std::shared_ptr<detail::TaskFeed> feed, detail::Connection& connection,
                                    detail::DurableConsumer consumer) {
  auto pause = std::chrono::milliseconds(50);
  while (!feed->stopped) {
    detail::FetchRequest pull{.stream = consumer.stream,
                              .consumer = consumer.name,
                              .batch = kPromoteBatch,
                              .no_wait = false,
                              .expires = kDelayedPoll};
    bool failed = false;
    try {
      std::vector<JsMessage> got = co_await connection.async_fetch(std::move(pull), use_awaitable);
      for (auto& m : got) co_await promote_on(connection, std::move(m));
      pause = std::chrono::milliseconds(50);
      feed->refused(consumer.name, nullptr);
    } catch (const Error& e) {
      if (e.kind() == errc::closed || e.kind() == errc::not_connected) co_return;
      failed = true;
      feed->refused(consumer.name, &e);
    }
    if (failed) co_await back_off(pause);
  }
}

}  // namespace

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
    co_await mark(*task, TaskStatus::expired);
    // The lifecycle's end for a task that never ran: best effort, the state above is the record.
    TaskEvent event = events::expired(task->id);
    event.queue_name = task->queue_name;
    try {
      co_await backend_.event_log().log_event(std::move(event));
    } catch (const Error& e) {
      backend_.log().warn("omniq: logging the expiry of task {}: {}", task->id, e.what());
    }
    co_await settle(m.reply, "+ACK");
    co_return std::nullopt;
  }
  co_return Lease(*this, std::move(*task), std::move(m));
}

std::shared_ptr<detail::TaskFeed> TaskQueue::feed_of(const std::string& queue) {
  std::lock_guard lock(mu_);
  auto it = feeds_.find(queue);
  return it == feeds_.end() ? nullptr : it->second;
}

std::vector<JsMessage> TaskQueue::take(const std::vector<std::string>& queues, std::size_t max) {
  std::vector<JsMessage> out;
  // A delivery held longer than half of ack_wait may soon go to another worker: it is handed
  // back (as the watchers do) rather than given out as a lease about to expire.
  const auto stale_before = std::chrono::steady_clock::now() - backend_.config().ack_wait / 2;
  for (const auto& queue : queues) {
    std::shared_ptr<Feed> feed = feed_of(queue);
    if (!feed) continue;
    for (std::size_t lane = 0; lane < feed->lanes.size(); ++lane) {
      feed->release(lane, stale_before, backend_.connection());
      std::lock_guard lock(feed->mu);
      auto& held = feed->lanes[lane];
      const std::size_t before = out.size();
      while (!held.empty() && out.size() < max) {
        out.push_back(std::move(held.front().message));
        held.pop_front();
      }
      if (out.size() != before) feed->space[lane]->ring();
    }
    if (out.size() >= max) break;
  }
  return out;
}

bool TaskQueue::holds_work(const std::vector<std::string>& queues) {
  for (const auto& queue : queues) {
    std::shared_ptr<Feed> feed = feed_of(queue);
    if (!feed) continue;
    std::lock_guard lock(feed->mu);
    for (auto& lane : feed->lanes)
      if (!lane.empty()) return true;
  }
  return false;
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
      give_back(unsettled);
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
