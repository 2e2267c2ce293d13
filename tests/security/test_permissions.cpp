// Least privilege against a real nats-server: the producer, worker and scheduler users of
// tests/security/permissions.conf (quoted verbatim in docs/security.md) can do their whole job
// once an admin provisioned streams, buckets and consumers, each with its own inbox prefix;
// whatever lies outside a role's block fails at once with errc::permission_denied naming the
// subject and the user, never as a silent timeout, and the connection stays usable.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <map>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "omniq/backend.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/scheduler.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/worker.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

const std::filesystem::path kHere = std::filesystem::path(__FILE__).parent_path();

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct Role {
  std::string user, password, inbox_prefix;
};
const Role kAdmin{"omniq_admin", "admin-secret", ""};
const Role kProducer{"omniq_producer", "producer-secret", "_INBOX_producer"};
const Role kWorker{"omniq_worker", "worker-secret", "_INBOX_worker"};
const Role kScheduler{"omniq_scheduler", "scheduler-secret", "_INBOX_scheduler"};

// Long enough that a denial answered only by the request timeout could not pass for prompt.
constexpr auto kRequestTimeout = std::chrono::milliseconds(20'000);
constexpr auto kPrompt = std::chrono::milliseconds(5'000);

// The documented blocks, with the passwords they leave to variables defined in front.
std::string server_config() {
  return "OMNIQ_ADMIN_PASSWORD: \"" + kAdmin.password + "\"\n" +       //
         "OMNIQ_PRODUCER_PASSWORD: \"" + kProducer.password + "\"\n" +  //
         "OMNIQ_WORKER_PASSWORD: \"" + kWorker.password + "\"\n" +      //
         "OMNIQ_SCHEDULER_PASSWORD: \"" + kScheduler.password + "\"\n" + read_text(kHere / "permissions.conf");
}

struct SecuredServer {
  LocalServer server{LocalServerOptions{.config_text = server_config()}};

  Config config(const Role& role, std::chrono::milliseconds request_timeout = kRequestTimeout) const {
    Config c = test::config_for(server);
    c.user = role.user;
    c.password = role.password;
    c.inbox_prefix = role.inbox_prefix;
    c.request_timeout = request_timeout;
    c.ack_wait = 5s;
    return c;
  }

  // What an admin does once: streams, buckets and the consumers of the queue "default".
  void provision() const {
    NatsBackend admin(config(kAdmin));
    ConnectionScope scope(admin);
    admin.provision_sync();  // every stream and bucket
    admin.sync_task_queue().get_queue_size("default");  // creates the queue's consumers, takes no work
  }
};

// One role's backend, connected, logging into a buffer.
struct Session {
  test::CapturedLog log;
  NatsBackend backend;
  Session(const SecuredServer& s, const Role& role, std::chrono::milliseconds request_timeout = kRequestTimeout)
      : log(role.user), backend(s.config(role, request_timeout), log.logger) {
    backend.connect_sync();
  }
  // Lines logged at error level that mention `text`.
  std::size_t errors_about(const std::string& text) const {
    std::size_t n = 0;
    for (const auto& line : log.sink->last_formatted())
      n += line.find("[error]") != std::string::npos && line.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
};

// `server`, once the admin provisioned it (for member initialisers).
const SecuredServer& provisioned(const SecuredServer& server) {
  server.provision();
  return server;
}

// A server provisioned by the admin, and a session for each runtime role.
struct Roles {
  SecuredServer s;
  Session producer{provisioned(s), kProducer};
  Session worker{s, kWorker};
  Session scheduler{s, kScheduler};

};

// The baseline's setup: a provisioned server, a producer session and two worker sessions.
struct Baseline {
  SecuredServer s;
  Session producer{provisioned(s), kProducer};
  std::vector<std::unique_ptr<Session>> workers = two_workers(s);

  static std::vector<std::unique_ptr<Session>> two_workers(const SecuredServer& server) {
    std::vector<std::unique_ptr<Session>> out;
    for (int i = 0; i < 2; ++i) out.push_back(std::make_unique<Session>(server, kWorker));
    return out;
  }
};

// Runs `op`, which must fail with permission_denied; returns the error's message and checks
// it came promptly, not from a request timeout.
template <class Op>
std::string denied(Op&& op) {
  const auto started = Steady::now();
  try {
    op();
  } catch (const Error& e) {
    const auto took = Steady::now() - started;
    INFO(e.what());
    CHECK(e.kind() == errc::permission_denied);
    CHECK(took < kPrompt);
    return e.what();
  }
  FAIL("the operation was allowed");
  return {};
}

Task make_task(std::string func, std::string queue = "default") {
  Task t;
  t.func = std::move(func);
  t.queue_name = std::move(queue);
  return t;
}

}  // namespace

TEST_CASE("docs/security.md quotes the tested permission blocks verbatim", "[security][permissions]") {
  const std::string blocks = read_text(kHere / "permissions.conf");
  const std::string doc = read_text(kHere / ".." / ".." / "docs" / "security.md");
  CHECK(doc.find(blocks) != std::string::npos);
}

TEST_CASE("least-privilege roles: a producer, a worker and a scheduler each do their whole job",
          "[security][permissions]") {
  Roles roles;
  auto& [s, producer, worker, scheduler] = roles;

  // Producer: enqueue (one task now, one delayed), log an event.
  auto& produce = producer.backend.sync_task_queue();
  const Task now_task = make_task("resize");
  Task later_task = make_task("later");
  later_task.run_at = now() + 500ms;
  const Task doomed = make_task("doomed");
  produce.enqueue(now_task);
  produce.enqueue(later_task);
  produce.enqueue(doomed);
  producer.backend.sync_event_log().log_event(events::enqueued(now_task.id, "default"));

  // Worker: dequeue, record state, result and events, ack; the delayed task comes through the
  // delayed lane; a task dead-lettered, one handed back and taken again.
  auto& work = worker.backend.sync_task_queue();
  std::set<std::string> seen;
  bool handed_back = false;
  const auto deadline = Steady::now() + 15s;
  while (seen.size() < 3 && Steady::now() < deadline) {
    auto lease = work.dequeue({"default"}, 1s);
    if (!lease) continue;
    const Task task = lease->task();
    if (task.id == doomed.id) {
      lease->dead_letter("the handler refused it");
      seen.insert(task.id);
      continue;
    }
    if (task.id == now_task.id && !handed_back) {
      lease->in_progress();
      lease->nack();  // redelivered at once
      handed_back = true;
      continue;
    }
    Task running = task;
    running.status = TaskStatus::running;
    CHECK(work.update_task(running, 0));  // task state: created for this task
    worker.backend.sync_event_log().log_event(events::executing(task.id, "worker-1"));
    worker.backend.sync_result_store().set(TaskResult::success(task.id, task.func + " done"));
    worker.backend.sync_event_log().log_event(events::completed(task.id, 10ms, "worker-1"));
    lease->ack();
    seen.insert(task.id);
  }
  CHECK(seen == std::set<std::string>{now_task.id, later_task.id, doomed.id});
  CHECK(handed_back);

  // Producer: read the results, at once or by waiting.
  auto& results = producer.backend.sync_result_store();
  const auto got = results.get(now_task.id);
  REQUIRE(got);
  CHECK(got->result == "resize done");
  const auto waited = results.wait_for_result(later_task.id, 5s);
  REQUIRE(waited);
  CHECK(waited->result == "later done");
  CHECK_FALSE(results.get(doomed.id));

  // Scheduler: create, list, pause, resume, then fire a due occurrence (enqueue + CAS update).
  auto& schedules = scheduler.backend.sync_schedule_store();
  const Schedule every = Schedule::from_interval(1s, "report", {}, {}, "default");
  schedules.create_schedule(every);
  CHECK(schedules.list_schedules().size() == 1);
  CHECK(schedules.pause_schedule(every.id));
  CHECK(schedules.resume_schedule(every.id));
  Scheduler ticker(scheduler.backend);
  const std::size_t fired = test::run_sync(scheduler.backend, ticker.async_tick(now() + 2s));
  CHECK(fired == 1);
  const auto record = schedules.get_schedule(every.id);
  REQUIRE(record);
  CHECK(record->schedule.run_count == 1);
  auto scheduled = work.dequeue({"default"}, 5s);
  REQUIRE(scheduled);
  CHECK(scheduled->task().func == "report");
  scheduled->ack();

  // Nothing any of them did was refused, not even a fire-and-forget ack or nak.
  for (const Session* session : {&producer, &worker, &scheduler}) {
    INFO(session->log.text());
    CHECK(session->log.count("may not") == 0);
  }
  CHECK(producer.backend.is_connected());
  CHECK(worker.backend.is_connected());
  CHECK(scheduler.backend.is_connected());
}

TEST_CASE("baseline with least-privilege users: 2000 tasks, 2 workers, nothing lost, nothing run twice",
          "[security][permissions]") {
  Baseline b;
  auto& [s, producer, workers] = b;

  constexpr std::size_t kTasks = 2000;
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < kTasks; ++i) tasks.push_back(make_task("baseline"));
  producer.backend.sync_task_queue().enqueue_batch(tasks);

  std::mutex mu;
  std::multiset<std::string> executions;  // guarded by mu
  std::atomic<std::size_t> completed{0};
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&, session = w.get()] {
      auto& queue = session->backend.sync_task_queue();
      auto& results = session->backend.sync_result_store();
      const auto give_up = Steady::now() + 60s;
      while (completed < kTasks && Steady::now() < give_up) {
        for (auto& lease : queue.dequeue_batch({"default"}, 64, 500ms)) {
          results.set(TaskResult::success(lease.task().id, 1));
          session->backend.sync_event_log().log_event(events::completed(lease.task().id, 1ms, "w"));
          lease.ack();
          {
            std::lock_guard lock(mu);
            executions.insert(lease.task().id);
          }
          ++completed;
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<std::string> stored;
  for (const auto& r : producer.backend.sync_result_store().list(std::nullopt, kTasks + 10))
    stored.insert(r.task_id);
  std::size_t lost = 0;
  for (const auto& t : tasks) lost += stored.count(t.id) ? 0 : 1;
  const std::set<std::string> distinct(executions.begin(), executions.end());
  CHECK(lost == 0);
  CHECK(executions.size() - distinct.size() == 0);  // duplicates
  NatsBackend admin(s.config(kAdmin));
  ConnectionScope scope(admin);
  CHECK(admin.sync_task_queue().get_queue_size("default") == 0);
  for (auto& w : workers) CHECK(w->log.count("may not") == 0);
}

TEST_CASE("baseline through the Worker with least-privilege users: 2000 tasks, 2 workers, a cancellation followed",
          "[security][permissions]") {
  Baseline b;
  auto& [s, producer, sessions] = b;

  std::mutex mu;
  std::multiset<std::string> executions;  // guarded by mu
  std::atomic<bool> waiting{false};
  std::vector<std::unique_ptr<Worker>> workers;
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    auto w = std::make_unique<Worker>(sessions[i]->backend,
                                      WorkerOptions{.concurrency = 16, .worker_id = "w" + std::to_string(i + 1)});
    w->handle("baseline", [&](TaskContext& ctx, const nlohmann::json&, const nlohmann::json&) -> asio::awaitable<nlohmann::json> {
      std::lock_guard lock(mu);
      executions.insert(ctx.task().id);
      co_return 1;
    });
    // Runs until cancelled: only the worker's watch on the task-state bucket can stop it.
    w->handle_blocking("wait", [&](TaskContext& ctx, const nlohmann::json&, const nlohmann::json&) -> nlohmann::json {
      waiting = true;
      const auto until = Steady::now() + 30s;
      while (!ctx.cancelled() && Steady::now() < until) std::this_thread::sleep_for(5ms);
      return nullptr;
    });
    workers.push_back(std::move(w));
  }

  constexpr std::size_t kTasks = 2000;
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < kTasks; ++i) tasks.push_back(make_task("baseline"));
  const std::string waiter = producer.backend.sync_task_queue().enqueue(make_task("wait"));
  producer.backend.sync_task_queue().enqueue_batch(tasks);
  // A task whose dependency is enqueued only later: the workers read the unknown dependency's
  // state and message meanwhile (their DIRECT.GET lines on KV_omniq_tasks and OMNIQ_TASKS).
  Task late = make_task("baseline");
  Task dependent = make_task("baseline");
  dependent.dependencies = {late.id};
  producer.backend.sync_task_queue().enqueue(dependent);

  std::vector<std::future<void>> running;
  for (auto& w : workers) running.push_back(std::async(std::launch::async, [&w] { w->run_sync(); }));
  NatsBackend admin(s.config(kAdmin));
  ConnectionScope scope(admin);
  const auto started = Steady::now();
  while (!waiting && Steady::now() < started + 20s) std::this_thread::sleep_for(10ms);
  REQUIRE(waiting);
  std::this_thread::sleep_for(500ms);  // the workers' cancellation watches are up
  producer.backend.sync_task_queue().enqueue(late);
  tasks.push_back(late);
  tasks.push_back(dependent);
  CHECK(admin.sync_task_queue().cancel_task(waiter));  // cancelling is admin work
  const auto cancelled = producer.backend.sync_result_store().wait_for_result(waiter, 20s);
  const auto until = Steady::now() + 60s;
  while (admin.sync_task_queue().get_queue_size("default") > 0 && Steady::now() < until)
    std::this_thread::sleep_for(50ms);
  for (auto& w : workers) w->stop();
  for (auto& r : running) r.get();

  REQUIRE(cancelled);
  CHECK(cancelled->status == ResultStatus::cancelled);
  std::map<std::string, TaskResult> stored;
  for (auto& r : producer.backend.sync_result_store().list(std::nullopt, tasks.size() + 10))
    stored.emplace(r.task_id, r);
  std::size_t lost = 0;
  for (const auto& t : tasks) {
    const auto it = stored.find(t.id);
    lost += it != stored.end() && it->second.status == ResultStatus::success ? 0 : 1;
  }
  const std::set<std::string> distinct(executions.begin(), executions.end());
  CHECK(lost == 0);
  CHECK(distinct.size() == tasks.size());
  CHECK(executions.size() - distinct.size() == 0);  // duplicates
  CHECK(admin.sync_task_queue().get_queue_size("default") == 0);
  for (auto& session : sessions) {
    INFO(session->log.text());
    CHECK(session->log.count("may not") == 0);
    CHECK(session->log.count("cannot follow task cancellations") == 0);
  }
}

TEST_CASE("an operation outside a role's permissions fails at once with permission_denied naming subject and user",
          "[security][permissions]") {
  Roles roles;
  auto& [s, producer, worker, scheduler] = roles;

  SECTION("a producer may not dequeue") {
    const std::string why = denied([&] { producer.backend.sync_task_queue().dequeue({"default"}, 1s); });
    CHECK_THAT(why, Catch::Contains("user \"omniq_producer\""));
    CHECK_THAT(why, Catch::Contains("$JS.API.CONSUMER.") && Catch::Contains("omniq_workers_default_"));
    CHECK_THAT(why, Catch::Contains("Permissions Violation for Publish"));
  }
  SECTION("a producer may not query the event log") {
    const std::string why = denied([&] { producer.backend.sync_event_log().get_events(); });
    CHECK_THAT(why, Catch::Contains("\"$JS.API.CONSUMER.CREATE.OMNIQ_EVENTS\""));
  }
  SECTION("a worker may not delete a stream") {
    auto& connection = omniq::detail::connection_of(worker.backend);
    const std::string why = denied([&] {
      test::run_sync(worker.backend, detail::api_request(connection, "STREAM.DELETE.OMNIQ_TASKS", nlohmann::json(),
                                                         "deleting stream OMNIQ_TASKS"));
    });
    CHECK_THAT(why, Catch::Contains("user \"omniq_worker\" may not publish to \"$JS.API.STREAM.DELETE.OMNIQ_TASKS\""));
    NatsBackend admin(s.config(kAdmin));
    ConnectionScope scope(admin);
    CHECK(admin.sync_task_queue().info().name == "OMNIQ_TASKS");  // still there
  }
  SECTION("a worker may not enqueue on a queue outside its block") {
    const Task other = make_task("f", "billing");
    const std::string why = denied([&] { worker.backend.sync_task_queue().enqueue(other); });
    CHECK_THAT(why, Catch::Contains("\"omniq.tasks.billing.normal." + other.id + "\""));
  }
  SECTION("a producer may not write results, nor a scheduler delete a task") {
    CHECK_THAT(denied([&] { producer.backend.sync_result_store().set(TaskResult::success("forged", 1)); }),
               Catch::Contains("\"$KV.omniq_results.forged\""));
    const std::string id = producer.backend.sync_task_queue().enqueue(make_task("keep"));
    CHECK_THAT(denied([&] { scheduler.backend.sync_task_queue().delete_task(id); }),
               Catch::Contains("user \"omniq_scheduler\"") && Catch::Contains("$JS.API.DIRECT.GET.OMNIQ_TASKS"));
  }
  SECTION("a refused fire-and-forget publish is logged once at error level, however often it is repeated") {
    for (int i = 0; i < 3; ++i) omniq::detail::connection_of(scheduler.backend).publish("omniq.dlq.default.forged", "{}");
    const auto until = Steady::now() + 5s;
    while (scheduler.log.count("omniq.dlq.default.forged") < 3 && Steady::now() < until)
      std::this_thread::sleep_for(10ms);
    CHECK(scheduler.log.count("omniq.dlq.default.forged") == 3);
    CHECK(scheduler.errors_about("may not publish to \"omniq.dlq.default.forged\"") == 1);
  }
  // Refusals do not cost the connection: each role goes on working.
  CHECK_FALSE(producer.backend.sync_result_store().get("nothing-here"));
  CHECK(producer.backend.is_connected());
  CHECK(worker.backend.is_connected());
  CHECK(scheduler.backend.is_connected());
  CHECK(test::reconnects(producer.backend) == 0);
  CHECK(test::reconnects(worker.backend) == 0);
}

TEST_CASE("a worker whose block lacks the pull subjects gets permission_denied from dequeue, not an empty wait",
          "[security][permissions]") {
  // A broken block, on purpose: the consumers can be found but not pulled from.
  const std::string config =
      "authorization { users = [\n"
      "  { user: omniq_admin, password: \"" + kAdmin.password + "\" }\n"
      "  { user: omniq_worker, password: \"" + kWorker.password + "\", permissions: {\n"
      "      publish: { allow: [\"$JS.API.INFO\", \"$JS.API.STREAM.INFO.>\", \"$JS.API.CONSUMER.INFO.>\"] }\n"
      "      subscribe: { allow: [\"_INBOX_worker.>\"] } } }\n"
      "] }\n";
  SecuredServer s{LocalServer(LocalServerOptions{.config_text = config})};
  s.provision();
  Session worker(s, kWorker);
  const std::string why = denied([&] { worker.backend.sync_task_queue().dequeue({"default"}, 10s); });
  CHECK_THAT(why, Catch::Contains("dequeue from queue default") && Catch::Contains("$JS.API.CONSUMER.MSG.NEXT.OMNIQ_TASKS."));
  CHECK(worker.backend.is_connected());
}

TEST_CASE("a user who may not subscribe to the default inbox is told to set inbox_prefix at connect",
          "[security][permissions]") {
  SecuredServer s;
  Config c = s.config(kProducer);
  c.inbox_prefix.clear();  // "_INBOX": outside the producer's subscribe permission
  NatsBackend backend(c);
  const auto started = Steady::now();
  try {
    backend.connect_sync();
    FAIL("connected without being allowed to receive replies");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.kind() == errc::permission_denied);
    CHECK_THAT(e.what(), Catch::Contains("user \"omniq_producer\" may not subscribe to \"_INBOX."));
    CHECK_THAT(e.what(), Catch::Contains("inbox_prefix"));
  }
  CHECK(Steady::now() - started < kPrompt);
}

