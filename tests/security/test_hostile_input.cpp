// Hostile input against a real nats-server: names that cannot be subject tokens or KV keys,
// payloads one byte over max_payload, and garbage that another client publishes on omniq's
// task, event, result, schedule, task-state and dead-letter subjects. Everything is refused
// before sending or skipped/dead-lettered with a reason naming what was wrong, nothing crashes
// (not even JSON nested thousands deep), and the server never drops the connection.
// (tests/integration covers the first cases of each part; these go through every entry point.)
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/scheduler.hpp"
#include "omniq/task_queue.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

// Not subject tokens ([A-Za-z0-9_-]{1,128}): whitespace and control bytes (the server would
// close the connection), wildcards (stored literally), empty tokens, non-ASCII, overlong.
std::vector<std::string> bad_tokens() {
  return {"a b", "a\tb", "a\rb", "a\nb", "a\r\nb", std::string("a\0b", 3), "a\x7f", "a*", "*", "a>", ">",
          "",    "a.b",  "a..b", ".a",   "a.",     "..",   "caf\xc3\xa9", "\xff", std::string(129, 'x')};
}

// Not KV keys ([A-Za-z0-9_\-=/.]{1,256}, no leading/trailing '.', no "..", no "_kv" prefix).
std::vector<std::string> bad_keys() {
  return {"a b", "a\tb", "a\r\nb", std::string("a\0b", 3), "a*", "a>", ">", "", "a..b", ".a", "a.", "..",
          "caf\xc3\xa9", "a\\b", "a:b", "_kv1", std::string(257, 'x')};
}

std::string shown(const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out.size() > 40 ? out.substr(0, 40) + "..." : out;
}

// `op` must fail with invalid_name naming `field`, without touching the network (the backend
// is never connected: a network call would fail with not_connected instead).
template <class T>
void refused(asio::io_context& io, asio::awaitable<T> op, const std::string& field) {
  try {
    test::run(io, std::move(op));
    FAIL("accepted for " << field);
  } catch (const Error& e) {
    INFO(field << ": " << e.what());
    CHECK(e.kind() == errc::invalid_name);
    CHECK_THAT(e.what(), Catch::Contains(field));
  }
}

Task make_task(std::string func = "work", std::string queue = "default") {
  Task t;
  t.func = std::move(func);
  t.queue_name = std::move(queue);
  return t;
}

// Bytes another client might put anywhere: each must be refused by every decoder.
struct Garbage {
  std::string name;
  std::string bytes;
};
std::vector<Garbage> garbage() {
  const std::size_t deep = 20000;  // far beyond what a recursive JSON copy survives
  return {
      {"not JSON", "{this is not json"},
      {"empty", ""},
      {"binary", std::string("\xff\xfe\x00\x01", 4)},
      {"invalid UTF-8 in a string", "{\"func\": \"\xff\xfe\"}"},
      {"a JSON array", "[1, 2, 3]"},
      {"a JSON number", "42"},
      {"wrong types", R"({"schema_version": 1, "id": 5, "task_id": [], "func": ["x"], "args": "nope"})"},
      {"a newer schema", R"({"schema_version": 999})"},
      {"nested 20000 deep", "{\"args\": " + std::string(deep, '[') + std::string(deep, ']') + "}"},
  };
}

// The connection the server would have closed, had omniq sent it something it refuses.
void connection_untouched(NatsBackend& backend) {
  CHECK(backend.is_connected());
  CHECK(test::reconnects(backend) == 0);
}

struct Fixture : test::ServerFixture {
  test::CapturedLog log;
  explicit Fixture(test::CapturedLog captured = test::CapturedLog("hostile"))
      : ServerFixture({}, captured.logger), log(std::move(captured)) {}
  void publish_raw(const std::string& subject, const std::string& bytes) const {
    test::publish_raw(server.url(), subject, bytes);
  }
};

}  // namespace

