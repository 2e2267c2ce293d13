// The event log against a real nats-server: queries served by the server, batches, live
// followers (also across a server restart and a lost consumer), cleanup and bad input.
#include <catch2/catch.hpp>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nats/nats.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

struct Fixture : test::ServerFixture {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  explicit Fixture(void (*tune)(Config&) = nullptr,
                   std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> s =
                       std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64))
      : ServerFixture(tune ? std::function<void(Config&)>(tune) : std::function<void(Config&)>(),
                      std::make_shared<spdlog::logger>("events-test", s)),
        sink(std::move(s)) {}
  SyncEventLog& log() { return backend->sync_event_log(); }
  std::string logged() const {
    std::string all;
    for (const auto& line : sink->last_formatted()) all += line;
    return all;
  }
};

std::vector<std::string> ids_of(const std::vector<TaskEvent>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

// Logs `n` events of `task` one by one; returns their ids in order.
std::vector<std::string> log_n(SyncEventLog& log, const std::string& task, int n, EventType type = EventType::enqueued) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    TaskEvent e = TaskEvent::make(type, task);
    e.metadata = {{"i", i}};
    ids.push_back(e.id);
    log.log_event(std::move(e));
  }
  return ids;
}

// A batch of `n` enqueued events of tasks "<prefix>-<i>"; their ids are appended to `ids`.
std::vector<TaskEvent> batch(const std::string& prefix, int n, std::vector<std::string>& ids) {
  std::vector<TaskEvent> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(events::enqueued(prefix + "-" + std::to_string(i), "default"));
    ids.push_back(out.back().id);
  }
  return out;
}

// Reads `n` events from a follower, each within `timeout`; stops early when one does not come.
std::vector<std::string> read_ids(SyncEventFollower& follower, std::size_t n, Duration timeout = 5s) {
  std::vector<std::string> ids;
  while (ids.size() < n) {
    auto e = follower.next(timeout);
    if (!e) break;
    ids.push_back(e->id);
  }
  return ids;
}


// Deletes every consumer of a stream behind omniq's back; returns how many there were.
int delete_all_consumers(const std::string& url, const std::string& stream) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK);
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  jsConsumerNamesList* names = nullptr;
  int count = 0;
  if (js_ConsumerNames(&names, js, stream.c_str(), nullptr, nullptr) == NATS_OK) {
    count = names->Count;
    for (int i = 0; i < names->Count; ++i)
      CHECK(js_DeleteConsumer(js, stream.c_str(), names->List[i], nullptr, nullptr) == NATS_OK);
    jsConsumerNamesList_Destroy(names);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return count;
}

template <class F>
void require_error(F&& f, errc kind, const std::string& text) {
  try {
    f();
    FAIL("no error; expected one containing \"" << text << "\"");
  } catch (const Error& e) {
    CHECK(e.kind() == kind);
    CHECK_THAT(e.what(), Catch::Contains(text));
  }
}

}  // namespace

TEST_CASE("a query by task id returns exactly that task's events, in the order they were logged",
          "[event_log][query]") {
  Fixture f;
  auto& log = f.log();
  std::vector<TaskEvent> logged{events::enqueued("t1", "default"),
                                events::enqueued("t10", "default"),
                                events::dequeued("t1", "default", "worker-7"),
                                events::enqueued("t2", "mail"),
                                events::executing("t1", "worker-7"),
                                events::completed("t10", 1500ms, "worker-3"),
                                events::completed("t1", 250ms, "worker-7")};
  for (const auto& e : logged) log.log_event(e);

  const auto t1 = log.get_events("t1");
  REQUIRE(t1.size() == 4);  // not t10's, although "t1" is its prefix
  CHECK(ids_of(t1) == std::vector<std::string>{logged[0].id, logged[2].id, logged[4].id, logged[6].id});
  for (const auto& e : t1) CHECK(e.task_id == "t1");
  CHECK(t1[0].event_type == EventType::enqueued);
  CHECK(t1[1].event_type == EventType::dequeued);
  CHECK(t1[1].worker_id == "worker-7");
  CHECK(t1[1].queue_name == "default");
  CHECK(t1[3].execution_time == Duration(250ms));
  CHECK(t1[3].timestamp == logged[6].timestamp);
  for (std::size_t i = 1; i < t1.size(); ++i) CHECK(t1[i - 1].timestamp <= t1[i].timestamp);

  CHECK(ids_of(log.get_events("t10")) == std::vector<std::string>{logged[1].id, logged[5].id});
  CHECK(log.get_events("t2").size() == 1);
  CHECK(log.get_events("nobody").empty());
  CHECK(log.info().consumers == 0);  // each query's reader is gone afterwards
}

