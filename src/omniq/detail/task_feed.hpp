// The lane watchers' prefetch: per queue, a TaskFeed that the watchers of its lanes fill and
// dequeue takes from. One watcher per priority lane holds a long-poll pull open while this
// process dequeues the queue; the delayed lane's watcher moves due tasks to their band.
// Private to the task queue; defined in src/task_feed.cpp.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/layout.hpp"
#include "omniq/error.hpp"
#include "omniq/models/task.hpp"

namespace omniq::detail {

// A queue counts as wanted for this long after a dequeue asked for it.
// Shared by the watchers and dequeue (which renews the demand at least every half window).
inline constexpr auto kDemandWindow = std::chrono::milliseconds(1000);

// Prefetched deliveries of one queue, per priority band, filled by the lane watchers.
struct TaskFeed {
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
  void refused(const std::string& consumer, const Error* error);
  bool wanted(std::chrono::steady_clock::duration window) const;
  // Hands back (NAK) the deliveries of `lane` held since before `older_than`: redelivered at
  // once, to a process that is dequeuing.
  std::size_t release(std::size_t lane, std::chrono::steady_clock::time_point older_than, detail::Connection& c);
};

// The watcher of priority lane `lane` (consumer `consumer`): while the queue is wanted, holds
// a long-poll pull open and keeps what arrives in `feed`, up to its capacity; ends when the
// feed stops or the backend closes.
asio::awaitable<void> watch_lane(std::shared_ptr<detail::TaskFeed> feed, detail::Connection& connection,
                                 detail::DurableConsumer consumer, std::size_t lane);
// How the delayed lane's watcher ends a task that expired while it waited (TaskQueue::expire:
// state, result, event).
using ExpireTask = std::function<asio::awaitable<void>(Task)>;
// The watcher of the delayed lane: moves due tasks to their band, gives the others back
// until they are due, ends the expired ones with `expire`.
asio::awaitable<void> watch_delayed(std::shared_ptr<detail::TaskFeed> feed, detail::Connection& connection,
                                    detail::DurableConsumer consumer, ExpireTask expire);

}  // namespace omniq::detail