TEST_CASE("names that cannot be subject tokens are refused before any network call, naming the field",
          "[security][hostile]") {
  asio::io_context io;
  NatsBackend backend(io.get_executor(), Config{});
  auto& q = backend.task_queue();
  auto& results = backend.result_store();
  auto& log = backend.event_log();
  for (const std::string& bad : bad_tokens()) {
    INFO("value \"" << shown(bad) << "\"");
    Task in_queue = make_task("f", bad);
    refused(io, q.async_enqueue(in_queue), "task.queue_name");
    Task with_id = make_task();
    with_id.id = bad;
    refused(io, q.async_enqueue(with_id), "task.id");
    refused(io, q.async_update_task(with_id, 1), "task.id");
    refused(io, q.async_enqueue_batch({make_task(), with_id}), "task 1 of 2");
    Task with_dependency = make_task();
    with_dependency.dependencies = {bad};
    refused(io, q.async_enqueue(with_dependency), "task.dependencies[0]");
    refused(io, q.async_dequeue({bad}, 0s), "queue_name");
    refused(io, q.async_dequeue_batch({"default", bad}, 10, 0s), "queue_name");
    refused(io, q.async_list_tasks(bad), "queue_name");
    refused(io, q.async_get_queue_size(bad), "queue_name");
    refused(io, q.async_list_dead_letters(bad), "queue_name");
    refused(io, q.async_get_task(bad), "task_id");
    refused(io, q.async_delete_task(bad), "task_id");
    refused(io, q.async_cancel_task(bad), "task_id");
    refused(io, q.async_requeue_dead_letter(bad), "task_id");

    refused(io, results.async_set(TaskResult::success(bad, 1)), "result.task_id");
    refused(io, results.async_get(bad), "task_id");
    refused(io, results.async_remove(bad), "task_id");
    refused(io, results.async_wait_for_result(bad, 1s), "task_id");

    refused(io, log.async_log_event(events::cancelled(bad)), "event.task_id");
    refused(io, log.async_log_events({events::cancelled("fine"), events::cancelled(bad)}), "event 1 of 2");
    refused(io, log.async_get_events(bad), "task_id");
    refused(io, log.async_follow(EventFilter{.task_id = bad}), "task_id");

    Schedule in_bad_queue = Schedule::from_interval(1s, "f");
    in_bad_queue.queue_name = bad;
    refused(io, backend.schedule_store().async_create_schedule(in_bad_queue), "schedule.queue_name");
  }
}

TEST_CASE("schedule ids that cannot be KV keys are refused before any network call, naming the field",
          "[security][hostile]") {
  asio::io_context io;
  NatsBackend backend(io.get_executor(), Config{});
  auto& schedules = backend.schedule_store();
  for (const std::string& bad : bad_keys()) {
    INFO("schedule id \"" << shown(bad) << "\"");
    Schedule s = Schedule::from_interval(1s, "f");
    s.id = bad;
    refused(io, schedules.async_create_schedule(s), "schedule.id");
    refused(io, schedules.async_save_schedule(s), "schedule.id");
    refused(io, schedules.async_update_schedule(s, 1), "schedule.id");
    refused(io, schedules.async_get_schedule(bad), "schedule_id");
    refused(io, schedules.async_delete_schedule(bad), "schedule_id");
    refused(io, schedules.async_pause_schedule(bad), "schedule_id");
    refused(io, schedules.async_resume_schedule(bad), "schedule_id");
  }
}

