// Running one task: its dependencies, the claim, the handler (a coroutine on the worker's
// strand, or a blocking handler on its thread pool) under its timeout and stop requests, and
// the outcome, settled by src/worker_settle.cpp. docs/worker.md has the per-task steps.
#include "omniq/detail/worker_impl.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <sstream>
#include <typeinfo>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/error.hpp"
#include "omniq/event_log.hpp"

namespace omniq {

using asio::use_awaitable;
using detail::Failure;

namespace {

std::string demangled(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

Failure describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const TaskError& e) {
    return {e.type(), e.what(), e.retryable()};
  } catch (const std::exception& e) {
    return {demangled(typeid(e)), e.what(), true};
  } catch (...) {
    return {"unknown", "a handler threw something that is not a std::exception", true};
  }
}

}  // namespace

asio::awaitable<void> Worker::Impl::execute(std::shared_ptr<detail::WorkerRun> run, const Entry& entry) {
  if (const auto limit = timeout_of(run->lease.task())) {
    run->deadline.emplace(strand, *limit);
    run->deadline->async_wait([run, grace = options.cancel_grace](boost::system::error_code ec) {
      if (!ec) run->interrupt(StopReason::timeout, grace);
    });
  }
  if (entry.coroutine) {
    // The handlers are fixed once the worker runs and live as long as it (run->worker): no
    // copy of the std::function per task.
    auto invoke = [](std::shared_ptr<detail::WorkerRun> r, const Handler* h) -> asio::awaitable<json> {
      co_return co_await (*h)(r->context, r->lease.task().args, r->lease.task().kwargs);
    };
    auto done = [run](std::exception_ptr e, json v) { run->finish(std::move(e), std::move(v)); };
    asio::co_spawn(strand, invoke(run, &entry.coroutine), asio::bind_cancellation_slot(run->signal.slot(), std::move(done)));
  } else {
    asio::post(*pool, [run, handler = &entry.blocking, strand = strand]() mutable {
      json value;
      std::exception_ptr error;
      try {
        value = (*handler)(run->context, run->lease.task().args, run->lease.task().kwargs);
      } catch (...) {
        error = std::current_exception();
      }
      // The run moves into the completion, so its last reference never drops on a pool thread.
      asio::post(strand, [run = std::move(run), error = std::move(error), value = std::move(value)]() mutable {
        run->finish(std::move(error), std::move(value));
      });
    });
  }
  if (!run->finished && !run->abandoned) co_await run->wake.async_wait(asio::as_tuple(use_awaitable));
  if (run->deadline) run->deadline->cancel();
  if (run->grace) run->grace->cancel();
}

