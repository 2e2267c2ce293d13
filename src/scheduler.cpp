// The scheduler: enqueue first (idempotent by occurrence), then advance the schedule by
// compare-and-swap. A crash between the two re-enqueues the same occurrence on the next
// tick, which the tasks stream deduplicates; of several schedulers only one advances it.
#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/scheduler.hpp"

#include "launch.hpp"

#include <boost/asio/use_awaitable.hpp>

#include "omniq/event_log.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/task_queue.hpp"

namespace omniq {

using asio::use_awaitable;

Scheduler::Scheduler(NatsBackend& backend, SchedulerOptions options)
    : backend_(backend), options_(options), wake_(std::make_shared<detail::Doorbell>(backend.get_executor())) {}

void Scheduler::stop() {
  stopping_ = true;
  wake_->ring();
}

void Scheduler::start_run(Diagnostics* diag, asio::any_completion_handler<void(error_code)> handler) {
  detail::launch_stoppable(backend_.get_executor(), run(), diag, std::move(handler), [this] { stop(); });
}

asio::awaitable<bool> Scheduler::fire(ScheduleRecord record, Timestamp at) {
  Schedule next = record.schedule;
  const Timestamp occurrence = *next.next_run;
  const bool missed = at - occurrence > options_.late_after;
  // Downtime: one task now for all missed occurrences (fire_once) or none (skip); either
  // way the schedule goes on from its first occurrence after `at`.
  const bool enqueue = !missed || options_.missed == MissedPolicy::fire_once;
  if (enqueue) next.mark_run(occurrence);
  if (missed && next.status == ScheduleStatus::active) {
    next.next_run = next.compute_next_after(at);
    const auto end = next.expiry();
    if (!next.next_run || (end && *next.next_run >= *end)) {
      next.status = ScheduleStatus::completed;
      next.next_run.reset();
    }
  }

  Task task;
  if (enqueue) {
    task.id = occurrence_task_id(next.id, occurrence);
    task.func = next.func;
    task.args = next.args;
    task.kwargs = next.kwargs;
    task.queue_name = next.queue_name;
    task.metadata = {{"schedule_id", next.id}, {"occurrence", format_timestamp(occurrence)}};
    co_await backend_.task_queue().enqueue(task);
  }
  auto advanced = co_await backend_.schedule_store().update_schedule(next, record.revision);
  if (!advanced) co_return false;  // another scheduler handled this occurrence
  if (enqueue) {
    TaskEvent event = events::enqueued(task.id, task.queue_name);
    event.schedule_id = next.id;
    co_await backend_.event_log().log_event(std::move(event));
  }
  backend_.log().debug("omniq: schedule {} fired for {}{}", next.id, format_timestamp(occurrence),
                       missed ? (enqueue ? " (missed occurrences fired once)" : " (missed occurrences skipped)") : "");
  co_return enqueue;
}

asio::awaitable<std::size_t> Scheduler::tick(Timestamp at) {
  std::vector<ScheduleRecord> ready = co_await backend_.schedule_store().get_ready_schedules(at);
  std::size_t fired = 0;
  for (auto& record : ready) {
    if (co_await fire(std::move(record), at)) ++fired;
  }
  co_return fired;
}

asio::awaitable<void> Scheduler::run() {
  while (!stopping_) {
    try {
      co_await tick(now());
    } catch (const Error& e) {
      backend_.log().error("omniq: scheduler tick failed, retrying: {}", e.what());
    }
    if (stopping_) break;
    co_await wake_->wait(std::chrono::duration_cast<std::chrono::milliseconds>(options_.poll_interval));
  }
}

}  // namespace omniq
