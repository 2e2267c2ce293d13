// End to end with separate worker processes (omniq_test_worker) against a real nats-server:
// every enqueued task ends with exactly one stored success, through retries and a worker
// killed with SIGKILL mid-run.
#include <catch2/catch.hpp>

#include <optional>
#include <set>
#include <thread>

#include "omniq/backend.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "test_support.hpp"
#include "workers.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

// A server, a producer connected to it, and worker processes (with `ack_wait`) beside it.
struct Setup {
  LocalServer server;
  test::TempDir dir;
  NatsBackend producer{test::config_for(server)};
  ConnectionScope scope{producer};
  SyncTaskQueue& q = producer.sync_task_queue();
  test::Fleet fleet;
  explicit Setup(std::chrono::milliseconds ack_wait) : fleet(with_ack_wait(test::config_for(server), ack_wait), dir.path) {}

  static Config with_ack_wait(Config config, std::chrono::milliseconds ack_wait) {
    config.ack_wait = ack_wait;
    return config;
  }
};

// The completed count a worker process printed when it stopped ("stopped: completed N ...").
std::optional<long> completed_count(const std::string& output) {
  const auto at = output.find("stopped: completed ");
  if (at == std::string::npos) return std::nullopt;
  return std::stol(output.substr(at + std::string("stopped: completed ").size()));
}

struct Tally {
  std::size_t results = 0, successes = 0, distinct = 0;
  std::size_t completed_events = 0, completed_distinct = 0, retry_events = 0, executing_events = 0, failed_events = 0;
};

Tally tally(NatsBackend& backend, const std::set<std::string>& ids) {
  Tally t;
  std::set<std::string> seen;
  for (const auto& r : backend.sync_result_store().list(std::nullopt, ids.size() * 2)) {
    if (!ids.count(r.task_id)) continue;
    ++t.results;
    if (r.status == ResultStatus::success) ++t.successes;
    seen.insert(r.task_id);
  }
  t.distinct = seen.size();
  auto& events = backend.sync_event_log();
  const std::size_t many = ids.size() * 4;
  std::set<std::string> completed;
  for (const auto& e : events.get_events(std::nullopt, EventType::completed, std::nullopt, std::nullopt, many)) {
    ++t.completed_events;
    completed.insert(e.task_id);
  }
  t.completed_distinct = completed.size();
  t.retry_events = events.get_events(std::nullopt, EventType::retry, std::nullopt, std::nullopt, many).size();
  t.executing_events = events.get_events(std::nullopt, EventType::executing, std::nullopt, std::nullopt, many).size();
  t.failed_events = events.get_events(std::nullopt, EventType::failed, std::nullopt, std::nullopt, many).size();
  return t;
}

}  // namespace

TEST_CASE("10000 tasks, two worker processes, 20 percent failing once: each completes exactly once", "[e2e]") {
  Setup s(30s);
  auto& [server, dir, producer, scope, q, fleet] = s;
  std::set<std::string> ids;
  for (int chunk = 0; chunk < 10; ++chunk) {
    std::vector<Task> batch;
    for (int i = 0; i < 1000; ++i) {
      const int n = chunk * 1000 + i;
      Task t;
      t.func = n % 5 == 0 ? "fail_first" : "noop";  // 2000 of them
      t.args = {n};
      t.queue_name = "e2e";
      t.retry_delay = 50ms;
      ids.insert(t.id);
      batch.push_back(std::move(t));
    }
    q.enqueue_batch(std::move(batch));
  }
  REQUIRE(ids.size() == 10000);  // distinct ids

  test::Process& a = fleet.start("e2e", 32, "worker-a");
  test::Process& b = fleet.start("e2e", 32, "worker-b");
  const auto start = Steady::now();
  test::require_drained(producer, "e2e", 180s, fleet);
  const double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  CHECK(fleet.stop_all());
  WARN("10000 tasks drained in " << seconds << " s by two worker processes");

  const Tally t = tally(producer, ids);
  CHECK(t.results == 10000);
  CHECK(t.successes == 10000);
  CHECK(t.distinct == 10000);
  CHECK(t.completed_events == 10000);  // completed exactly once each
  CHECK(t.completed_distinct == 10000);
  CHECK(t.retry_events == 2000);       // the failing fifth, retried once each
  CHECK(t.executing_events == 12000);  // no task ran more often than that
  CHECK(t.failed_events == 0);
  // Both processes took part.
  for (test::Process* w : {&a, &b}) {
    const auto done = completed_count(w->output());
    INFO(w->output());
    REQUIRE(done);
    CHECK(*done > 0);
  }
}

TEST_CASE("a worker process killed with SIGKILL mid-run loses nothing: the other completes every task",
          "[e2e]") {
  Setup s(2s);
  auto& [server, dir, producer, scope, q, fleet] = s;
  std::set<std::string> ids;
  std::vector<Task> batch;
  for (int i = 0; i < 2000; ++i) {
    Task t;
    t.func = "sleep_ms";
    t.args = {5};
    t.queue_name = "crash";
    ids.insert(t.id);
    batch.push_back(std::move(t));
  }
  q.enqueue_batch(std::move(batch));

  constexpr int kConcurrency = 16;
  test::Process& victim = fleet.start("crash", kConcurrency, "victim");
  fleet.start("crash", kConcurrency, "survivor");
  // Kill the victim once a good part of the work is done, with tasks in its hands.
  const auto until = Steady::now() + 60s;
  while (Steady::now() < until && q.get_queue_size("crash") > 1200) std::this_thread::sleep_for(20ms);
  REQUIRE(q.get_queue_size("crash") > 0);  // killed mid-run, with work left
  REQUIRE(Steady::now() < until);
  victim.kill9();
  test::require_drained(producer, "crash", 120s, fleet);
  CHECK(fleet.stop_all());  // the survivor exits 0 (the victim is reaped already)

  const Tally t = tally(producer, ids);
  CHECK(t.distinct == 2000);  // lost: 0
  CHECK(t.successes == 2000);
  CHECK(t.completed_distinct == 2000);
  // A task the victim was running when killed runs again (at most its concurrency); one it
  // had finished but not acked is redelivered, but its stored outcome is acked without a run.
  const std::size_t executions = t.executing_events;
  CHECK(executions >= 2000);
  CHECK(executions - 2000 <= kConcurrency);
  WARN("executions " << executions << " for 2000 tasks after a SIGKILL (duplicates "
                     << executions - 2000 << ")");
}