asio::awaitable<void> Worker::Impl::process(std::shared_ptr<detail::WorkerRun> run) {
  const Task& t = run->lease.task();
  ++counters.received;
  // From delivery to settlement the lease is kept (in-progress signals), also while the claim
  // is judged and the outcome stored through an outage: a redelivery meanwhile would spend
  // max_deliver. And this process's runs of a task id are counted from the start, so a second
  // delivery here never takes over a claim a run here is still making.
  leased.insert(run);
  ++holding[t.id];
  struct Release {
    Impl& impl;
    const std::shared_ptr<detail::WorkerRun>& run;
    ~Release() {
      impl.leased.erase(run);
      const auto& id = run->lease.task().id;
      if (auto it = impl.holding.find(id); it != impl.holding.end() && --it->second <= 0) impl.holding.erase(it);
    }
  } release{*this, run};

  // Dependencies not met yet: put back before anything is claimed (nothing is stored).
  std::string dependency_failure;
  if (!t.dependencies.empty()) {
    const std::string state = co_await dependencies_state(t);
    if (state == "wait") {
      auto defer = [&]() -> asio::awaitable<void> { co_await run->lease.defer(options.dependency_poll); };
      co_await persist("deferring until dependencies complete", t.id, std::move(defer));
      ++counters.deferred;
      co_return;
    }
    if (state != "met") dependency_failure = state;
  }

  // The claim: a pending result created only if the task has none, so a task id runs once
  // however often it was enqueued or delivered. Every outcome below is stored over it (no
  // outcome ever replaces a result this run has not claimed).
  run->started_at = now();
  const Claim claim = co_await claim_run(run);
  if (claim == Claim::done) {
    co_await settle_stored(run);
    ++counters.already_done;
    co_return;
  }
  if (claim == Claim::superseded) {
    co_await acknowledge(run);
    ++counters.duplicates;
    co_return;
  }
  if (claim == Claim::held) {
    // A live run holds the task (or the claim stayed in doubt): this delivery comes back
    // later, when that run has stored its outcome or is gone. Deferred, not nacked, so waiting
    // spends none of max_deliver.
    auto aside = [&]() -> asio::awaitable<void> { co_await run->lease.defer(heartbeat()); };
    co_await persist("setting aside a task another run holds", t.id, std::move(aside));
    ++counters.held;
    co_return;
  }

  if (cancelled_ids.count(t.id)) {
    co_await settle_cancelled(run, false);
    co_return;
  }
  // The handlers are fixed once the worker runs: no lock needed to read them.
  const auto found = handlers.find(t.func);
  if (found == handlers.end()) {
    std::string known;
    {
      std::lock_guard lock(handlers_mu);
      for (const auto& [name, h] : handlers) known += (known.empty() ? "" : ", ") + name;
    }
    const std::string message = "no handler for function \"" + t.func + "\" on worker " + options.worker_id +
                                " (registered: " + (known.empty() ? "none" : known) + ")";
    // Named, not temporaries inside co_await: g++ 12 destroys those twice.
    Failure failure{"unknown_function", message, false};
    std::string reason = "unknown function: " + message;
    co_await settle_failure(run, std::move(failure), std::move(reason));
    co_return;
  }
  if (!dependency_failure.empty()) {
    Failure failure{"dependency_failed", dependency_failure, false};
    std::string reason = "dependency failed: " + dependency_failure;
    co_await settle_failure(run, std::move(failure), std::move(reason));
    co_return;
  }

  // Running: the heartbeat keeps the lease while the handler works.
  run->last_signal = Steady::now();
  active.insert(run);
  ++counters.running;
  {
    std::vector<TaskEvent> starting{events::dequeued(t.id, t.queue_name, options.worker_id),
                                    tagged(events::executing(t.id, options.worker_id), t)};
    starting.back().details["attempt"] = t.retry_count + 1;
    // Logged while the handler starts; awaited before the outcome is stored, so the events
    // stay in order. A failure is not fatal to the task: the outcome is what must be stored.
    run->start_logged.emplace(strand, Steady::time_point::max());
    auto logged = [run, self = shared_from_this()](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          self->log().warn("omniq: worker {}: logging the start of task {}: {}", self->options.worker_id,
                           run->lease.task().id, x.what());
        }
      }
      run->start_pending = false;
      run->start_logged->cancel();
    };
    run->start_pending = true;
    asio::co_spawn(strand, backend.event_log().log_events(std::move(starting)), std::move(logged));
  }
  co_await execute(run, found->second);
  if (run->start_pending) co_await run->start_logged->async_wait(asio::as_tuple(use_awaitable));
  active.erase(run);
  --counters.running;

  const StopReason why = run->reason.load();
  if (why == StopReason::shutdown) {
    // Past the shutdown grace period: hand it back for another worker; nothing is stored.
    try {
      co_await run->lease.nack();
      ++counters.handed_back;
    } catch (const Error& e) {
      log().warn("omniq: worker {}: handing back task {}: {} (redelivered after ack_wait)", options.worker_id, t.id,
                 e.what());
    }
    co_return;
  }
  if (why == StopReason::cancelled) {
    co_await settle_cancelled(run, true);
    co_return;
  }

  if (run->finished && !run->abandoned && !run->error && why == StopReason::none) {
    TaskResult result = stamped(TaskResult::success(t.id, std::move(run->value)), *run);
    const TaskEvent event = tagged(events::completed(t.id, *result.execution_time, options.worker_id), t);
    bool kept = false;
    std::optional<Error> too_large;
    try {
      kept = co_await store_outcome(run, std::move(result), event);
    } catch (const Error& e) {
      // A value the bucket cannot hold would fail every redelivery the same way: the task
      // fails for good instead (not retried, dead-lettered, with the reason).
      if (e.kind() != errc::payload_too_large) throw;
      too_large = e;
    }
    if (too_large) {
      Failure failure{"result_too_large", too_large->what(), false};
      std::string reason = "result too large: " + std::string(too_large->what());
      co_await settle_failure(run, std::move(failure), std::move(reason));
      co_return;
    }
    if (!kept) co_return;
    // Acknowledged only now: the result and its event are stored.
    co_await acknowledge(run);
    ++counters.completed;
    co_return;
  }

  Failure failure;
  if (why == StopReason::timeout) {
    const auto limit = timeout_of(t).value_or(Duration::zero());
    std::ostringstream text;
    text << "task " << t.id << " ran longer than its timeout of " << std::chrono::duration<double>(limit).count()
         << " s";
    failure = {"timeout", text.str(), true};
  } else if (run->error) {
    failure = describe(run->error);
  } else {
    failure = {"abandoned", "the handler did not return", true};
  }
  if (failure.retryable && t.can_retry()) {
    // Still this run's claim? A run whose claim was taken over (it was judged gone) must not
    // enqueue an attempt that would take the claim over from the live run that holds it now.
    const TaskResult still_mine = stamped(TaskResult{.task_id = t.id, .status = ResultStatus::pending}, *run);
    bool holds = true;
    auto check = [&]() -> asio::awaitable<void> { holds = co_await store_result(*run, still_mine); };
    co_await persist("checking the claim before a retry", t.id, std::move(check));
    if (!holds) co_return;
    const Duration delay = jittered(t.retry_backoff());
    TaskEvent event = tagged(events::retry(t.id, t.retry_count + 1, delay), t);
    event.error_type = failure.type;
    event.error_message = failure.message;
    auto log_retry = [&]() -> asio::awaitable<void> { co_await backend.event_log().log_event(event); };
    co_await persist("logging the retry", t.id, std::move(log_retry));
    auto again = [&]() -> asio::awaitable<void> { co_await run->lease.retry(delay); };
    co_await persist("enqueueing the retry", t.id, std::move(again));
    ++counters.retried;
    co_return;
  }
  const std::string reason = "failed after " + std::to_string(t.retry_count + 1) + " attempt(s): " + failure.type +
                             ": " + failure.message;
  co_await settle_failure(run, std::move(failure), reason);
}

}  // namespace omniq