TEST_CASE("a task, result, event or schedule of max_payload + 1 bytes is refused before sending and nothing is stored",
          "[security][hostile]") {
  Fixture f;
  NatsBackend& backend = *f.backend;
  const auto max = static_cast<std::size_t>(omniq::detail::connection_of(backend).max_payload());
  REQUIRE(max > 0);
  auto require_too_large = [&](auto&& op, const std::string& what) {
    try {
      op();
      FAIL(what << " of max_payload + 1 bytes was accepted");
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.kind() == errc::payload_too_large);
      CHECK_THAT(e.what(), Catch::Contains(std::to_string(max)));
    }
  };
  // Each model padded so that its encoded form is exactly max_payload + 1 bytes.
  auto pad_to = [](std::size_t base, std::size_t target) { return std::string(target - base, 'x'); };

  using nlohmann::json;
  Task task = make_task();
  task.args = json::array({""});
  task.args = json::array({pad_to(encode(task).size(), max + 1)});
  REQUIRE(encode(task).size() == max + 1);
  require_too_large([&] { backend.sync_task_queue().enqueue(task); }, "a task");
  require_too_large([&] { backend.sync_task_queue().enqueue_batch({make_task(), task}); }, "a batch");

  TaskResult result = TaskResult::success("big", "");
  result.result = pad_to(encode(result).size(), max + 1);
  REQUIRE(encode(result).size() == max + 1);
  require_too_large([&] { backend.sync_result_store().set(result); }, "a result");

  TaskEvent event = events::failed("big", "E", "");
  event.error_message = pad_to(encode(event).size(), max + 1);
  REQUIRE(encode(event).size() == max + 1);
  require_too_large([&] { backend.sync_event_log().log_event(event); }, "an event");

  Schedule schedule = Schedule::from_interval(1s, "f", json::array({""}));
  schedule.args = json::array({pad_to(encode(schedule).size(), max + 1)});
  REQUIRE(encode(schedule).size() == max + 1);
  require_too_large([&] { backend.sync_schedule_store().create_schedule(schedule); }, "a schedule");

  CHECK(backend.sync_task_queue().info().messages == 0);
  CHECK(backend.sync_result_store().info().values == 0);
  CHECK(backend.sync_event_log().info().messages == 0);
  CHECK(backend.sync_schedule_store().info().values == 0);

  // A task well inside the limit still goes through whole.
  Task large = make_task();
  large.args = json::array({std::string(max - 4096, 'y')});
  backend.sync_task_queue().enqueue(large);
  auto lease = backend.sync_task_queue().dequeue({"default"}, 5s);
  REQUIRE(lease);
  CHECK(lease->task().args == large.args);
  lease->ack();
  connection_untouched(backend);
}

TEST_CASE("garbage on task subjects is dead-lettered with a clear reason and the next good task still comes",
          "[security][hostile]") {
  Fixture f;
  auto& q = f.backend->sync_task_queue();
  q.ensure();
  std::map<std::string, std::string> expected;  // task id in the subject -> what the reason says
  int n = 0;
  for (const auto& g : garbage()) {
    const std::string id = "g" + std::to_string(n++);
    f.publish_raw("omniq.tasks.default.normal." + id, g.bytes);
    expected[id] = g.name == "nested 20000 deep" ? "nested deeper than" : "cannot decode task";
  }
  f.publish_raw("omniq.tasks.default.high.model", encode(TaskResult::success("model", 1)));
  expected["model"] = "cannot decode task";
  Task elsewhere = make_task("f", "billing");  // a valid task that claims another queue
  f.publish_raw("omniq.tasks.default.normal." + elsewhere.id, encode(elsewhere));
  expected[elsewhere.id] = "does not belong on subject";
  Task out_of_range = make_task();
  out_of_range.priority = 1'000'000;
  f.publish_raw("omniq.tasks.default.urgent." + out_of_range.id, encode(out_of_range));
  expected[out_of_range.id] = "priority";
  f.publish_raw("omniq.tasks.default.delayed.late", "{not json either");  // the delayed lane's path
  expected["late"] = "cannot decode task";

  const Task good = make_task("good");
  q.enqueue(good);
  auto lease = q.dequeue({"default"}, 5s);
  INFO(f.log.text());
  REQUIRE(lease);
  CHECK(lease->task().id == good.id);
  lease->ack();

  std::vector<DeadLetter> letters;
  for (const auto until = Steady::now() + 5s; Steady::now() < until; std::this_thread::sleep_for(50ms)) {
    letters = q.list_dead_letters();
    if (letters.size() >= expected.size()) break;
  }
  REQUIRE(letters.size() == expected.size());
  for (const auto& letter : letters) {
    INFO(letter.task_id << ": " << letter.reason);
    REQUIRE(expected.count(letter.task_id) == 1);
    CHECK_THAT(letter.reason, Catch::Contains(expected[letter.task_id]));
    CHECK_FALSE(letter.task);
  }
  std::uint64_t left = 1;
  for (const auto until = Steady::now() + 5s; left > 0 && Steady::now() < until; std::this_thread::sleep_for(50ms))
    left = q.get_queue_size("default");
  CHECK(left == 0);  // every one removed from the queue once its dead letter was written
  CHECK(f.log.count("dead-lettered") == expected.size());
  connection_untouched(*f.backend);
}

