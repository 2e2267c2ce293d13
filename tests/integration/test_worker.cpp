// The worker runtime in-process against a real nats-server: handlers, results and events,
// retries, dead letters, timeouts, cancellation, dependencies, long tasks, shutdown.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <optional>
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

namespace {

struct Fixture : test::ServerFixture {
  using ServerFixture::ServerFixture;

  std::size_t count_events(const std::string& task_id, EventType type) {
    return events().get_events(task_id, type, std::nullopt, std::nullopt, 1000).size();
  }
  TaskResult result_of(const std::string& id, Duration timeout = 15s) {
    auto r = results().wait_for_result(id, timeout);
    REQUIRE(r);
    return *r;
  }
};

using test::Running;
using test::sleep_for;

// A worker whose one handler, "count", counts its runs and returns "again".
struct CountingWorker {
  Worker worker;
  std::atomic<int> runs{0};
  explicit CountingWorker(NatsBackend& backend) : worker(backend) {
    worker.handle("count", [this](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
      ++runs;
      co_return "again";
    });
  }
};

Task task(std::string func, json args = json::array(), std::string queue = "default") {
  Task t;
  t.func = std::move(func);
  t.args = std::move(args);
  t.queue_name = std::move(queue);
  t.retry_delay = 50ms;
  return t;
}

using test::wait_until;

}  // namespace

TEST_CASE("a worker runs coroutine and blocking handlers, stores each result and its events, and acks", "[worker]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.queues = {"default"}, .concurrency = 4});
  worker.handle("add", [](TaskContext&, const json& args, const json&) -> asio::awaitable<json> {
    co_return args.at(0).get<int>() + args.at(1).get<int>();
  });
  std::atomic<bool> off_io_thread{true};
  auto io_thread = std::async(std::launch::async, [&] {
                     return test::run_sync(*f.backend, []() -> asio::awaitable<std::thread::id> {
                       co_return std::this_thread::get_id();
                     }());
                   }).get();
  worker.handle_blocking("concat", [&](TaskContext& ctx, const json& args, const json& kwargs) -> json {
    if (std::this_thread::get_id() == io_thread) off_io_thread = false;
    return args.at(0).get<std::string>() + kwargs.value("sep", "-") + std::to_string(ctx.attempt());
  });
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(f.q().enqueue(task("add", {i, 1})));
  Task c = task("concat", {"x"});
  c.kwargs = {{"sep", "+"}};
  const std::string concat_id = f.q().enqueue(c);

  Running running(worker);
  for (int i = 0; i < 20; ++i) {
    const TaskResult r = f.result_of(ids[i]);
    CHECK(r.status == ResultStatus::success);
    CHECK(r.result == i + 1);
    CHECK(r.worker_id == worker.id());
    CHECK(r.execution_time);
    CHECK(r.started_at);
  }
  const TaskResult r = f.result_of(concat_id);
  CHECK(r.result == "x+1");
  CHECK(off_io_thread);
  running.stop_and_join();

  CHECK(f.q().get_queue_size("default") == 0);
  for (const auto& id : ids) {
    CHECK(f.count_events(id, EventType::dequeued) == 1);
    CHECK(f.count_events(id, EventType::executing) == 1);
    CHECK(f.count_events(id, EventType::completed) == 1);
  }
  const WorkerStats s = worker.stats();
  CHECK(s.completed == 21);
  CHECK(s.running == 0);
}

