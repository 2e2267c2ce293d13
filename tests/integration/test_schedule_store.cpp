// The schedule store against a real nats-server: every operation, compare-and-swap races,
// readiness, pause / resume, and bad input.
#include <catch2/catch.hpp>

#include <atomic>
#include <barrier>
#include <thread>

#include <nats/nats.h>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/schedule_store.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;

namespace {
struct Fixture : test::ServerFixture {
  using ServerFixture::ServerFixture;
  SyncScheduleStore& schedules() { return backend->sync_schedule_store(); }
};
}  // namespace

TEST_CASE("schedules are created once, read, updated, listed and deleted", "[schedule_store]") {
  Fixture f;
  auto& store = f.schedules();
  Schedule nightly = Schedule::from_cron("0 3 * * *", "reports.nightly", {"all"}, {{"fmt", "pdf"}}, "reports",
                                         "Europe/Berlin");
  Schedule every = Schedule::from_interval(10s, "health.ping");
  const auto rev = store.create_schedule(nightly);
  store.create_schedule(every);
  try {
    store.create_schedule(nightly);
    FAIL("created an existing schedule twice");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::already_exists);
    CHECK_THAT(e.what(), Catch::Contains(nightly.id));
  }
  auto got = store.get_schedule(nightly.id);
  REQUIRE(got);
  CHECK(got->revision == rev);
  CHECK(got->schedule.cron_expression == "0 3 * * *");
  CHECK(got->schedule.time_zone == "Europe/Berlin");
  CHECK(got->schedule.next_run == nightly.next_run);
  CHECK(got->schedule.kwargs == nightly.kwargs);

  Schedule changed = got->schedule;
  changed.max_runs = 10;
  auto rev2 = store.update_schedule(changed, got->revision);
  REQUIRE(rev2);
  CHECK_FALSE(store.update_schedule(changed, got->revision));  // stale revision: a value, not an error
  CHECK(store.get_schedule(nightly.id)->schedule.max_runs == 10);

  CHECK(store.list_schedules().size() == 2);
  CHECK(store.save_schedule(every) > 0);  // upsert
  CHECK(store.delete_schedule(every.id));
  CHECK_FALSE(store.delete_schedule(every.id));
  CHECK_FALSE(store.get_schedule(every.id));
  CHECK(store.list_schedules().size() == 1);
  // A deleted id can be created again.
  CHECK(store.create_schedule(every) > 0);
}

TEST_CASE("two writers updating a schedule at the same revision: exactly one wins, 100 times",
          "[schedule_store][cas]") {
  Fixture f;
  NatsBackend second(f.config);
  ConnectionScope scope(second);
  Schedule s = Schedule::from_interval(1s, "race");
  f.schedules().create_schedule(s);
  int single_winner = 0;
  for (int trial = 0; trial < 100; ++trial) {
    auto record = f.schedules().get_schedule(s.id);
    REQUIRE(record);
    std::atomic<int> wins{0};
    std::barrier start(2);
    auto writer = [&](SyncScheduleStore& store, int who) {
      Schedule mine = record->schedule;
      mine.metadata["writer"] = who;
      start.arrive_and_wait();
      if (store.update_schedule(mine, record->revision)) ++wins;
    };
    std::thread a(writer, std::ref(f.schedules()), 1);
    std::thread b(writer, std::ref(second.sync_schedule_store()), 2);
    a.join();
    b.join();
    if (wins == 1) ++single_winner;
  }
  CHECK(single_winner == 100);
}

TEST_CASE("ready schedules are the active ones that are due, pause and resume change that", "[schedule_store]") {
  Fixture f;
  auto& store = f.schedules();
  Schedule due = Schedule::from_timestamp(now() - 1s, "due");
  Schedule later = Schedule::from_timestamp(now() + 1h, "later");
  Schedule interval = Schedule::from_interval(1s, "tick");
  store.create_schedule(due);
  store.create_schedule(later);
  store.create_schedule(interval);
  auto ready = store.get_ready_schedules(now() + 2s);
  REQUIRE(ready.size() == 2);
  CHECK(ready[0].schedule.id == due.id);  // earliest first
  CHECK(ready[1].schedule.id == interval.id);

  CHECK(store.pause_schedule(interval.id));
  CHECK_FALSE(store.pause_schedule(interval.id));  // already paused
  CHECK(store.get_schedule(interval.id)->schedule.status == ScheduleStatus::paused);
  CHECK(store.get_ready_schedules(now() + 2s).size() == 1);
  std::this_thread::sleep_for(1100ms);
  CHECK(store.resume_schedule(interval.id));
  auto resumed = store.get_schedule(interval.id);
  REQUIRE(resumed);
  CHECK(resumed->schedule.status == ScheduleStatus::active);
  CHECK(*resumed->schedule.next_run > now());  // recomputed from the resume, not the past
  CHECK_FALSE(store.pause_schedule("no-such-schedule"));

  auto events = f.backend->sync_event_log().get_events(std::nullopt, EventType::schedule_paused);
  CHECK(events.size() == 1);
  CHECK(f.backend->sync_event_log().get_events(std::nullopt, EventType::schedule_resumed).size() == 1);
}

TEST_CASE("bad schedule input gets clear errors, a corrupt value is skipped and the rest listed",
          "[schedule_store][bad_input]") {
  Fixture f([](Config& c) { c.schedules_bucket.max_value_size = 512; });
  auto& store = f.schedules();
  CHECK_THROWS_MATCHES(Schedule::from_cron("61 * * * *", "f"), Error,
                       Catch::Matchers::Predicate<Error>([](const Error& e) {
                         return e.kind() == errc::invalid_cron && std::string(e.what()).find("minute") != std::string::npos;
                       }));
  CHECK_THROWS_MATCHES(Schedule::from_cron("0 * * * *", "f", {}, {}, "default", "Mars/Base"), Error,
                       Catch::Matchers::Predicate<Error>([](const Error& e) {
                         return e.kind() == errc::invalid_cron && std::string(e.what()).find("Mars/Base") != std::string::npos;
                       }));
  Schedule bad_key = Schedule::from_interval(1s, "f");
  bad_key.id = "has space";
  try {
    store.create_schedule(bad_key);
    FAIL("accepted a key with a space");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_name);
  }
  Schedule big = Schedule::from_interval(1s, "f", {std::string(600, 'x')});
  try {
    store.create_schedule(big);
    FAIL("accepted a value over max_value_size");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::payload_too_large);
    CHECK_THAT(e.what(), Catch::Contains("max_value_size of 512"));
  }
  store.create_schedule(Schedule::from_interval(1s, "ok-1"));
  test::publish_raw(f.server.url(), "$KV.omniq_schedules.corrupt", "{\"id\": 5}");
  store.create_schedule(Schedule::from_interval(1s, "ok-2"));
  auto listed = store.list_schedules();
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].schedule.func == "ok-1");
  CHECK(listed[1].schedule.func == "ok-2");
}