TEST_CASE("garbage in the dead-letter stream is listed as unreadable, never a crash", "[security][hostile]") {
  Fixture f;
  auto& q = f.backend->sync_task_queue();
  q.ensure();
  for (const auto& g : garbage()) f.publish_raw("omniq.dlq.default.x", g.bytes);
  f.publish_raw("omniq.dlq.default.x", R"({"task_id": 5, "dead_lettered_at": "yesterday"})");
  const auto letters = q.list_dead_letters(std::nullopt, 100);
  CHECK(letters.size() == garbage().size() + 1);
  for (const auto& letter : letters) {
    CHECK_FALSE(letter.task);
    CHECK_FALSE(letter.reason.empty());
  }
  try {
    q.requeue_dead_letter("x");
    FAIL("requeued garbage");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::decode_error);
    CHECK_THAT(e.what(), Catch::Contains("holds no decodable task"));
  }
  connection_untouched(*f.backend);
}

TEST_CASE("garbage on event subjects is skipped by queries and followers", "[security][hostile]") {
  Fixture f;
  auto& log = f.backend->sync_event_log();
  const Timestamp start = now();
  const TaskEvent first = events::enqueued("t1", "default");
  log.log_event(first);
  for (const auto& g : garbage()) f.publish_raw("omniq.events.completed.t1", g.bytes);
  f.publish_raw("omniq.events.completed.t1", encode(make_task()));  // another model
  const TaskEvent last = events::completed("t1", 1s, "w");
  log.log_event(last);

  auto ids = [](const std::vector<TaskEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.id);
    return out;
  };
  const std::vector<std::string> both{first.id, last.id};
  CHECK(ids(log.get_events("t1")) == both);
  CHECK(ids(log.get_events()) == both);
  CHECK(ids(log.get_events(std::nullopt, EventType::completed)) == std::vector<std::string>{last.id});
  auto follower = log.follow({.start_time = start});
  std::vector<std::string> followed;
  // Bounded: at most a few more than were logged, within 30 s.
  for (const auto until = std::chrono::steady_clock::now() + 30s;
       followed.size() <= both.size() + 2 && std::chrono::steady_clock::now() < until;) {
    auto e = follower.next(1s);
    if (!e) break;
    followed.push_back(e->id);
  }
  CHECK(followed == both);
  CHECK(f.log.count("skipping the message") >= garbage().size() + 1);
  connection_untouched(*f.backend);
}

TEST_CASE("garbage under result keys: reads name the key, listing and cleanup skip it", "[security][hostile]") {
  Fixture f;
  auto& results = f.backend->sync_result_store();
  results.ensure();
  results.set(TaskResult::success("good", 1));
  int n = 0;
  for (const auto& g : garbage()) f.publish_raw("$KV.omniq_results.bad" + std::to_string(n++), g.bytes);
  f.publish_raw("$KV.omniq_results.model", encode(make_task()));
  f.publish_raw("$KV.omniq_results.mismatch", encode(TaskResult::success("other", 1)));
  auto unreadable = [&](const std::string& key, auto&& op) {
    try {
      op();
      FAIL("read " << key);
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.kind() == errc::decode_error);
      CHECK_THAT(e.what(), Catch::Contains("result " + key + " in bucket omniq_results"));
    }
  };
  for (int i = 0; i < n; ++i) {
    const std::string key = "bad" + std::to_string(i);
    unreadable(key, [&] { results.get(key); });
  }
  unreadable("model", [&] { results.get("model"); });
  unreadable("mismatch", [&] { results.get("mismatch"); });
  unreadable("bad0", [&] { results.wait_for_result("bad0", 2s); });

  const auto listed = results.list();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].task_id == "good");
  CHECK(results.cleanup_expired() == 0);
  CHECK(results.remove("bad0"));  // whatever it holds, it can be removed
  CHECK_FALSE(results.get("bad0"));
  CHECK(f.log.count("skipping a stored value") >= static_cast<std::size_t>(n) + 2);
  connection_untouched(*f.backend);
}