TEST_CASE("a query by type returns that type for every task, and combines with the task id", "[event_log][query]") {
  Fixture f;
  auto& log = f.log();
  std::vector<TaskEvent> logged{events::enqueued("a", "q"), events::completed("a", 1s, "w"),
                                events::enqueued("b", "q"), events::failed("b", "ValueError", "bad value"),
                                events::completed("c", 2s, "w")};
  for (const auto& e : logged) log.log_event(e);

  CHECK(ids_of(log.get_events(std::nullopt, EventType::completed)) ==
        std::vector<std::string>{logged[1].id, logged[4].id});
  CHECK(ids_of(log.get_events(std::nullopt, EventType::enqueued)) ==
        std::vector<std::string>{logged[0].id, logged[2].id});
  const auto failed = log.get_events(std::nullopt, EventType::failed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].error_type == "ValueError");
  CHECK(failed[0].error_message == "bad value");
  CHECK(ids_of(log.get_events("c", EventType::completed)) == std::vector<std::string>{logged[4].id});
  CHECK(log.get_events("c", EventType::enqueued).empty());
  CHECK(log.get_events().size() == logged.size());
}

TEST_CASE("a query by time returns the events stored from start_time up to, not including, end_time", "[event_log][query]") {
  Fixture f;
  auto& log = f.log();
  const auto before = log_n(log, "t", 3);
  std::this_thread::sleep_for(5ms);
  const Timestamp t1 = now();
  std::this_thread::sleep_for(5ms);
  const auto during = log_n(log, "t", 4);
  std::this_thread::sleep_for(5ms);
  const Timestamp t2 = now();
  std::this_thread::sleep_for(5ms);
  const auto after = log_n(log, "t", 2);

  CHECK(ids_of(log.get_events(std::nullopt, std::nullopt, t1, t2)) == during);
  auto from_t1 = during;
  from_t1.insert(from_t1.end(), after.begin(), after.end());
  CHECK(ids_of(log.get_events(std::nullopt, std::nullopt, t1)) == from_t1);
  auto until_t2 = before;
  until_t2.insert(until_t2.end(), during.begin(), during.end());
  CHECK(ids_of(log.get_events("t", std::nullopt, std::nullopt, t2)) == until_t2);
  CHECK(log.get_events(std::nullopt, std::nullopt, t2, t1).empty());  // an empty window
  CHECK(log.get_events(std::nullopt, std::nullopt, now() + 1h).empty());
}

TEST_CASE("limit and offset page through the matching events in order", "[event_log][query]") {
  Fixture f;
  auto& log = f.log();
  const auto ids = log_n(log, "paged", 10);
  log_n(log, "other", 5);

  CHECK(ids_of(log.get_events("paged", std::nullopt, std::nullopt, std::nullopt, 3, 4)) ==
        std::vector<std::string>(ids.begin() + 4, ids.begin() + 7));
  CHECK(ids_of(log.get_events("paged", std::nullopt, std::nullopt, std::nullopt, 5, 9)) ==
        std::vector<std::string>{ids[9]});
  CHECK(log.get_events("paged", std::nullopt, std::nullopt, std::nullopt, 5, 10).empty());
  CHECK(log.get_events("paged", std::nullopt, std::nullopt, std::nullopt, 0).empty());
  CHECK(log.get_events("paged", std::nullopt, std::nullopt, std::nullopt, 100).size() == 10);
  // Pages put together are the whole, once each.
  std::vector<std::string> pages;
  for (std::size_t offset = 0; offset < 10; offset += 3) {
    const auto page = ids_of(log.get_events("paged", std::nullopt, std::nullopt, std::nullopt, 3, offset));
    pages.insert(pages.end(), page.begin(), page.end());
  }
  CHECK(pages == ids);
}

