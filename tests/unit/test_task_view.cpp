// A task's status read from the facts stored about it (detail::task_view): the rules
// get_task and list_tasks apply, without a server.
#include <catch2/catch.hpp>

#include "omniq/detail/claim.hpp"
#include "omniq/detail/task_view.hpp"
#include "omniq/error.hpp"

using namespace omniq;
using namespace omniq::detail;
using namespace std::chrono_literals;

namespace {

Task enqueued(std::string id = "t1") {
  Task t;
  t.id = std::move(id);
  t.func = "resize";
  t.queue_name = "images";
  t.args = nlohmann::json::array({"a.png"});
  return t;
}

// A worker's claim on attempt `attempt`, made for the message at `sequence`.
TaskResult claim(const Task& t, int attempt, std::uint64_t sequence) {
  TaskResult r{.task_id = t.id, .status = ResultStatus::pending};
  r.worker_id = "w1";
  r.started_at = now() - 2s;
  r.queue_name = t.queue_name;
  r.func = t.func;
  r.metadata[kClaimMessageKey] = sequence;
  r.metadata[kClaimAttemptsKey] = attempt;
  r.metadata[kClaimIdKey] = "w1.1.1";
  return r;
}

TaskResult outcome(TaskResult r, ResultStatus status) {
  r.status = status;
  r.completed_at = now();
  if (status == ResultStatus::error) {
    r.error_type = "ValueError";
    r.error = "bad input";
  }
  return r;
}

}  // namespace

TEST_CASE("task view: nothing stored is no task", "[task_view]") {
  CHECK_FALSE(task_view(TaskFacts{}, now()));
}

TEST_CASE("task view: an enqueued task waits, delayed while its run_at is ahead", "[task_view]") {
  TaskFacts f;
  f.message = enqueued();
  f.message_sequence = 5;
  auto rec = task_view(f, now());
  REQUIRE(rec);
  CHECK(rec->task.status == TaskStatus::pending);
  CHECK(rec->attempts == 0);
  CHECK_FALSE(rec->worker_id);

  f.message->run_at = now() + 1h;
  CHECK(task_view(f, now())->task.status == TaskStatus::delayed);
  CHECK(task_view(f, now() + 2h)->task.status == TaskStatus::pending);  // due: waits for a worker
}

TEST_CASE("task view: a claimed task runs, with its worker, attempt, start and progress", "[task_view]") {
  TaskFacts f;
  f.message = enqueued();
  f.message_sequence = 5;
  f.result = claim(*f.message, 2, 5);
  f.result->progress = 0.5;
  f.result->progress_message = "half";
  auto rec = task_view(f, now());
  REQUIRE(rec);
  CHECK(rec->task.status == TaskStatus::running);
  CHECK(rec->worker_id == "w1");
  CHECK(rec->attempts == 2);
  CHECK(rec->started_at == f.result->started_at);
  CHECK(rec->progress == 0.5);
  CHECK(rec->progress_message == "half");
  CHECK(rec->task.args == nlohmann::json::array({"a.png"}));  // the task itself, from its message
}

TEST_CASE("task view: a retry waiting out its backoff is delayed, not running", "[task_view]") {
  TaskFacts f;
  f.message = enqueued();
  f.message->retry_count = 1;
  f.message->run_at = now() + 30s;
  f.message_sequence = 9;                  // the retry's message
  f.result = claim(*f.message, 1, 5);      // the first attempt's claim, on message 5
  auto rec = task_view(f, now());
  REQUIRE(rec);
  CHECK(rec->task.status == TaskStatus::delayed);
  CHECK(rec->attempts == 1);
}

TEST_CASE("task view: outcomes are final and say when the task finished", "[task_view]") {
  const Task t = enqueued();
  TaskFacts f;
  f.result = outcome(claim(t, 1, 5), ResultStatus::success);
  auto done = task_view(f, now());
  REQUIRE(done);
  CHECK(done->task.status == TaskStatus::completed);
  CHECK(done->finished_at == f.result->completed_at);
  // Its message left the stream on ack: the task is rebuilt from the result.
  CHECK(done->task.id == t.id);
  CHECK(done->task.func == "resize");
  CHECK(done->task.queue_name == "images");
  CHECK(done->worker_id == "w1");

  f.result = outcome(claim(t, 1, 5), ResultStatus::cancelled);
  CHECK(task_view(f, now())->task.status == TaskStatus::cancelled);
  f.result = outcome(claim(t, 1, 5), ResultStatus::expired);
  CHECK(task_view(f, now())->task.status == TaskStatus::expired);

  // An outcome wins over a message still in the stream (acked a moment later).
  f.message = t;
  f.message_sequence = 5;
  f.result = outcome(claim(t, 1, 5), ResultStatus::success);
  CHECK(task_view(f, now())->task.status == TaskStatus::completed);
}