TEST_CASE("garbage under schedule keys: listing, ready schedules and the scheduler skip it, the rest fire",
          "[security][hostile]") {
  Fixture f;
  auto& schedules = f.backend->sync_schedule_store();
  schedules.ensure();
  const Schedule good = Schedule::from_interval(1s, "tick", {}, {}, "beats");
  schedules.create_schedule(good);
  int n = 0;
  for (const auto& g : garbage()) f.publish_raw("$KV.omniq_schedules.bad" + std::to_string(n++), g.bytes);
  f.publish_raw("$KV.omniq_schedules.model", encode(events::enqueued("t", "q")));
  // Decodable but unusable: due, with a cron expression no scheduler can advance, or stored
  // under another schedule's key. Fired, they would enqueue a task on every tick forever.
  Schedule bad_cron = Schedule::from_cron("*/5 * * * *", "never");
  bad_cron.cron_expression = "61 * * * *";
  bad_cron.next_run = now() - 1s;
  f.publish_raw("$KV.omniq_schedules." + bad_cron.id, encode(bad_cron));
  Schedule elsewhere = Schedule::from_interval(1s, "elsewhere");
  elsewhere.next_run = now() - 1s;
  f.publish_raw("$KV.omniq_schedules.not-its-key", encode(elsewhere));

  const auto listed = schedules.list_schedules();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].schedule.id == good.id);
  const auto ready = schedules.get_ready_schedules(now() + 5s);
  REQUIRE(ready.size() == 1);
  CHECK(ready[0].schedule.id == good.id);
  for (const std::string& key : {std::string("bad0"), std::string("model"), bad_cron.id, std::string("not-its-key")}) {
    try {
      schedules.get_schedule(key);
      FAIL("read schedule " << key);
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.kind() == errc::decode_error);
      CHECK_THAT(e.what(), Catch::Contains("schedule " + key + " in bucket omniq_schedules"));
    }
  }
  Scheduler scheduler(*f.backend);
  CHECK(test::run_sync(*f.backend, scheduler.async_tick(now() + 2s)) == 1);
  const auto tasks = f.backend->sync_task_queue().dequeue_batch({"beats"}, 10, 2s);
  CHECK(tasks.size() == 1);
  CHECK(f.backend->sync_task_queue().get_queue_size("default") == 0);  // nothing from the bad ones
  connection_untouched(*f.backend);
}

TEST_CASE("garbage under task-state keys: get_task names the key, list_tasks skips it", "[security][hostile]") {
  Fixture f;
  auto& q = f.backend->sync_task_queue();
  q.ensure();
  const std::string id = q.enqueue(make_task());
  int n = 0;
  for (const auto& g : garbage()) f.publish_raw("$KV.omniq_tasks.bad" + std::to_string(n++), g.bytes);
  for (int i = 0; i < n; ++i) {
    const std::string key = "bad" + std::to_string(i);
    try {
      q.get_task(key);
      FAIL("read the garbage under " << key);
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(e.kind() == errc::decode_error);
      CHECK_THAT(e.what(), Catch::Contains("task state " + key + " in bucket omniq_tasks"));
    }
  }
  const auto tasks = q.list_tasks();
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].id == id);
  connection_untouched(*f.backend);
}