TEST_CASE("least-privilege users use what an admin provisioned and cannot create what is missing",
          "[security][permissions]") {
  SecuredServer s;
  SECTION("no streams yet: the worker's stream creation is refused as permission_denied, not a timeout") {
    // Streams are made by blocking nats.c calls, which only time out when refused: the
    // violation the server reported meanwhile turns that timeout into the real reason.
    Session worker(s, kWorker, 1000ms);
    try {
      worker.backend.sync_task_queue().dequeue({"default"}, 1s);
      FAIL("a worker created the streams");
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.kind() == errc::permission_denied);
      CHECK_THAT(e.what(), Catch::Contains("may not publish to \"$JS.API.STREAM.CREATE.OMNIQ_TASKS\""));
    }
  }
  SECTION("streams exist but not the queue's consumers: the worker says so and names them") {
    {
      NatsBackend admin(s.config(kAdmin));
      ConnectionScope scope(admin);
      admin.sync_task_queue().ensure();
    }
    Session worker(s, kWorker);
    const std::string why = denied([&] { worker.backend.sync_task_queue().dequeue({"default"}, 1s); });
    CHECK_THAT(why, Catch::Contains("consumer omniq_workers_default_") && Catch::Contains("does not exist") &&
                        Catch::Contains("admin"));
  }
  SECTION("once the admin provisioned everything, the same worker config works") {
    s.provision();
    Session producer(s, kProducer);
    const std::string id = producer.backend.sync_task_queue().enqueue(make_task("f"));
    Session worker(s, kWorker);
    auto lease = worker.backend.sync_task_queue().dequeue({"default"}, 5s);
    REQUIRE(lease);
    CHECK(lease->task().id == id);
    lease->ack();
  }
}