TEST_CASE("a failed attempt is retried with backoff and the retry succeeds", "[worker]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.concurrency = 2});
  std::mutex mu;
  std::map<std::string, std::vector<Steady::time_point>> runs;
  worker.handle("flaky", [&](TaskContext& ctx, const json&, const json&) -> asio::awaitable<json> {
    {
      std::lock_guard lock(mu);
      runs[ctx.task().id].push_back(Steady::now());
    }
    if (ctx.attempt() == 1) throw std::runtime_error("first attempt fails");
    co_return ctx.attempt();
  });
  Task t = task("flaky");
  t.retry_delay = 400ms;
  const std::string id = f.q().enqueue(t);
  Running running(worker);
  const TaskResult r = f.result_of(id);
  CHECK(r.status == ResultStatus::success);
  CHECK(r.result == 2);
  CHECK(r.metadata.value("attempts", 0) == 2);
  running.stop_and_join();
  const auto retries = f.events().get_events(id, EventType::retry);
  REQUIRE(retries.size() == 1);
  // Equal jitter: the delay drawn is between half and all of retry_delay, both sides.
  const double delay = retries[0].details.value("delay", -1.0);
  CHECK(delay >= 0.2);
  CHECK(delay <= 0.4);
  {
    std::lock_guard lock(mu);
    REQUIRE(runs[id].size() == 2);
    // The retry ran no sooner than that delay, and not much later: the delayed lane makes a
    // due task ready within about a second.
    const auto gap = std::chrono::duration<double>(runs[id][1] - runs[id][0]).count();
    CHECK(gap >= delay - 0.01);
    CHECK(gap < delay + 1.5);
  }
  CHECK(retries[0].error_type == "std::runtime_error");
  CHECK(retries[0].error_message == "first attempt fails");
  CHECK(f.count_events(id, EventType::completed) == 1);
  CHECK(f.count_events(id, EventType::failed) == 0);
  CHECK(f.q().get_queue_size("default") == 0);
  CHECK(worker.stats().retried == 1);
}

TEST_CASE("after max_retries a task is failed, its error stored, dead-lettered and logged as failed", "[worker]") {
  Fixture f;
  Worker worker(*f.backend);
  std::atomic<int> runs{0};
  auto boom = [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    throw TaskError("BoomError", "it went boom");
    co_return nullptr;
  };
  worker.handle("boom", boom);
  Task t = task("boom");
  t.max_retries = 2;
  t.retry_delay = 20ms;
  const std::string id = f.q().enqueue(t);
  Running running(worker);
  const TaskResult r = f.result_of(id);
  CHECK(r.status == ResultStatus::error);
  CHECK(r.error_type == "BoomError");
  CHECK(r.error == "it went boom");
  CHECK(runs == 3);
  REQUIRE(wait_until([&] { return !f.q().list_dead_letters("default").empty(); }, 5s));
  running.stop_and_join();
  const auto letters = f.q().list_dead_letters("default");
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].task_id == id);
  CHECK(letters[0].reason.find("failed after 3 attempt(s): BoomError: it went boom") != std::string::npos);
  CHECK(f.count_events(id, EventType::retry) == 2);
  CHECK(f.count_events(id, EventType::failed) == 1);
  const auto state = f.q().get_task(id);
  REQUIRE(state);
  CHECK(state->task.status == TaskStatus::dead_lettered);
  CHECK(f.q().get_queue_size("default") == 0);

  // Requeued from the dead letters, it runs again: three more attempts (its stored error does
  // not count as an outcome), then dead-lettered again.
  CHECK(f.q().requeue_dead_letter(id));
  CHECK(f.q().get_task(id)->task.status == TaskStatus::pending);
  CHECK(f.q().list_dead_letters("default").empty());
  Worker again(*f.backend);
  again.handle("boom", boom);
  Running rerun(again);
  REQUIRE(wait_until([&] { return f.count_events(id, EventType::failed) == 2; }, 15s));
  CHECK(runs == 6);
  REQUIRE(wait_until([&] { return f.q().list_dead_letters("default").size() == 1; }, 5s));
  CHECK(f.result_of(id).status == ResultStatus::error);
}

TEST_CASE("a non-retryable TaskError fails the task at once", "[worker]") {
  Fixture f;
  Worker worker(*f.backend);
  std::atomic<int> runs{0};
  worker.handle("fatal", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    throw TaskError("BadInput", "the input can never work", false);
    co_return nullptr;
  });
  const std::string id = f.q().enqueue(task("fatal"));
  Running running(worker);
  const TaskResult r = f.result_of(id);
  CHECK(r.error_type == "BadInput");
  CHECK(runs == 1);
  CHECK(f.count_events(id, EventType::retry) == 0);
}

