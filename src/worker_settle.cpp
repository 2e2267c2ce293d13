// Claiming a task and settling it: the claim (a pending result created only if the task has
// none), the outcome stored over it (result, event, task state) through outages, and the
// ack or dead letter that follows. docs/worker.md has the steps, docs/reliability.md the rules.
#include "omniq/detail/worker_impl.hpp"

#include <algorithm>
#include <sstream>

#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/claim.hpp"
#include "omniq/detail/connection.hpp"
#include "omniq/detail/task_view.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"

namespace omniq {

using asio::use_awaitable;
using detail::Failure;

namespace {

// Result metadata the worker records: the deduplication id of the outcome's event, and the
// reason a failed task was dead-lettered with (detail::kDeadLetterKey; both used again by
// settle_stored, the reason also by task_view).
constexpr const char* kOutcomeEventKey = "outcome_event";
using detail::kDeadLetterKey;

}  // namespace

// The text of a failure, for logs.
std::string detail::what_of(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

// Acknowledged without waiting for the server: a lost ack only means a redelivery, which
// the claim turns into an ack without a rerun.
asio::awaitable<void> Worker::Impl::acknowledge(std::shared_ptr<detail::WorkerRun> run) {
  auto ack = [&]() -> asio::awaitable<void> { co_await run->lease.ack_unconfirmed(); };
  co_await persist("acknowledging", run->lease.task().id, std::move(ack));
}

TaskResult Worker::Impl::stamped(TaskResult result, const detail::WorkerRun& run) const {
  result.worker_id = options.worker_id;
  result.started_at = run.started_at;
  if (result.completed_at)
    result.execution_time = std::chrono::duration_cast<Duration>(*result.completed_at - run.started_at);
  result.metadata[detail::kClaimMessageKey] = run.lease.stream_sequence();
  result.metadata[detail::kClaimAttemptsKey] = run.lease.task().retry_count + 1;
  result.queue_name = run.lease.task().queue_name;
  result.func = run.lease.task().func;
  result.progress = run.progress;
  result.progress_message = run.progress_message;
  if (!run.claim_id.empty()) result.metadata[detail::kClaimIdKey] = run.claim_id;
  return result;
}

TaskEvent Worker::Impl::tagged(TaskEvent event, const Task& task) const {
  event.worker_id = options.worker_id;
  event.queue_name = task.queue_name;
  return event;
}

asio::awaitable<bool> Worker::Impl::holder_alive(const std::string& worker_id) {
  if (registry_refused) co_return false;
  try {
    co_return co_await registry.alive(worker_id);
  } catch (const Error& e) {
    if (e.kind() != errc::permission_denied) throw;
    registry_refused = true;
    log().warn("omniq: worker {}: cannot read the workers bucket ({}); a claim held by another worker is taken over "
               "without knowing whether it still runs (docs/security.md lists the permissions)",
               options.worker_id, e.what());
    co_return false;
  }
}

asio::awaitable<Worker::Impl::Claim> Worker::Impl::claim_run(std::shared_ptr<detail::WorkerRun> run) {
  const Task& t = run->lease.task();
  auto& results = backend.result_store();
  run->claim_id = claim_prefix + std::to_string(++claims_made);
  const TaskResult claim = stamped(TaskResult{.task_id = t.id, .status = ResultStatus::pending}, *run);
  // Every doubt (a write that timed out, a conflict) is settled by reading the result through
  // the bucket's leader, never a replica: only then is anything acked or run.
  for (int round = 0; round < 4; ++round) {
    std::optional<std::uint64_t> written;
    auto create = [&]() -> asio::awaitable<void> { written = co_await results.create(claim); };
    co_await persist("claiming", t.id, std::move(create));
    if (written) {
      run->claim_revision = *written;
      co_return Claim::run;
    }
    std::optional<ResultRecord> stored;
    auto read = [&]() -> asio::awaitable<void> { stored = co_await results.get_record(t.id); };
    co_await persist("reading the claim", t.id, std::move(read));
    std::optional<TaskResult> result;
    if (stored) result = stored->result;
    // This run counts itself in `holding`: another run here means more than one.
    const auto held_here = holding.find(t.id);
    const detail::ClaimAsker asker{.claim_id = run->claim_id, .claim_prefix = claim_prefix,
                                   .attempt = t.retry_count + 1,
                                   .runs_here = held_here != holding.end() && held_here->second > 1};
    auto verdict = detail::judge_claim(result, asker);
    if (verdict == detail::ClaimVerdict::ask_holder) {
      bool alive = true;
      auto ask = [&]() -> asio::awaitable<void> { alive = co_await holder_alive(*result->worker_id); };
      co_await persist("asking whether the claim's worker runs", t.id, std::move(ask));
      verdict = detail::judge_claim(result, asker, alive);
    }
    switch (verdict) {
      case detail::ClaimVerdict::claim_again:
        continue;
      case detail::ClaimVerdict::ours:
        run->claim_revision = stored->revision;
        co_return Claim::run;
      case detail::ClaimVerdict::done:
        run->stored_outcome = std::move(result);
        co_return Claim::done;
      case detail::ClaimVerdict::superseded:
        co_return Claim::superseded;
      case detail::ClaimVerdict::held:
      case detail::ClaimVerdict::ask_holder:
        co_return Claim::held;
      case detail::ClaimVerdict::take_over:
        break;
    }
    log().info("omniq: worker {}: taking over the claim on task {} (held by {}, attempt {})", options.worker_id, t.id,
               result->worker_id.value_or("nobody"), result->metadata.value(detail::kClaimAttemptsKey, 0));
    auto take = [&]() -> asio::awaitable<void> { written = co_await results.update(claim, stored->revision); };
    co_await persist("taking over the claim", t.id, std::move(take));
    if (written) {
      run->claim_revision = *written;
      co_return Claim::run;
    }
    // Someone wrote first, or this take-over landed and its answer was lost: read again.
  }
  // Still in doubt: set the delivery aside rather than ack it.
  co_return Claim::held;
}

asio::awaitable<bool> Worker::Impl::store_result(detail::WorkerRun& run, const TaskResult& result) {
  auto& results = backend.result_store();
  if (run.claim_revision == 0) {
    co_await results.set(result);
    co_return true;
  }
  for (int round = 0; round < 4; ++round) {
    const auto written = co_await results.update(result, run.claim_revision);
    if (written) {
      run.claim_revision = *written;
      co_return true;
    }
    std::optional<ResultRecord> stored = co_await results.get_record(result.task_id);
    if (!stored) {  // deleted meanwhile: nobody holds the task now
      const auto created = co_await results.create(result);
      if (created) {
        run.claim_revision = *created;
        co_return true;
      }
      continue;
    }
    std::optional<TaskResult> current = std::move(stored->result);
    if (detail::is_own_outcome(current, run.claim_id)) {  // an earlier try landed
      run.claim_revision = stored->revision;
      co_return true;
    }
    if (current->status == ResultStatus::pending &&
        detail::claim_id_of(*current) == run.claim_id) {
      run.claim_revision = stored->revision;  // still this run's claim, at the leader's revision
      continue;
    }
    log().warn("omniq: worker {}: task {} was taken over by {} (this run's lease had expired); its outcome here is "
               "dropped and the delivery is not acked",
               options.worker_id, result.task_id, current->worker_id.value_or("another worker"));
    co_return false;
  }
  throw_error(errc::timeout, "storing the result of task " + result.task_id +
                                 ": the claim kept changing under this run's writes");
}

asio::awaitable<std::string> Worker::Impl::dependencies_state(const Task& task) {
  auto& results = backend.result_store();
  bool wait = false;
  for (const auto& dep : task.dependencies) {
    std::optional<TaskResult> r = co_await results.get(dep);
    if (r && r->status == ResultStatus::success) continue;
    if (r && r->status != ResultStatus::pending)  // failed, cancelled (or deleted), expired
      co_return "dependency " + dep + " ended " + std::string(to_string(r->status)) +
          (r->error ? ": " + *r->error : std::string());
    if (r) {  // claimed: it runs, or waits for a retry
      wait = true;
      continue;
    }
    // No result: waiting to run, or unknown. A recorded end without a result (written by an
    // older omniq or another client) counts as the end it records.
    std::optional<TaskRecord> record = co_await backend.task_queue().get_task(dep);
    if (record) {
      const TaskStatus s = record->task.status;
      if (s == TaskStatus::cancelled || s == TaskStatus::expired || s == TaskStatus::failed ||
          s == TaskStatus::dead_lettered)
        co_return "dependency " + dep + " ended " + std::string(to_string(s));
      wait = true;
      continue;
    }
    const Duration limit = options.dependency_timeout.value_or(
        task.expiry() ? Duration::max() : std::chrono::duration_cast<Duration>(std::chrono::hours(24)));
    if (limit != Duration::max() && now() - task.created_at > limit) {
      std::ostringstream text;
      text << "dependency " << dep << " is unknown (never enqueued, or deleted) after "
           << std::chrono::duration<double>(limit).count() << " s (worker.dependency_timeout)";
      co_return text.str();
    }
    wait = true;
  }
  co_return wait ? "wait" : "met";
}

asio::awaitable<bool> Worker::Impl::store_outcome(std::shared_ptr<detail::WorkerRun> run, TaskResult result,
                                                  const TaskEvent& event) {
  // The event's deduplication id, recorded in the result so that settle_stored can write the
  // event again without storing it twice. Per claim: two workers that ran the same message
  // (one whose lease had expired) log their events under different ids.
  const std::string dedup_id = "outcome-" + result.task_id + "-" + std::to_string(run->lease.stream_sequence()) +
                               "-" + std::to_string(run->claim_revision);
  result.metadata[kOutcomeEventKey] = dedup_id;
  // The result first: the event says what the result holds, so it is written only once the
  // result is stored (a crash in between is mended by settle_stored, under the recorded id;
  // a run whose claim was taken over logs nothing). Then the event.
  // The task's state is not written: get_task reads it from this result (task_view.hpp).
  bool kept = true;
  auto put_result = [&]() -> asio::awaitable<void> { kept = co_await store_result(*run, result); };
  co_await persist("storing the result", result.task_id, std::move(put_result));
  if (!kept) co_return false;
  auto put_event = [&]() -> asio::awaitable<void> { co_await backend.event_log().log_event(event, dedup_id); };
  co_await persist("storing the outcome's event", result.task_id, std::move(put_event));
  co_return true;
}

asio::awaitable<void> Worker::Impl::settle_cancelled(std::shared_ptr<detail::WorkerRun> run, bool ran) {
  const Task& t = run->lease.task();
  TaskResult cancelled{.task_id = t.id, .status = ResultStatus::cancelled, .completed_at = now()};
  if (ran) cancelled.error = "cancelled while running";
  TaskResult result = stamped(std::move(cancelled), *run);
  const TaskEvent event = tagged(events::cancelled(t.id), t);
  if (!co_await store_outcome(run, std::move(result), event)) co_return;
  co_await acknowledge(run);
  ++counters.cancelled;
}

asio::awaitable<void> Worker::Impl::settle_stored(std::shared_ptr<detail::WorkerRun> run) {
  const Task& t = run->lease.task();
  const TaskResult& r = *run->stored_outcome;
  const bool same_message = r.metadata.value("message", std::uint64_t{0}) == run->lease.stream_sequence();
  const std::string dedup_id = r.metadata.value(kOutcomeEventKey, std::string());
  // The event is written again when this is the message that stored the outcome, or when the
  // outcome is recent enough for the events stream to still know its id (its duplicate window,
  // less a margin): the outcome's worker may have died before the event, and the message may
  // have been set aside (a new message of the same task) meanwhile. Later, another message of
  // the same task id (enqueued again) is only acked: the event is not written twice.
  const auto window = std::chrono::duration_cast<Duration>(backend.config().events_stream.duplicate_window);
  const bool recent = r.completed_at && now() - *r.completed_at < window - std::min<Duration>(window / 4, 30s);
  if (dedup_id.empty() || (!same_message && !recent)) {
    co_await acknowledge(run);
    co_return;
  }
  std::optional<TaskEvent> event;
  if (r.status == ResultStatus::success)
    event = events::completed(t.id, r.execution_time.value_or(Duration::zero()), r.worker_id.value_or(""));
  else if (r.status == ResultStatus::error)
    event = events::failed(t.id, r.error_type.value_or(""), r.error.value_or(""));
  else if (r.status == ResultStatus::cancelled)
    event = events::cancelled(t.id);
  if (event) {
    event->worker_id = r.worker_id;
    event->queue_name = t.queue_name;
    auto relog = [&]() -> asio::awaitable<void> { co_await backend.event_log().log_event(*event, dedup_id); };
    co_await persist("logging the stored outcome's event", t.id, std::move(relog));
  }
  if (r.status == ResultStatus::error && same_message) {
    // Every failure the worker stores is dead-lettered; the letter is deduplicated by this
    // message, so a letter written before the crash is not written twice.
    std::string reason = r.metadata.value(kDeadLetterKey, "failed: " + r.error_type.value_or("") + ": " +
                                                              r.error.value_or(""));
    auto letter = [&]() -> asio::awaitable<void> { co_await run->lease.dead_letter(reason); };
    co_await persist("dead-lettering", t.id, std::move(letter));
    co_return;
  }
  co_await acknowledge(run);
}

asio::awaitable<void> Worker::Impl::settle_failure(std::shared_ptr<detail::WorkerRun> run, Failure failure,
                                                   std::string dead_letter_reason) {
  const Task& t = run->lease.task();
  TaskResult result = stamped(TaskResult::failure(t.id, failure.type, failure.message), *run);
  result.metadata[kDeadLetterKey] = dead_letter_reason;
  const TaskEvent event = tagged(events::failed(t.id, failure.type, failure.message), t);
  if (!co_await store_outcome(run, std::move(result), event)) co_return;
  auto letter = [&]() -> asio::awaitable<void> { co_await run->lease.dead_letter(dead_letter_reason); };
  co_await persist("dead-lettering", t.id, std::move(letter));
  ++counters.failed;
  ++counters.dead_lettered;
}

}  // namespace omniq