TEST_CASE("task view: a dead-lettered failure, and one whose letter is gone", "[task_view]") {
  const Task t = enqueued();
  TaskFacts f;
  f.result = outcome(claim(t, 4, 5), ResultStatus::error);
  f.result->metadata[kDeadLetterKey] = "failed after 4 attempt(s): ValueError: bad input";
  f.dead_letter = t;
  auto rec = task_view(f, now());
  REQUIRE(rec);
  CHECK(rec->task.status == TaskStatus::dead_lettered);
  CHECK(rec->error_type == "ValueError");
  CHECK(rec->error == "bad input");
  CHECK(rec->attempts == 4);
  CHECK(rec->task.retry_count == 0);  // the task as dead-lettered, args and all
  CHECK(rec->task.args == nlohmann::json::array({"a.png"}));

  f.dead_letter.reset();  // the letter was removed (or aged out): the task failed
  rec = task_view(f, now());
  CHECK(rec->task.status == TaskStatus::failed);
  CHECK(rec->task.retry_count == 3);  // rebuilt from the result: 4 attempts
}

TEST_CASE("task view: a recorded state holds until an outcome is stored", "[task_view]") {
  Task cancelled = enqueued();
  cancelled.status = TaskStatus::cancelled;
  TaskFacts f;
  f.state = cancelled;
  f.state_revision = 12;
  auto rec = task_view(f, now());
  REQUIRE(rec);
  CHECK(rec->task.status == TaskStatus::cancelled);
  CHECK(rec->revision == 12);

  // A stale claim of an earlier attempt does not make a cancelled task running.
  f.result = claim(cancelled, 1, 5);
  CHECK(task_view(f, now())->task.status == TaskStatus::cancelled);

  // update_task's pending state with the task's message: the recorded task is reported.
  Task changed = enqueued();
  changed.priority = 7;
  TaskFacts g;
  g.state = changed;
  g.state_revision = 3;
  g.message = enqueued();
  g.message_sequence = 5;
  rec = task_view(g, now());
  CHECK(rec->task.status == TaskStatus::pending);
  CHECK(rec->task.priority == 7);
  CHECK(rec->revision == 3);
}

TEST_CASE("dependency cycles: a batch whose tasks wait for each other is named, a chain is not", "[task_view]") {
  auto task = [](std::string id, std::vector<std::string> deps) {
    Task t;
    t.id = std::move(id);
    t.dependencies = std::move(deps);
    return t;
  };
  CHECK(dependency_cycle({task("a", {"b"}), task("b", {"c"}), task("c", {})}).empty());
  CHECK(dependency_cycle({task("a", {"outside"}), task("b", {"a"})}).empty());  // not in the batch: not judged
  CHECK(dependency_cycle({task("a", {"b"}), task("b", {"a"})}) == std::vector<std::string>{"a", "b", "a"});
  CHECK(dependency_cycle({task("x", {}), task("a", {"b"}), task("b", {"c"}), task("c", {"a"})}) ==
        std::vector<std::string>{"a", "b", "c", "a"});
  // A diamond is no cycle.
  CHECK(dependency_cycle({task("a", {"b", "c"}), task("b", {"d"}), task("c", {"d"}), task("d", {})}).empty());
  // A long chain (no recursion to run out of).
  std::vector<Task> chain;
  for (int i = 0; i < 20000; ++i) chain.push_back(task("t" + std::to_string(i), {"t" + std::to_string(i + 1)}));
  CHECK(dependency_cycle(chain).empty());
  chain.back().dependencies = {"t0"};
  CHECK(dependency_cycle(chain).size() == 20001);
}

TEST_CASE("a task that depends on itself is refused before anything is sent", "[task_view]") {
  Task t;
  t.func = "f";
  t.dependencies = {"other", t.id};
  try {
    t.validate();
    FAIL("validate accepted a task that depends on itself");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_argument);
    CHECK_THAT(e.what(), Catch::Contains("dependencies[1] is the task itself"));
  }
}

TEST_CASE("task view: a task deleted before it ran is no task, though its result says cancelled", "[task_view]") {
  TaskResult tombstone{.task_id = "t1", .status = ResultStatus::cancelled, .completed_at = now()};
  tombstone.error_type = kDeletedType;
  TaskFacts f;
  f.result = tombstone;
  CHECK_FALSE(task_view(f, now()));
  f.result->error_type = "cancelled";  // cancel_task's: a cancelled task
  CHECK(task_view(f, now())->task.status == TaskStatus::cancelled);
}
