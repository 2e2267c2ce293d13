// A task's state as get_task and list_tasks report it through its whole life, with a real
// worker against a real nats-server: waiting, delayed, running with its progress, completed,
// dead-lettered, cancelled, expired; expiry and cancellation answer wait_for_result; a
// dependency that ends without success (or never exists) fails its dependents.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <map>
#include <thread>

#include <boost/asio/steady_timer.hpp>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/worker.hpp"
#include "running_worker.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
using test::Running;
using test::sleep_for;
using test::wait_until;

namespace {

struct Fixture : test::ServerFixture {
  using ServerFixture::ServerFixture;
  TaskStatus status_of(const std::string& id) {
    auto rec = q().get_task(id);
    REQUIRE(rec);
    return rec->task.status;
  }
  bool listed(const std::string& id, TaskStatus status, std::optional<std::string> queue = std::nullopt) {
    for (const auto& t : q().list_tasks(queue, status, 1000))
      if (t.id == id) return t.status == status;
    return false;
  }
};

Task task(std::string func, std::string queue = "default") {
  Task t;
  t.func = std::move(func);
  t.queue_name = std::move(queue);
  t.retry_delay = 20ms;
  return t;
}

}  // namespace

TEST_CASE("task state: pending, delayed, running with its progress, then completed with its timestamps",
          "[task_state]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.queues = {"work"}, .worker_id = "state-worker"});
  std::atomic<bool> release{false};
  worker.handle("slow", [&](TaskContext& ctx, const json&, const json&) -> asio::awaitable<json> {
    co_await ctx.async_progress(0.4, "resizing");
    while (!release) co_await sleep_for(10ms);
    co_return "done";
  });
  Task waiting = task("slow", "work");
  Task later = task("slow", "work");
  later.run_at = now() + 1h;
  f.q().enqueue(waiting);
  f.q().enqueue(later);
  CHECK(f.status_of(waiting.id) == TaskStatus::pending);
  CHECK(f.status_of(later.id) == TaskStatus::delayed);
  CHECK(f.listed(waiting.id, TaskStatus::pending, "work"));
  CHECK(f.listed(later.id, TaskStatus::delayed));

  const Timestamp before_start = now();
  Running running(worker);
  // Running, with the worker, the attempt, the start and the handler's last progress.
  REQUIRE(wait_until([&] { return f.q().get_task(waiting.id)->progress.has_value(); }, 10s));
  auto rec = f.q().get_task(waiting.id);
  REQUIRE(rec);
  CHECK(rec->task.status == TaskStatus::running);
  CHECK(rec->worker_id == "state-worker");
  CHECK(rec->attempts == 1);
  REQUIRE(rec->started_at);
  CHECK(*rec->started_at >= before_start - 1s);
  CHECK(rec->progress.value_or(-1) == Approx(0.4));
  CHECK(rec->progress_message == "resizing");
  CHECK(rec->task.func == "slow");
  CHECK(f.listed(waiting.id, TaskStatus::running));

  release = true;
  CHECK(f.results().wait_for_result(waiting.id, 10s)->status == ResultStatus::success);
  rec = f.q().get_task(waiting.id);
  REQUIRE(rec);
  CHECK(rec->task.status == TaskStatus::completed);
  CHECK(rec->task.queue_name == "work");
  CHECK(rec->task.func == "slow");
  CHECK(rec->worker_id == "state-worker");
  REQUIRE(rec->finished_at);
  CHECK(*rec->finished_at >= *rec->started_at);
  CHECK(f.listed(waiting.id, TaskStatus::completed, "work"));
  CHECK_FALSE(f.listed(waiting.id, TaskStatus::completed, "other"));
  CHECK(f.status_of(later.id) == TaskStatus::delayed);  // still waiting for its time
}

TEST_CASE("task state: a failure for good is dead-lettered, then failed once its letter is requeued and fails again",
          "[task_state]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.worker_id = "failing-worker"});
  worker.handle("boom", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    throw TaskError("BoomError", "it went boom");
    co_return nullptr;
  });
  Task t = task("boom");
  t.args = json::array({1, 2});
  t.max_retries = 1;
  f.q().enqueue(t);
  Running running(worker);
  CHECK(f.results().wait_for_result(t.id, 10s)->status == ResultStatus::error);
  REQUIRE(wait_until([&] { return f.status_of(t.id) == TaskStatus::dead_lettered; }, 5s));
  auto rec = f.q().get_task(t.id);
  CHECK(rec->attempts == 2);
  CHECK(rec->error_type == "BoomError");
  CHECK(rec->error == "it went boom");
  CHECK(rec->worker_id == "failing-worker");
  CHECK(rec->finished_at);
  CHECK(rec->task.args == json::array({1, 2}));  // the task as dead-lettered
  CHECK(f.listed(t.id, TaskStatus::dead_lettered));
  CHECK(rec->revision == 0);  // nothing written to the task-state bucket for it
}