TEST_CASE("an unknown function is dead-lettered with a clear reason and the queue goes on", "[worker]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.concurrency = 1});
  worker.handle("known", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> { co_return "ok"; });
  const std::string unknown = f.q().enqueue(task("nobody.handles.this"));
  const std::string known = f.q().enqueue(task("known"));
  Running running(worker);
  CHECK(f.result_of(known).result == "ok");
  const TaskResult r = f.result_of(unknown);
  CHECK(r.status == ResultStatus::error);
  CHECK(r.error_type == "unknown_function");
  CHECK(r.error->find("no handler for function \"nobody.handles.this\"") != std::string::npos);
  CHECK(r.error->find("registered: known") != std::string::npos);
  REQUIRE(wait_until([&] { return !f.q().list_dead_letters().empty(); }, 5s));
  const auto letters = f.q().list_dead_letters();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].task_id == unknown);
  CHECK(letters[0].reason.find("unknown function") != std::string::npos);
  CHECK(f.count_events(unknown, EventType::failed) == 1);
}

TEST_CASE("a coroutine handler past its timeout is cancelled and the attempt fails", "[worker]") {
  Fixture f;
  Worker worker(*f.backend);
  std::atomic<bool> saw_cancel{false};
  worker.handle("slow", [&](TaskContext& ctx, const json&, const json&) -> asio::awaitable<json> {
    try {
      co_await sleep_for(30s);
    } catch (const boost::system::system_error&) {
      saw_cancel = ctx.cancelled() && ctx.stop_reason() == StopReason::timeout;
      throw;
    }
    co_return nullptr;
  });
  Task t = task("slow");
  t.timeout = 300ms;
  t.max_retries = 0;
  const auto start = Steady::now();
  const std::string id = f.q().enqueue(t);
  Running running(worker);
  const TaskResult r = f.result_of(id);
  CHECK(Steady::now() - start < 10s);
  CHECK(r.status == ResultStatus::error);
  CHECK(r.error_type == "timeout");
  CHECK(r.error->find("ran longer than its timeout of 0.3") != std::string::npos);
  CHECK(saw_cancel);
}

TEST_CASE("a blocking handler past the worker's default timeout is told to stop and the attempt fails",
          "[worker]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.default_timeout = 300ms});
  std::atomic<bool> saw_cancel{false};
  worker.handle_blocking("spin", [&](TaskContext& ctx, const json&, const json&) -> json {
    const auto until = Steady::now() + 20s;
    while (!ctx.cancelled() && Steady::now() < until) std::this_thread::sleep_for(5ms);
    saw_cancel = ctx.stop_token().stop_requested();
    return "too late";
  });
  Task t = task("spin");
  t.max_retries = 1;
  t.retry_delay = 10ms;
  const std::string id = f.q().enqueue(t);
  Running running(worker);
  const TaskResult r = f.result_of(id);
  CHECK(r.error_type == "timeout");
  CHECK(saw_cancel);
  CHECK(f.count_events(id, EventType::retry) == 1);  // a timeout is a failed attempt like any other
}

TEST_CASE("a handler slower than ack_wait runs once, kept alive by in-progress signals", "[worker]") {
  Fixture f([](Config& c) { c.ack_wait = 1000ms; });
  Worker worker(*f.backend, WorkerOptions{.concurrency = 2});
  std::atomic<int> runs{0};
  worker.handle("long", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    co_await sleep_for(3500ms);
    co_return "done";
  });
  const std::string id = f.q().enqueue(task("long"));
  Running running(worker);
  CHECK(f.result_of(id, 20s).result == "done");
  std::this_thread::sleep_for(1500ms);  // a redelivery would show up by now
  CHECK(runs == 1);
  CHECK(f.count_events(id, EventType::executing) == 1);
  CHECK(worker.stats().already_done == 0);
  CHECK(f.q().get_queue_size("default") == 0);
}

TEST_CASE("a task cancelled while running is stopped and recorded as cancelled", "[worker]") {
  Fixture f;
  Worker worker(*f.backend);
  std::atomic<bool> started{false};
  std::atomic<bool> saw_cancel{false};
  worker.handle("wait", [&](TaskContext& ctx, const json&, const json&) -> asio::awaitable<json> {
    started = true;
    try {
      co_await sleep_for(30s);
    } catch (const boost::system::system_error&) {
      saw_cancel = ctx.stop_reason() == StopReason::cancelled;
      throw;
    }
    co_return nullptr;
  });
  const std::string id = f.q().enqueue(task("wait"));
  Running running(worker);
  REQUIRE(wait_until([&] { return started.load(); }, 10s));
  std::this_thread::sleep_for(200ms);  // the cancellation watch is up
  CHECK(f.q().cancel_task(id));
  const TaskResult r = f.result_of(id);
  CHECK(r.status == ResultStatus::cancelled);
  CHECK(saw_cancel);
  CHECK(f.count_events(id, EventType::cancelled) == 1);
  REQUIRE(wait_until([&] { return f.q().get_queue_size("default") == 0; }, 5s));
  CHECK(worker.stats().cancelled == 1);
}

