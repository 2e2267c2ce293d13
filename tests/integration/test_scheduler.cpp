// The scheduler against a real nats-server: several instances fire each occurrence once;
// missed occurrences follow the documented policy; schedules end and pause as they should.
#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "omniq/backend.hpp"
#include "omniq/event_log.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/scheduler.hpp"
#include "omniq/task_queue.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;

namespace {

// Every task waiting in `queue`, acked as it is read.
std::vector<Task> drain(NatsBackend& backend, const std::string& queue) {
  std::vector<Task> out;
  for (;;) {
    auto batch = backend.sync_task_queue().dequeue_batch({queue}, 256, 300ms);
    if (batch.empty()) return out;
    for (auto& lease : batch) {
      out.push_back(lease.task());
      lease.ack();
    }
  }
}

}  // namespace

TEST_CASE("three schedulers over a 1 s interval schedule enqueue each occurrence exactly once", "[scheduler]") {
  LocalServer server;
  NatsBackend admin(test::config_for(server));
  ConnectionScope scope(admin);
  Schedule every_second = Schedule::from_interval(1s, "heartbeat", {}, {}, "beats");
  admin.sync_schedule_store().create_schedule(every_second);

  std::vector<std::unique_ptr<NatsBackend>> backends;
  std::vector<std::unique_ptr<Scheduler>> schedulers;
  std::vector<std::future<void>> running;
  for (int i = 0; i < 3; ++i) {
    backends.push_back(std::make_unique<NatsBackend>(test::config_for(server)));
    backends.back()->connect_sync();
    schedulers.push_back(std::make_unique<Scheduler>(*backends.back(), SchedulerOptions{.poll_interval = 100ms}));
    running.push_back(asio::co_spawn(backends.back()->get_executor(), schedulers.back()->async_run(), asio::use_future));
  }
  std::this_thread::sleep_for(5500ms);
  for (auto& s : schedulers) s->stop();
  for (auto& r : running) r.get();

  const auto record = admin.sync_schedule_store().get_schedule(every_second.id);
  REQUIRE(record);
  const std::vector<Task> tasks = drain(admin, "beats");
  std::set<std::string> occurrences;
  for (const auto& t : tasks) occurrences.insert(t.metadata.at("occurrence").get<std::string>());
  CHECK(tasks.size() == occurrences.size());                          // no occurrence twice
  CHECK(tasks.size() == static_cast<std::size_t>(record->schedule.run_count));  // none lost
  CHECK(tasks.size() >= 4);
  CHECK(tasks.size() <= 6);
  // Anchored to the schedule: consecutive occurrences are exactly one interval apart.
  std::vector<Timestamp> times;
  for (const auto& o : occurrences) times.push_back(parse_timestamp(o));
  for (std::size_t i = 1; i < times.size(); ++i) CHECK(times[i] - times[i - 1] == 1s);
  CHECK(times.front() == *every_second.next_run);
  // One enqueued event per occurrence, carrying the schedule id.
  const auto events = admin.sync_event_log().get_events(std::nullopt, EventType::enqueued);
  std::size_t from_schedule = 0;
  for (const auto& e : events)
    if (e.schedule_id == every_second.id) ++from_schedule;
  CHECK(from_schedule == tasks.size());
  for (auto& b : backends) b->close_sync();
}

TEST_CASE("after downtime, missed occurrences are fired once (fire_once) or skipped (skip)", "[scheduler][missed]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  auto& store = backend.sync_schedule_store();
  const Timestamp t0 = now();

  Schedule a = Schedule::from_interval(1s, "a", {}, {}, "missed");
  a.next_run = t0 - 60s;  // the scheduler was down for a minute: 60 occurrences missed
  Schedule b = Schedule::from_interval(1s, "b", {}, {}, "missed");
  b.next_run = t0 - 60s;
  store.create_schedule(a);
  store.create_schedule(b);

  Scheduler fire_once(backend, SchedulerOptions{.missed = MissedPolicy::fire_once, .late_after = 5s});
  Scheduler skip(backend, SchedulerOptions{.missed = MissedPolicy::skip, .late_after = 5s});
  // Each policy handles one schedule: pause the other while it ticks.
  store.pause_schedule(b.id);
  CHECK(test::run_sync(backend, fire_once.async_tick(t0)) == 1);
  store.resume_schedule(b.id);
  store.pause_schedule(a.id);
  // Resuming recomputed b's next run from now; put it back in the past to model downtime.
  auto rb = store.get_schedule(b.id);
  rb->schedule.next_run = t0 - 60s;
  REQUIRE(store.update_schedule(rb->schedule, rb->revision));
  CHECK(test::run_sync(backend, skip.async_tick(t0)) == 0);

  const auto tasks = drain(backend, "missed");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].func == "a");
  const auto ra = store.get_schedule(a.id);
  CHECK(ra->schedule.run_count == 1);
  const auto rb2 = store.get_schedule(b.id);
  CHECK(rb2->schedule.run_count == 0);
  CHECK(*rb2->schedule.next_run > t0);  // continues after now
  CHECK(*ra->schedule.next_run > t0);
}

