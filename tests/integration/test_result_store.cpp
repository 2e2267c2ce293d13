// The result store against a real nats-server: every operation, TTLs, the watch behind
// wait_for_result, listing in one scan, and bad input.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include <nats/nats.h>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "omniq/result_store.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

struct Fixture : test::ServerFixture {
  using ServerFixture::ServerFixture;
  SyncResultStore& results() { return backend->sync_result_store(); }
};


}  // namespace

TEST_CASE("a result is stored, read back with every field, listed and deleted", "[result_store]") {
  Fixture f;
  auto& store = f.results();
  TaskResult r = TaskResult::success("task-1", {{"sum", 42}});
  r.started_at = now() - 2s;
  r.worker_id = "worker-7";
  r.execution_time = 1500ms;
  r.metadata = {{"attempt", 2}};
  CHECK(store.set(r) > 0);
  auto back = store.get("task-1");
  REQUIRE(back);
  CHECK(back->task_id == "task-1");
  CHECK(back->status == ResultStatus::success);
  CHECK(back->result == r.result);
  CHECK(back->started_at == r.started_at);
  CHECK(back->completed_at == r.completed_at);
  CHECK(back->worker_id == r.worker_id);
  CHECK(back->execution_time == r.execution_time);
  CHECK(back->metadata == r.metadata);
  CHECK_FALSE(store.get("task-2"));

  store.set(TaskResult::failure("task-2", "ValueError", "bad input"));
  store.set(TaskResult::success("task-3", 3));
  CHECK(store.list().size() == 3);
  auto errors = store.list(ResultStatus::error);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].error == "bad input");
  CHECK(errors[0].error_type == "ValueError");
  auto page = store.list(ResultStatus::success, 1, 1);
  REQUIRE(page.size() == 1);
  CHECK(page[0].task_id == "task-3");

  CHECK(store.remove("task-1"));
  CHECK_FALSE(store.get("task-1"));
  CHECK_FALSE(store.remove("task-1"));
  CHECK(store.list().size() == 2);
}

TEST_CASE("results expire with the bucket TTL, and a result's own ttl is honoured on read", "[result_store][ttl]") {
  Fixture f([](Config& c) { c.results_bucket.ttl = 1s; });
  auto& store = f.results();
  store.set(TaskResult::success("short", 1));
  CHECK(store.get("short"));
  const auto deadline = Steady::now() + 5s;
  while (store.get("short") && Steady::now() < deadline) std::this_thread::sleep_for(100ms);
  CHECK_FALSE(store.get("short"));  // gone from the bucket by the server's TTL

  Fixture g;
  TaskResult own = TaskResult::success("own-ttl", 1);
  own.ttl = 100ms;
  g.results().set(own);
  g.results().set(TaskResult::success("kept", 2));
  std::this_thread::sleep_for(200ms);
  CHECK_FALSE(g.results().get("own-ttl"));
  CHECK(g.results().list().size() == 1);
  CHECK(g.results().cleanup_expired() == 1);
  CHECK(g.results().get("kept"));
}

TEST_CASE("wait_for_result wakes when the result arrives and times out when none does", "[result_store][watch]") {
  Fixture f;
  auto& store = f.results();
  SECTION("wakes on the change, within ~100 ms of the write") {
    std::atomic<Steady::rep> writing_at{0};  // when the writer's set() began
    std::thread writer([&] {
      NatsBackend other(f.config);
      ConnectionScope scope(other);
      std::this_thread::sleep_for(300ms);  // the waiter is waiting by then
      writing_at = Steady::now().time_since_epoch().count();
      other.sync_result_store().set(TaskResult::success("later", "done"));
    });
    const auto started = Steady::now();
    auto got = store.wait_for_result("later", 10s);
    const auto woke = Steady::now();
    writer.join();
    REQUIRE(got);
    CHECK(got->result == "done");
    const auto written = Steady::time_point(Steady::duration(writing_at.load()));
    CHECK(woke - started >= 250ms);  // it waited for the write
    // Pushed to the waiter, not found by a poll: a poll every second would miss this.
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(woke - written).count() < 150);
  }
  SECTION("returns at once when the result is already there") {
    store.set(TaskResult::success("ready", 1));
    const auto started = Steady::now();
    CHECK(store.wait_for_result("ready", 10s));
    CHECK(Steady::now() - started < 2s);
  }
  SECTION("times out with nothing when no result comes") {
    const auto started = Steady::now();
    CHECK_FALSE(store.wait_for_result("never", 500ms));
    const auto waited = Steady::now() - started;
    CHECK(waited >= 450ms);
    CHECK(waited < 3s);
  }
}

TEST_CASE("bad result input is refused clearly, a corrupt value from another client is skipped",
          "[result_store][bad_input]") {
  Fixture f([](Config& c) { c.results_bucket.max_value_size = 1024; });
  auto& store = f.results();
  try {
    store.set(TaskResult::success("a.b", 1));
    FAIL("accepted a task id with a dot");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_name);
    CHECK_THAT(e.what(), Catch::Contains("task_id"));
  }
  try {
    store.set(TaskResult::success("big", std::string(2000, 'x')));
    FAIL("accepted a value over max_value_size");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::payload_too_large);
    CHECK_THAT(e.what(), Catch::Contains("max_value_size of 1024"));
  }
  store.set(TaskResult::success("good-1", 1));
  test::publish_raw(f.server.url(), "$KV.omniq_results.corrupt", "not a result");
  store.set(TaskResult::success("good-2", 2));
  auto listed = store.list();
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].task_id == "good-1");
  CHECK(listed[1].task_id == "good-2");
  try {
    store.get("corrupt");
    FAIL("decoded a corrupt value");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::decode_error);
  }
}

TEST_CASE("create stores only a first result, update is a compare-and-set, wait_for_result waits past pending",
          "[result_store]") {
  Fixture f;
  auto& store = f.results();
  TaskResult claim{.task_id = "claimed", .status = ResultStatus::pending, .worker_id = "w1"};
  const auto first = store.create(claim);
  REQUIRE(first);
  CHECK_FALSE(store.create(claim));  // one exists: nothing stored
  const auto record = store.get_record("claimed");
  REQUIRE(record);
  CHECK(record->revision == *first);
  CHECK(record->result.status == ResultStatus::pending);

  // A waiter started now sees past the pending claim to the outcome.
  auto waiting = std::async(std::launch::async, [&] { return store.wait_for_result("claimed", 10s); });
  std::this_thread::sleep_for(300ms);
  const auto second = store.update(TaskResult::success("claimed", 7), *first);
  REQUIRE(second);
  CHECK_FALSE(store.update(TaskResult::success("claimed", 8), *first));  // stale revision: refused
  const auto got = waiting.get();
  REQUIRE(got);
  CHECK(got->status == ResultStatus::success);
  CHECK(got->result == 7);

  // Only pending so far: wait_for_result times out rather than returning the claim.
  REQUIRE(store.create(TaskResult{.task_id = "running", .status = ResultStatus::pending}));
  const auto start = Steady::now();
  CHECK_FALSE(store.wait_for_result("running", 500ms));
  CHECK(Steady::now() - start >= 400ms);
  // After a delete, create works again.
  CHECK(store.remove("running"));
  CHECK(store.create(TaskResult{.task_id = "running", .status = ResultStatus::pending}));
}