TEST_CASE("a task cancelled before it ran never runs", "[worker]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.concurrency = 1});
  std::atomic<int> busy_runs{0};
  std::atomic<int> victim_runs{0};
  worker.handle("busy", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++busy_runs;
    co_await sleep_for(1500ms);
    co_return nullptr;
  });
  worker.handle("victim", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++victim_runs;
    co_return nullptr;
  });
  const std::string busy = f.q().enqueue(task("busy"));
  const std::string victim = f.q().enqueue(task("victim"));
  Running running(worker);
  REQUIRE(wait_until([&] { return busy_runs.load() == 1; }, 10s));
  // The victim waits behind the busy task (possibly prefetched by this worker already).
  CHECK(f.q().cancel_task(victim));
  CHECK(f.result_of(busy).status == ResultStatus::success);
  std::this_thread::sleep_for(1500ms);
  CHECK(victim_runs == 0);
  CHECK(f.q().get_task(victim)->task.status == TaskStatus::cancelled);
  CHECK(f.q().get_queue_size("default") == 0);
  // cancel_task stored its result and event; a prefetched copy the worker still held was
  // settled from that result, not run, and logged nothing more.
  const auto r = f.results().get(victim);
  REQUIRE(r);
  CHECK(r->status == ResultStatus::cancelled);
  CHECK(f.count_events(victim, EventType::cancelled) == 1);
}

TEST_CASE("a redelivery of a task whose outcome is already stored is acked without running again", "[worker]") {
  Fixture f;
  const std::string id = f.q().enqueue(task("count"));
  {
    // A worker ran it and stored the result, then lost its connection before the ack.
    auto lease = f.q().dequeue({"default"}, 5s);
    REQUIRE(lease);
    TaskResult done = TaskResult::success(id, "from the first worker");
    done.metadata["message"] = lease->stream_sequence();
    f.results().set(done);
    lease->nack();
  }
  CountingWorker counting(*f.backend);
  Worker& worker = counting.worker;
  std::atomic<int>& runs = counting.runs;
  Running running(worker);
  REQUIRE(wait_until([&] { return worker.stats().already_done == 1; }, 10s));
  CHECK(runs == 0);
  CHECK(f.results().get(id)->result == "from the first worker");
  CHECK(f.q().get_queue_size("default") == 0);
}

TEST_CASE("a redelivery after a crash between storing the result and its event or dead letter writes them once",
          "[worker]") {
  Fixture f;
  const std::string done_id = f.q().enqueue(task("count"));
  const std::string failed_id = f.q().enqueue(task("count"));
  const std::string logged_id = f.q().enqueue(task("count"));
  for (int i = 0; i < 3; ++i) {
    // A worker stored the outcome (with the id its event is logged under), then died before
    // logging the event, writing the dead letter or acking; for logged_id, after the event.
    auto lease = f.q().dequeue({"default"}, 5s);
    REQUIRE(lease);
    const std::string id = lease->task().id;
    const std::string dedup = "outcome-" + id + "-" + std::to_string(lease->stream_sequence()) + "-7";
    TaskResult r = id == failed_id ? TaskResult::failure(id, "BoomError", "it went boom")
                                   : TaskResult::success(id, "from the first worker");
    r.worker_id = "first";
    r.metadata["message"] = lease->stream_sequence();
    r.metadata["outcome_event"] = dedup;
    if (id == failed_id) r.metadata["dead_letter_reason"] = "failed after 1 attempt(s): BoomError: it went boom";
    f.results().set(r);
    if (id == logged_id) f.events().log_event(events::completed(id, 1ms, "first"), dedup);
    lease->nack();
  }
  CountingWorker counting(*f.backend);
  Worker& worker = counting.worker;
  std::atomic<int>& runs = counting.runs;
  Running running(worker);
  REQUIRE(wait_until([&] { return worker.stats().already_done == 3; }, 10s));
  REQUIRE(wait_until([&] { return f.q().get_queue_size("default") == 0; }, 5s));
  running.stop_and_join();
  CHECK(runs == 0);
  CHECK(f.count_events(done_id, EventType::completed) == 1);    // written now
  CHECK(f.count_events(logged_id, EventType::completed) == 1);  // written before, not again
  CHECK(f.count_events(failed_id, EventType::failed) == 1);
  const auto completed = f.events().get_events(done_id, EventType::completed);
  REQUIRE(completed.size() == 1);
  CHECK(completed[0].worker_id == "first");
  const auto letters = f.q().list_dead_letters("default");
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].task_id == failed_id);
  CHECK(letters[0].reason == "failed after 1 attempt(s): BoomError: it went boom");
  CHECK(f.results().get(done_id)->result == "from the first worker");
}

