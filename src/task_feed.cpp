// The lane watchers and the prefetch of the task queue (detail/task_feed.hpp): while this
// process dequeues a queue, one watcher per priority lane holds a long-poll pull open and
// keeps what arrives for dequeue to take, handing back what waits too long; the delayed
// lane's watcher moves due tasks to their band. docs/task-queue.md explains the lanes.
#include "omniq/detail/task_feed.hpp"
#include "omniq/task_queue.hpp"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/layout.hpp"
#include "omniq/detail/settling.hpp"
#include "omniq/detail/task_publish.hpp"
#include "omniq/error.hpp"

namespace omniq {

using asio::use_awaitable;
using detail::JsMessage;
using detail::decode_or_dead_letter;
using detail::nak_body;
using detail::settle_on;
using detail::task_publish;

namespace {

// Delayed deliveries a promotion pull asks for at most.
constexpr int kPromoteBatch = 256;

// A delivery from a delayed lane: due tasks move to their priority band (deduplicated, so a
// crash in between cannot enqueue twice), the others go back with a NAK delay equal to the
// time left, so the server returns them when they are due.
asio::awaitable<void> promote_on(detail::Connection& connection, JsMessage m, const detail::ExpireTask& expire) {
  const Config& c = connection.config();
  std::optional<Task> task = co_await decode_or_dead_letter(connection, m);
  if (!task) co_return;
  const Timestamp t = now();
  if (task->is_expired(t)) {
    co_await expire(std::move(*task));
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
constexpr auto kDelayedPoll = std::chrono::milliseconds(1000);

// Waits `pause`, growing it up to a second: a watcher retrying after an error.
asio::awaitable<void> back_off(std::chrono::milliseconds& pause) {
  asio::steady_timer timer(co_await asio::this_coro::executor, pause);
  co_await timer.async_wait(use_awaitable);
  pause = std::min(pause * 2, std::chrono::milliseconds(1000));
}

}  // namespace

void detail::TaskFeed::refused(const std::string& consumer, const Error* error) {
  const bool denial = error != nullptr && error->kind() == errc::permission_denied;
  {
    std::lock_guard lock(mu);
    if (denial) denied[consumer] = error->what();
    else if (denied.empty() || denied.erase(consumer) == 0) return;
  }
  if (denial) doorbell->ring();
}

bool detail::TaskFeed::wanted(std::chrono::steady_clock::duration window) const {
  return std::chrono::steady_clock::now().time_since_epoch().count() - last_demand.load() <
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(window).count();
}

std::size_t detail::TaskFeed::release(std::size_t lane, std::chrono::steady_clock::time_point older_than,
                                      detail::Connection& c) {
  std::vector<std::string> acks;
  {
    std::lock_guard lock(mu);
    auto& held = lanes[lane];
    while (!held.empty() && held.front().at < older_than) {
      acks.push_back(std::move(held.front().message.reply));
      held.pop_front();
    }
  }
  c.hand_back(acks, "prefetched, not demanded");
  return acks.size();
}

namespace detail {

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
                                    detail::DurableConsumer consumer, ExpireTask expire) {
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
      for (auto& m : got) co_await promote_on(connection, std::move(m), expire);
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

}  // namespace detail

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

}  // namespace omniq
