// The scheduler turns due schedules into tasks. Any number of schedulers may run at once,
// in any processes, against the same server: each occurrence of each schedule is enqueued
// exactly once (a deterministic task id deduplicated by the tasks stream, and a
// compare-and-swap on the schedule that only one scheduler wins). docs/results-and-schedules.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "omniq/async.hpp"
#include "omniq/backend.hpp"
#include "omniq/models/schedule.hpp"
#include "omniq/schedule_store.hpp"

namespace omniq {

namespace detail {
class Doorbell;
}

/// What a scheduler does with occurrences it finds more than `late_after` in the past (the
/// scheduler was down): fire one task now for all of them, or skip to the next occurrence.
enum class MissedPolicy { fire_once, skip };

struct SchedulerOptions {
  Duration poll_interval = std::chrono::seconds(1);  // how often due schedules are looked for
  MissedPolicy missed = MissedPolicy::fire_once;
  Duration late_after = std::chrono::seconds(30);    // older occurrences count as missed
};

// occurrence_task_id, the task id of a schedule's occurrence, is in models/schedule.hpp.

class Scheduler {
 public:
  explicit Scheduler(NatsBackend& backend, SchedulerOptions options = {});

  /// One pass: enqueues every due occurrence and advances its schedule; completes with how
  /// many tasks this scheduler enqueued (occurrences won by another scheduler are not counted):
  /// void(error_code, std::size_t).
  template <class CompletionToken = default_token>
  auto async_tick(Timestamp at = now(), CompletionToken&& token = {}) {
    return detail::initiate<std::size_t>(token, backend_.get_executor(), [this, at] { return tick(at); });
  }
  /// Ticks every poll_interval until stop(); a failed tick is logged and retried:
  /// void(error_code). Cancelling it (terminal cancellation) is a stop(): it completes with
  /// operation_aborted after the tick under way, at once when it was waiting.
  template <class CompletionToken = default_token>
  auto async_run(CompletionToken&& token = {}) {
    return detail::initiate_with<void>(token, [this](Diagnostics* diag, asio::any_completion_handler<void(error_code)> h) {
      start_run(diag, std::move(h));
    });
  }
  /// Ends a run after its current tick, waking it at once when it waits. Safe from any thread.
  void stop();

 private:
  asio::awaitable<std::size_t> tick(Timestamp at = now());
  asio::awaitable<void> run();
  void start_run(Diagnostics* diag, asio::any_completion_handler<void(error_code)> handler);
  asio::awaitable<bool> fire(ScheduleRecord record, Timestamp at);

  NatsBackend& backend_;
  SchedulerOptions options_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<detail::Doorbell> wake_;  // rung by stop()
};

}  // namespace omniq