TEST_CASE("log_event with a dedup_id stores the event once, and refuses control characters in it",
          "[worker][event_log]") {
  Fixture f;
  const TaskEvent e = events::completed("t1", 1ms, "w");
  f.events().log_event(e, "once-t1");
  f.events().log_event(events::completed("t1", 2ms, "w"), "once-t1");  // another event, same id
  f.events().log_event(events::completed("t1", 3ms, "w"));              // no id: stored
  CHECK(f.count_events("t1", EventType::completed) == 2);
  try {
    f.events().log_event(e, "bad\r\nid");
    FAIL("a dedup_id with CR LF was accepted");
  } catch (const Error& err) {
    CHECK(err.kind() == errc::invalid_argument);
    CHECK_THAT(err.what(), Catch::Contains("dedup_id"));
  }
  CHECK(f.count_events("t1", EventType::completed) == 2);
}

TEST_CASE("a task waits for its dependencies and runs once they completed, a failed dependency fails it",
          "[worker]") {
  Fixture f;
  Worker worker(*f.backend, WorkerOptions{.concurrency = 4, .dependency_poll = 200ms});
  std::mutex mu;
  std::vector<std::string> order;
  worker.handle("step", [&](TaskContext& ctx, const json& args, const json&) -> asio::awaitable<json> {
    co_await sleep_for(std::chrono::milliseconds(args.at(0).get<int>()));
    std::lock_guard lock(mu);
    order.push_back(ctx.task().id);
    co_return nullptr;
  });
  worker.handle("fail", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    throw TaskError("Nope", "no", false);
    co_return nullptr;
  });
  Task a = task("step", {600});
  Task b = task("step", {100});
  Task after = task("step", {0});
  after.dependencies = {a.id, b.id};
  Task bad = task("fail");
  Task orphan = task("step", {0});
  orphan.dependencies = {bad.id};
  // The dependent task is enqueued first: it must still run last.
  f.q().enqueue(after);
  f.q().enqueue(orphan);
  f.q().enqueue(a);
  f.q().enqueue(b);
  f.q().enqueue(bad);
  Running running(worker);
  CHECK(f.result_of(after.id).status == ResultStatus::success);
  {
    std::lock_guard lock(mu);
    REQUIRE(order.size() == 3);
    CHECK(order.back() == after.id);
  }
  const TaskResult r = f.result_of(orphan.id);
  CHECK(r.status == ResultStatus::error);
  CHECK(r.error_type == "dependency_failed");
  CHECK(r.error->find("dependency " + bad.id + " ended error") != std::string::npos);
  CHECK(worker.stats().deferred >= 1);
}

TEST_CASE("stop lets a running task finish, then run returns", "[worker]") {
  Fixture f;
  Worker worker(*f.backend);
  std::atomic<bool> started{false};
  worker.handle("work", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    started = true;
    co_await sleep_for(800ms);
    co_return "finished";
  });
  const std::string id = f.q().enqueue(task("work"));
  Running running(worker);
  REQUIRE(wait_until([&] { return started.load(); }, 10s));
  running.stop_and_join();
  auto r = f.results().get(id);
  REQUIRE(r);
  CHECK(r->result == "finished");
  CHECK(f.q().get_queue_size("default") == 0);
}