TEST_CASE("max_runs and one-shot timestamps end a schedule, a paused schedule does not fire", "[scheduler]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  auto& store = backend.sync_schedule_store();
  Scheduler scheduler(backend);

  Schedule twice = Schedule::from_interval(1s, "twice", {}, {}, "ends");
  twice.max_runs = 2;
  Schedule once = Schedule::from_timestamp(now() + 1s, "once", {}, {}, "ends");
  Schedule paused = Schedule::from_interval(1s, "paused", {}, {}, "ends");
  store.create_schedule(twice);
  store.create_schedule(once);
  store.create_schedule(paused);
  store.pause_schedule(paused.id);

  const Timestamp start = now();
  for (int i = 1; i <= 4; ++i) test::run_sync(backend, scheduler.async_tick(start + i * 1s + 10ms));
  std::multiset<std::string> fired;
  for (const auto& t : drain(backend, "ends")) fired.insert(t.func);
  CHECK(fired.count("twice") == 2);
  CHECK(fired.count("once") == 1);
  CHECK(fired.count("paused") == 0);
  CHECK(store.get_schedule(twice.id)->schedule.status == ScheduleStatus::completed);
  CHECK(store.get_schedule(once.id)->schedule.status == ScheduleStatus::completed);
}

TEST_CASE("a cron schedule in an IANA zone fires at its local time", "[scheduler][cron]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  Schedule s = Schedule::from_cron("30 9 * * *", "standup", {}, {}, "cron", "America/New_York");
  backend.sync_schedule_store().create_schedule(s);
  Scheduler scheduler(backend, SchedulerOptions{.late_after = 24h});
  const Timestamp due = *s.next_run;
  CHECK(test::run_sync(backend, scheduler.async_tick(due - 1s)) == 0);
  CHECK(test::run_sync(backend, scheduler.async_tick(due)) == 1);
  CHECK(test::run_sync(backend, scheduler.async_tick(due)) == 0);  // the same occurrence never twice
  const auto tasks = drain(backend, "cron");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].id == occurrence_task_id(s.id, due));
  const auto next = backend.sync_schedule_store().get_schedule(s.id)->schedule.next_run;
  CHECK(*next - due >= 23h);  // tomorrow at 09:30 New York time (23 to 25 h around DST)
  CHECK(*next - due <= 25h);
}

TEST_CASE("a stored schedule with an interval under 1 s is skipped with a warning naming it, the others fire",
          "[scheduler]") {
  test::CapturedLog log("scheduler");
  test::ServerFixture f({}, log.logger);
  auto& store = f.backend->sync_schedule_store();
  Schedule good = Schedule::from_interval(1h, "good", {}, {}, "subsecond");
  good.next_run = now() - 1s;  // due once, then in an hour
  store.create_schedule(good);
  // As an older version or another language may have stored it: every 0.5 s, due now. Fired,
  // two of its occurrences a second would share a task id and one would be dropped.
  Schedule fast = Schedule::from_interval(1s, "fast", {}, {}, "subsecond");
  fast.interval = 500ms;
  fast.next_run = now() - 1s;
  try {
    store.create_schedule(fast);
    FAIL("stored a 500 ms interval");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_argument);
  }
  test::publish_raw(f.server.url(), "$KV.omniq_schedules." + fast.id, encode(fast));

  const std::string named = "schedule " + fast.id + " in bucket omniq_schedules cannot be read: " +
                            "schedule.interval must be at least 1 s, got 500000 us";
  const auto listed = store.list_schedules();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].schedule.id == good.id);
  try {
    store.get_schedule(fast.id);
    FAIL("read a 500 ms interval");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::decode_error);
    CHECK_THAT(e.what(), Catch::StartsWith(named));
  }
  Scheduler scheduler(*f.backend);
  CHECK(test::run_sync(*f.backend, scheduler.async_tick(now())) == 1);
  CHECK(test::run_sync(*f.backend, scheduler.async_tick(now())) == 0);
  const auto tasks = drain(*f.backend, "subsecond");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].func == "good");
  CHECK(log.count("skipping a stored value: " + named) >= 3);  // the listing and both ticks

  // Stored again with a valid interval, it is read and fired.
  fast.interval = 1s;
  store.save_schedule(fast);
  CHECK(test::run_sync(*f.backend, scheduler.async_tick(now())) == 1);
  CHECK(drain(*f.backend, "subsecond").at(0).func == "fast");
}