TEST_CASE("task state: a cancelled or expired task answers wait_for_result at once", "[task_state]") {
  Fixture f;
  Task cancelled = task("never");
  f.q().enqueue(cancelled);
  REQUIRE(f.q().cancel_task(cancelled.id));
  auto r = f.results().wait_for_result(cancelled.id, 100ms);
  REQUIRE(r);
  CHECK(r->status == ResultStatus::cancelled);
  auto rec = f.q().get_task(cancelled.id);
  CHECK(rec->task.status == TaskStatus::cancelled);
  CHECK(rec->finished_at);
  CHECK(f.events().get_events(cancelled.id, EventType::cancelled).size() == 1);

  // Expiring in the delayed lane (its run_at is after its expiry): the delayed lane's watcher
  // ends it as dequeue does (test_worker.cpp has the dequeue path).
  Worker worker(*f.backend);
  std::atomic<int> runs{0};
  worker.handle("never", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    co_return nullptr;
  });
  Running running(worker);
  Task delayed = task("never");
  delayed.run_at = now() + 1500ms;
  delayed.ttl = 500ms;
  f.q().enqueue(delayed);
  auto late = f.results().wait_for_result(delayed.id, 15s);
  REQUIRE(late);
  CHECK(late->status == ResultStatus::expired);
  CHECK(f.status_of(delayed.id) == TaskStatus::expired);
  REQUIRE(wait_until([&] { return f.events().get_events(delayed.id, EventType::expired).size() == 1; }, 5s));
  CHECK(runs == 0);
}

TEST_CASE("dependencies never hang: a dependency cancelled, expired, deleted or dead-lettered fails its dependent",
          "[task_state][dependencies]") {
  Fixture f;
  const auto poll = 200ms;
  Worker worker(*f.backend, WorkerOptions{.queues = {"deps"}, .dependency_poll = poll});
  worker.handle("ok", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> { co_return "ok"; });
  // The dependencies live on a queue no worker serves, except the failing one.
  Task cancelled = task("ok", "parked");
  Task expired = task("ok", "parked");
  expired.ttl = 100ms;
  Task deleted = task("ok", "parked");
  Task failing = task("boom", "deps");
  f.q().enqueue_batch({cancelled, expired, deleted});
  REQUIRE(f.q().cancel_task(cancelled.id));
  REQUIRE(f.q().delete_task(deleted.id));
  CHECK_FALSE(f.q().get_task(deleted.id));  // deleted: no task, though dependents learn of it
  std::this_thread::sleep_for(150ms);
  REQUIRE(f.q().cleanup_expired_tasks() == 1);

  std::map<std::string, std::string> dependent_of;  // dependent id -> dependency id
  std::vector<Task> dependents;
  for (const Task* dep : {&cancelled, &expired, &deleted}) {
    Task d = task("ok", "deps");
    d.dependencies = {dep->id};
    dependent_of[d.id] = dep->id;
    dependents.push_back(d);
  }
  f.q().enqueue_batch(dependents);
  auto fails_naming = [&](const std::string& id, const std::string& dependency) {
    INFO("dependent of " << dependency);
    auto r = f.results().wait_for_result(id, 10s);
    REQUIRE(r);
    CHECK(r->status == ResultStatus::error);
    CHECK(r->error_type == "dependency_failed");
    CHECK_THAT(r->error.value_or(""), Catch::Contains("dependency " + dependency + " ended"));
    return *r;
  };
  {
    Running running(worker);
    for (const auto& d : dependents) fails_naming(d.id, dependent_of[d.id]);
    // Each failed at its first look: none was put back to wait.
    CHECK(worker.stats().deferred == 0);
  }

  // A dependency that fails while its dependent waits: the dependent fails within two polls.
  Worker again(*f.backend, WorkerOptions{.queues = {"deps"}, .dependency_poll = poll});
  again.handle("boom", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    co_await sleep_for(500ms);
    throw TaskError("BoomError", "no", false);
  });
  again.handle("ok", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> { co_return "ok"; });
  Task waits = task("ok", "deps");
  waits.dependencies = {failing.id};
  f.q().enqueue(waits);
  f.q().enqueue(failing);
  Running running(again);
  const TaskResult dependency = f.results().wait_for_result(failing.id, 10s).value();
  CHECK(dependency.status == ResultStatus::error);
  const TaskResult dependent = fails_naming(waits.id, failing.id);
  REQUIRE(dependency.completed_at);
  REQUIRE(dependent.completed_at);
  CHECK(*dependent.completed_at - *dependency.completed_at < 2 * poll);
  CHECK(again.stats().deferred >= 1);  // it did wait
}

TEST_CASE("dependencies never hang: an unknown dependency fails its dependent after dependency_timeout",
          "[task_state][dependencies]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.dependency_poll = 100ms, .dependency_timeout = 1s});
  worker.handle("ok", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> { co_return "ok"; });
  Task d = task("ok");
  d.dependencies = {"never-enqueued"};
  f.q().enqueue(d);
  Running running(worker);
  const auto started = Steady::now();
  auto r = f.results().wait_for_result(d.id, 10s);
  REQUIRE(r);
  CHECK(r->status == ResultStatus::error);
  CHECK(r->error_type == "dependency_failed");
  CHECK_THAT(r->error.value_or(""), Catch::Contains("never-enqueued is unknown"));
  const auto waited = Steady::now() - started;
  CHECK(waited >= 700ms);  // not before its timeout (counted from created_at)
  CHECK(waited < 4s);
}

TEST_CASE("dependency cycles are refused at enqueue, nothing stored", "[task_state][dependencies]") {
  Fixture f;
  Task a = task("ok");
  Task b = task("ok");
  a.dependencies = {b.id};
  b.dependencies = {a.id};
  try {
    f.q().enqueue_batch({a, b});
    FAIL("a cycle was enqueued");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_argument);
    CHECK_THAT(e.what(), Catch::Contains(a.id + " -> " + b.id + " -> " + a.id));
  }
  Task self = task("ok");
  self.dependencies = {self.id};
  CHECK_THROWS_WITH(f.q().enqueue(self), Catch::Contains("is the task itself"));
  CHECK(f.q().get_queue_size("default") == 0);
}