TEST_CASE("a task still running at the shutdown timeout is handed back and another worker completes it",
          "[worker]") {
  Fixture f;
  std::atomic<int> runs{0};
  auto handler = [&](TaskContext& ctx, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    if (ctx.worker_id() == "first") co_await sleep_for(30s);
    co_return ctx.worker_id();
  };
  Worker first(*f.backend, WorkerOptions{.worker_id = "first", .shutdown_timeout = 300ms});
  first.handle("work", handler);
  const std::string id = f.q().enqueue(task("work"));
  {
    Running running(first);
    REQUIRE(wait_until([&] { return runs.load() == 1; }, 10s));
    const auto start = Steady::now();
    running.stop_and_join();
    CHECK(Steady::now() - start < 5s);
  }
  CHECK(first.stats().handed_back >= 1);
  const auto claimed = f.results().get(id);  // the claim of the run that was handed back
  REQUIRE(claimed);
  CHECK(claimed->status == ResultStatus::pending);
  NatsBackend other(f.config);
  ConnectionScope scope(other);
  Worker second(other, WorkerOptions{.worker_id = "second"});
  second.handle("work", handler);
  Running running(second);
  const auto r = f.result_of(id, 10s);  // handed back: redelivered at once, not after ack_wait
  CHECK(r.result == "second");
}

TEST_CASE("progress restarts the lease and is logged as an executing event", "[worker]") {
  Fixture f;
  Worker worker(*f.backend);
  worker.handle("report", [](TaskContext& ctx, const json&, const json&) -> asio::awaitable<json> {
    co_await ctx.async_progress(0.5, "half way");
    co_return nullptr;
  });
  worker.handle_blocking("report_blocking", [](TaskContext& ctx, const json&, const json&) -> json {
    ctx.report_progress(0.25);
    return nullptr;
  });
  const std::string id = f.q().enqueue(task("report"));
  const std::string blocking_id = f.q().enqueue(task("report_blocking"));
  Running running(worker);
  f.result_of(id);
  f.result_of(blocking_id);
  auto executing = f.events().get_events(id, EventType::executing);
  REQUIRE(executing.size() == 2);
  CHECK(executing[1].details["progress"] == 0.5);
  CHECK(executing[1].details["message"] == "half way");
  auto blocking = f.events().get_events(blocking_id, EventType::executing);
  REQUIRE(blocking.size() == 2);
  CHECK(blocking[1].details["progress"] == 0.25);
}

TEST_CASE("progress alone keeps a task past ack_wait: delivered once, run once, no delivery set aside", "[worker]") {
  Fixture f([](Config& c) { c.ack_wait = 1000ms; });
  // Heartbeats far apart: only the handler's progress reports restart the lease.
  Worker worker(*f.backend, WorkerOptions{.concurrency = 2, .heartbeat = 30s});
  std::atomic<int> runs{0};
  std::atomic<std::uint64_t> last_delivery{0};
  worker.handle("reporting", [&](TaskContext& ctx, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    for (int i = 1; i <= 10; ++i) {  // 3 s, three times ack_wait
      co_await sleep_for(300ms);
      co_await ctx.async_progress(i / 10.0);
      last_delivery = ctx.delivery();
    }
    co_return "done";
  });
  const std::string id = f.q().enqueue(task("reporting"));
  Running running(worker);
  CHECK(f.result_of(id, 20s).result == "done");
  std::this_thread::sleep_for(1500ms);  // a redelivery would show up by now
  CHECK(runs == 1);
  CHECK(last_delivery == 1);          // the server never delivered it again
  CHECK(worker.stats().held == 0);    // no second delivery was set aside while it ran
  CHECK(worker.stats().already_done == 0);
  CHECK(f.q().get_queue_size("default") == 0);
}