TEST_CASE("task, type, time window, limit and offset combine", "[event_log][query]") {
  Fixture f;
  auto& log = f.log();
  log_n(log, "job", 3, EventType::retry);
  const Timestamp start = now();
  std::this_thread::sleep_for(5ms);
  log_n(log, "job", 2, EventType::enqueued);
  const auto retries = log_n(log, "job", 5, EventType::retry);
  log_n(log, "other-job", 3, EventType::retry);
  std::this_thread::sleep_for(5ms);
  const Timestamp end = now();
  log_n(log, "job", 3, EventType::retry);

  const auto got = log.get_events("job", EventType::retry, start, end, 2, 1);
  CHECK(ids_of(got) == std::vector<std::string>{retries[1], retries[2]});
  CHECK(ids_of(log.get_events("job", EventType::retry, start, end)) == retries);
}

TEST_CASE("a batch of 5000 events is stored whole, in order", "[event_log][batch]") {
  Fixture f;
  auto& log = f.log();
  std::vector<std::string> ids;
  log.log_events(batch("bulk", 5000, ids));
  CHECK(log.info().messages == 5000);
  const auto all = log.get_events(std::nullopt, std::nullopt, std::nullopt, std::nullopt, 10'000);
  CHECK(ids_of(all) == ids);
  CHECK(ids_of(log.get_events(std::nullopt, EventType::enqueued, std::nullopt, std::nullopt, 2, 4998)) ==
        std::vector<std::string>{ids[4998], ids[4999]});
  CHECK(ids_of(log.get_events("bulk-1234")) == std::vector<std::string>{ids[1234]});
  log.log_events({});  // an empty batch is nothing to do
  CHECK(log.info().messages == 5000);
}

TEST_CASE("a task id or event type that cannot be a subject token is refused before any network call",
          "[event_log][bad_input]") {
  asio::io_context io;  // never connected: a network call would fail with not_connected
  NatsBackend backend(io.get_executor(), Config{});
  auto& log = backend.event_log();
  for (std::string bad : std::vector<std::string>{"a.b", "a*", "a>", "a b", "a\tb", "a\r\nb", "", "caf\xc3\xa9",
                                                  std::string(129, 'x')}) {
    INFO("task id \"" << bad << "\"");
    require_error([&] { test::run(io, log.async_log_event(events::cancelled(bad))); }, errc::invalid_name,
                  "event.task_id");
    require_error([&] { test::run(io, log.async_get_events(bad)); }, errc::invalid_name, "task_id");
    require_error([&] { test::run(io, log.async_follow(EventFilter{.task_id = bad})); }, errc::invalid_name, "task_id");
  }
  TaskEvent odd = events::cancelled("t1");
  odd.event_type = static_cast<EventType>(42);
  require_error([&] { test::run(io, log.async_log_event(odd)); }, errc::invalid_name, "event.event_type 42");
  require_error([&] { test::run(io, log.async_get_events(std::nullopt, static_cast<EventType>(42))); }, errc::invalid_name,
                "event_type");
}

TEST_CASE("a batch with one bad event stores nothing and names the event", "[event_log][bad_input]") {
  Fixture f;
  auto& log = f.log();
  std::vector<std::string> ids;
  auto events = batch("fine", 10, ids);
  events[3].task_id = "not.a.token";
  require_error([&] { log.log_events(events); }, errc::invalid_name, "event 3 of 10");
  require_error([&] { log.log_events(events); }, errc::invalid_name, "nothing was logged");
  TaskEvent huge = events::failed("t1", "Boom", std::string(2 * 1024 * 1024, 'x'));
  require_error([&] { log.log_event(huge); }, errc::payload_too_large, "max_payload");
  CHECK(log.info().messages == 0);
}

TEST_CASE("a malformed message on an event subject is skipped with a warning, queries and followers go on",
          "[event_log][bad_input]") {
  Fixture f;
  auto& log = f.log();
  const Timestamp start = now();
  const TaskEvent first = events::enqueued("t1", "default");
  log.log_event(first);
  test::publish_raw(f.server.url(), "omniq.events.completed.t1", "{this is not json");
  test::publish_raw(f.server.url(), "omniq.events.completed.t1", R"({"schema_version": 1, "task_id": "t1"})");
  // A well-formed event of another task, put on t1's subject: it must not leak into t1's events.
  test::publish_raw(f.server.url(), "omniq.events.completed.t1", encode(events::completed("t2", 1s, "w")));
  const TaskEvent last = events::completed("t1", 1s, "w");
  log.log_event(last);

  CHECK(ids_of(log.get_events("t1")) == std::vector<std::string>{first.id, last.id});
  CHECK(ids_of(log.get_events()) == std::vector<std::string>{first.id, last.id});
  CHECK(log.get_events("t2").empty());
  CHECK(ids_of(log.get_events(std::nullopt, std::nullopt, std::nullopt, std::nullopt, 1, 1)) ==
        std::vector<std::string>{last.id});  // offsets count events, not skipped messages
  const std::string warnings = f.logged();
  CHECK_THAT(warnings, Catch::Contains("skipping the message at sequence 2 on omniq.events.completed.t1"));
  CHECK_THAT(warnings, Catch::Contains("sequence 3"));
  CHECK_THAT(warnings, Catch::Contains("does not belong on this subject"));

  auto follower = log.follow({.start_time = start});
  CHECK(read_ids(follower, 3, 1s) == std::vector<std::string>{first.id, last.id});
}

TEST_CASE("a follower receives the matching events logged after it started, in order, and nothing else",
          "[event_log][follow]") {
  Fixture f;
  auto& log = f.log();
  log_n(log, "t1", 3);  // before the follower: not received
  auto follower = log.follow({.task_id = "t1"});
  auto by_type = log.follow({.event_type = EventType::completed});
  CHECK(follower.filter_subject() == "omniq.events.*.t1");
  CHECK_FALSE(follower.next(100ms));

  std::vector<TaskEvent> logged{events::enqueued("t1", "q"), events::enqueued("t2", "q"),
                                events::executing("t1", "w"), events::completed("t2", 1s, "w"),
                                events::completed("t1", 1s, "w")};
  for (const auto& e : logged) log.log_event(e);
  CHECK(read_ids(follower, 3) == std::vector<std::string>{logged[0].id, logged[2].id, logged[4].id});
  CHECK(read_ids(by_type, 2) == std::vector<std::string>{logged[3].id, logged[4].id});
  CHECK_FALSE(follower.next(200ms));
  CHECK(follower.last_sequence() == 8);

  // A follower also waits: an event logged while it waits arrives at once.
  auto waiting = std::async(std::launch::async, [&] { return follower.next(5s); });
  std::this_thread::sleep_for(100ms);
  const TaskEvent late = events::expired("t1");
  log.log_event(late);
  const auto got = waiting.get();
  REQUIRE(got);
  CHECK(got->id == late.id);
  CHECK(got->event_type == EventType::expired);
}

TEST_CASE("a follower with a start time replays from it, then goes on live", "[event_log][follow]") {
  Fixture f;
  auto& log = f.log();
  log_n(log, "t", 3);
  std::this_thread::sleep_for(5ms);
  const Timestamp start = now();
  auto expected = log_n(log, "t", 4);
  auto follower = log.follow({.start_time = start});
  CHECK(read_ids(follower, 4) == expected);
  const auto more = log_n(log, "t", 2);
  CHECK(read_ids(follower, 2) == more);
  CHECK_FALSE(follower.next(100ms));
  // A poll (no timeout) asks the server once, or takes what the long poll the last call left
  // in flight received; it never waits. Polled until the event is there (for at most 5 s: 50
  // polls with no pause could all end before a busy machine delivered it).
  const auto polled = log_n(log, "t", 1);
  std::optional<TaskEvent> got;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!got && std::chrono::steady_clock::now() < until) {
    const auto asked = std::chrono::steady_clock::now();
    got = follower.next(Duration::zero());
    CHECK(std::chrono::steady_clock::now() - asked < 2s);  // a poll does not wait
    if (!got) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(got);
  CHECK(got->id == polled[0]);
}

TEST_CASE("a follower survives a server restart without a gap or a duplicate", "[event_log][follow][restart]") {
  Fixture f([](Config& c) {
    c.reconnect_time_wait = 100ms;
    c.max_reconnect_attempts = -1;
    c.request_timeout = 1000ms;
  });
  auto& log = f.log();
  log.ensure();
  auto follower = log.follow();
  std::vector<std::string> expected;
  auto wait_connected = [&] {
    const auto until = Steady::now() + 10s;
    while (!f.backend->is_connected() && Steady::now() < until) std::this_thread::sleep_for(20ms);
    REQUIRE(f.backend->is_connected());
  };

  // 1. A restart while the follower holds unread events and more wait in the stream.
  log.log_events(batch("a", 10, expected));
  std::vector<std::string> seen = read_ids(follower, 5);
  REQUIRE(seen.size() == 5);
  log.log_events(batch("b", 10, expected));
  f.server.stop();
  f.server.restart();
  wait_connected();
  log.log_events(batch("c", 10, expected));
  auto more = read_ids(follower, 25);
  seen.insert(seen.end(), more.begin(), more.end());
  CHECK(seen == expected);

  // 2. A restart while the follower waits in a pull, which the restart loses.
  auto waiting = std::async(std::launch::async, [&] { return read_ids(follower, 10, 8s); });
  std::this_thread::sleep_for(300ms);
  f.server.stop();
  f.server.restart();
  wait_connected();
  std::vector<std::string> after;
  log.log_events(batch("d", 10, after));
  CHECK(waiting.get() == after);
  CHECK_FALSE(follower.next(300ms));  // nothing twice
  expected.insert(expected.end(), after.begin(), after.end());
  CHECK(ids_of(log.get_events(std::nullopt, std::nullopt, std::nullopt, std::nullopt, 100)) == expected);
}

TEST_CASE("a follower whose consumer disappeared resumes after the last event it received", "[event_log][follow]") {
  Fixture f;
  auto& log = f.log();
  auto follower = log.follow({.task_id = "t"});
  const auto first = log_n(log, "t", 3);
  CHECK(read_ids(follower, 3) == first);
  CHECK(delete_all_consumers(f.server.url(), "OMNIQ_EVENTS") == 1);
  const auto second = log_n(log, "t", 3);
  CHECK(read_ids(follower, 3) == second);
  CHECK_FALSE(follower.next(100ms));
}

TEST_CASE("closing a follower removes its consumer, next() after close is an error", "[event_log][follow]") {
  Fixture f;
  auto& log = f.log();
  auto follower = log.follow();
  CHECK(log.info().consumers == 1);
  follower.close();
  CHECK(log.info().consumers == 0);
  follower.close();  // idempotent
  require_error([&] { follower.next(10ms); }, errc::closed, "closed");
  {
    auto dropped = log.follow();
    CHECK(log.info().consumers == 1);
  }  // destroyed without close: it does not block; the server drops its consumer when idle
}

TEST_CASE("cleanup removes exactly the events stored before the given time", "[event_log][cleanup]") {
  Fixture f;
  auto& log = f.log();
  CHECK(log.cleanup_old_events(now()) == 0);  // nothing stored yet
  std::vector<std::string> old_ids, new_ids;
  log.log_events(batch("old", 6, old_ids));
  std::this_thread::sleep_for(5ms);
  const Timestamp cut = now();
  std::this_thread::sleep_for(5ms);
  log.log_events(batch("new", 4, new_ids));

  CHECK(log.cleanup_old_events(cut - 1h) == 0);
  CHECK(log.cleanup_old_events(cut) == 6);
  CHECK(ids_of(log.get_events()) == new_ids);
  CHECK(log.info().messages == 4);
  CHECK(log.cleanup_old_events(cut) == 0);
  CHECK(log.cleanup_old_events(now() + 1h) == 4);
  CHECK(log.get_events().empty());
  const auto later = log_n(log, "t", 1);  // the log goes on after a purge
  CHECK(ids_of(log.get_events()) == later);
}

TEST_CASE("schedule events use the schedule id as their token, encoded when it is not a safe token",
          "[event_log][schedule]") {
  CHECK(events::schedule_token("nightly_report-1") == "nightly_report-1");
  CHECK(events::schedule_token("reports.daily/eu=1") == "reports_2Edaily_2Feu_3D1");
  const std::string long_id(200, 'k');
  const std::string long_token = events::schedule_token(long_id + ".x");
  CHECK(long_token.size() == 128);
  CHECK(long_token != events::schedule_token(long_id + ".y"));

  Fixture f;
  auto& log = f.log();
  const std::vector<std::string> ids{"nightly", "reports.daily/eu=1", long_id + ".x"};
  for (const auto& id : ids) {
    log.log_event(events::schedule_paused(id));
    log.log_event(events::schedule_resumed(id));
  }
  for (const auto& id : ids) {
    const auto got = log.get_events(events::schedule_token(id));
    REQUIRE(got.size() == 2);
    CHECK(got[0].event_type == EventType::schedule_paused);
    CHECK(got[1].event_type == EventType::schedule_resumed);
    CHECK(got[0].schedule_id == id);
    CHECK(got[0].task_id == events::schedule_token(id));
  }
  CHECK(log.get_events(std::nullopt, EventType::schedule_paused).size() == 3);
}

TEST_CASE("the factories fill each event type's fields, and they survive the log", "[event_log][factories]") {
  Fixture f;
  auto& log = f.log();
  std::vector<TaskEvent> made{events::enqueued("t", "q"),
                              events::dequeued("t", "q", "w1"),
                              events::executing("t", "w1"),
                              events::completed("t", 1500ms, "w1"),
                              events::failed("t", "KeyError", "missing 'x'"),
                              events::retry("t", 2, 4s),
                              events::cancelled("t"),
                              events::expired("t")};
  log.log_events(made);
  const auto got = log.get_events("t");
  REQUIRE(got.size() == made.size());
  const std::vector<EventType> types{EventType::enqueued,  EventType::dequeued, EventType::executing,
                                     EventType::completed, EventType::failed,   EventType::retry,
                                     EventType::cancelled, EventType::expired};
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].event_type == types[i]);
    CHECK(got[i].id == made[i].id);
    CHECK(got[i].message == made[i].message);
  }
  CHECK(got[0].queue_name == "q");
  CHECK(got[1].worker_id == "w1");
  CHECK(got[1].queue_name == "q");
  CHECK(got[2].worker_id == "w1");
  CHECK(got[3].execution_time == Duration(1500ms));
  CHECK(got[3].message == "completed in 1.5 s");
  CHECK(got[4].error_type == "KeyError");
  CHECK(got[4].error_message == "missing 'x'");
  CHECK(got[5].details.at("attempt") == 2);
  CHECK(got[5].details.at("delay") == 4.0);
}

TEST_CASE("the coroutine API: a follower in one coroutine receives what another logs", "[event_log][async]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  std::vector<std::string> sent;
  auto run = [&]() -> asio::awaitable<std::vector<std::string>> {
    co_await backend.async_connect();
    auto& log = backend.event_log();
    EventFollower follower = co_await log.async_follow({.event_type = EventType::completed});
    for (int i = 0; i < 3; ++i) sent.push_back(events::completed("t" + std::to_string(i), 1s, "w").id);
    auto producer = [&]() -> asio::awaitable<void> {
      for (int i = 0; i < 3; ++i) {
        TaskEvent e = events::completed("t" + std::to_string(i), 1s, "w");
        e.id = sent[static_cast<std::size_t>(i)];
        co_await log.async_log_event(std::move(e));
      }
    };
    asio::co_spawn(io, producer(), asio::detached);
    std::vector<std::string> got;
    while (got.size() < 3) {
      auto e = co_await follower.async_next(5s);
      if (!e) break;
      got.push_back(e->id);
    }
    co_await follower.async_close();
    co_await backend.async_close();
    co_return got;
  };
  const auto got = test::run(io, run());
  CHECK(got.size() == 3);
  CHECK(got == sent);
}