TEST_CASE("worker options and registrations are checked", "[worker]") {
  Fixture f;
  auto kind = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::pair{e.kind(), std::string(e.what())};
    }
    return std::pair{errc::nats_error, std::string("no error")};
  };
  auto [k1, m1] = kind([&] { Worker w(*f.backend, WorkerOptions{.concurrency = 0}); });
  CHECK(k1 == errc::invalid_argument);
  CHECK(m1.find("worker.concurrency") != std::string::npos);
  auto [k2, m2] = kind([&] { Worker w(*f.backend, WorkerOptions{.queues = {}}); });
  CHECK(k2 == errc::invalid_argument);
  auto [k3, m3] = kind([&] { Worker w(*f.backend, WorkerOptions{.queues = {"ok", "not ok"}}); });
  CHECK(k3 == errc::invalid_name);
  CHECK(m3.find("worker.queues[1]") != std::string::npos);
  Worker w(*f.backend);
  auto h = [](TaskContext&, const json&, const json&) -> asio::awaitable<json> { co_return nullptr; };
  w.handle("f", h);
  auto [k4, m4] = kind([&] { w.handle("f", h); });
  CHECK(k4 == errc::invalid_argument);
  CHECK(m4.find("already registered") != std::string::npos);
  auto [k5, m5] = kind([&] { w.handle("", h); });
  CHECK(k5 == errc::invalid_argument);
}

TEST_CASE("a task past its expiry is not run: its result and state say expired, wait_for_result answers, one expired event",
          "[worker]") {
  Fixture f;
  Worker worker(*f.backend);
  std::atomic<int> runs{0};
  worker.handle("late", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    co_return nullptr;
  });
  Task t = task("late");
  t.ttl = 200ms;
  const std::string id = f.q().enqueue(t);
  const std::string fresh = f.q().enqueue(task("late"));
  std::this_thread::sleep_for(400ms);  // expired before any worker takes it
  auto waiter = std::async(std::launch::async, [&] { return f.results().wait_for_result(id, 20s); });
  Running running(worker);
  const auto started = Steady::now();
  // The waiter wakes when the worker that meets the task stores `expired`, not at its timeout.
  REQUIRE(waiter.wait_for(10s) == std::future_status::ready);
  const auto expired = waiter.get();
  REQUIRE(expired);
  CHECK(expired->status == ResultStatus::expired);
  CHECK(Steady::now() - started < 5s);
  CHECK(f.result_of(fresh).status == ResultStatus::success);
  REQUIRE(wait_until([&] { return f.count_events(id, EventType::expired) == 1; }, 10s));
  CHECK(runs == 1);  // only the fresh one
  CHECK(f.q().get_task(id)->task.status == TaskStatus::expired);
  CHECK(f.q().get_queue_size("default") == 0);
}

// A worker started while its server is down, 1.5 s later: its provisioning calls timed out and
// are being retried, and its run has not failed.
struct StartedWithServerDown {
  Fixture f{[](Config& c) {
    c.request_timeout = 500ms;
    c.reconnect_time_wait = 100ms;
  }};
  CountingWorker w{*f.backend};
  std::optional<Running> running;
  StartedWithServerDown() {
    f.server.stop();
    running.emplace(w.worker);
    std::this_thread::sleep_for(1500ms);
    REQUIRE(running->done.wait_for(0s) == std::future_status::timeout);  // still running, not failed
  }
};

TEST_CASE("a worker started while the server is down waits for it, then serves", "[worker][restart]") {
  StartedWithServerDown s;
  Fixture& f = s.f;
  CountingWorker& w = s.w;
  Running& running = *s.running;
  f.server.restart();
  Task t = task("count");
  REQUIRE(test::wait_until(
      [&] {
        try {
          f.q().enqueue(t);  // a retry of a timed-out enqueue is deduplicated by the id
          return true;
        } catch (const Error&) {
          return false;
        }
      },
      20s));
  CHECK(f.result_of(t.id, 20s).status == ResultStatus::success);
  CHECK(w.runs == 1);
  running.stop_and_join();
}

TEST_CASE("a worker stopped while it still waits for the server ends its run cleanly, having taken nothing",
          "[worker][restart]") {
  StartedWithServerDown s;
  CountingWorker& w = s.w;
  Running& running = *s.running;
  w.worker.stop();  // a SIGTERM to a worker that never reached the server: no failure to report
  REQUIRE(running.done.wait_for(5s) == std::future_status::ready);
  CHECK_NOTHROW(running.done.get());
  CHECK(w.runs == 0);
}
