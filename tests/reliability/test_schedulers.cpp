// Scheduler processes under faults (issue 14): several schedulers, in separate processes, over
// one schedule, one of them killed midway; every occurrence is enqueued exactly once.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/scheduler.hpp"

using namespace omniq;
using namespace omniq::test;

namespace {

// Short enough that two schedulers often see the same occurrence due before either has
// advanced it, so a missing deduplication or compare-and-swap would show as a duplicate.
constexpr std::chrono::milliseconds kPoll{25};
constexpr int kOccurrences = 22;  // at least this many, one a second
constexpr int kKillAt = 10;       // the occurrence a scheduler is killed at

// Every task waiting in `queue`, acked as it is read (at most 100 batches).
std::vector<Task> drain(NatsBackend& backend, const std::string& queue) {
  std::vector<Task> out;
  for (int batch_no = 0; batch_no < 100; ++batch_no) {
    auto batch = backend.sync_task_queue().dequeue_batch({queue}, 256, 500ms);
    if (batch.empty()) break;
    for (auto& lease : batch) {
      out.push_back(lease.task());
      lease.ack();
    }
  }
  return out;
}

// One line for each id of `seen` that is not in `expected` or was seen more than once, and
// for each id of `expected` not seen: empty when every expected id was seen exactly once.
std::string mismatches(const std::vector<std::string>& expected, const std::map<std::string, int>& seen) {
  std::string out;
  const std::set<std::string> wanted(expected.begin(), expected.end());
  for (const auto& [id, n] : seen) {
    if (!wanted.count(id))
      out += "  " + id + " (not an occurrence)\n";
    else if (n != 1)
      out += "  " + id + " (" + std::to_string(n) + " times)\n";
  }
  for (const auto& id : expected)
    if (!seen.count(id)) out += "  " + id + " (missing)\n";
  return out;
}

}  // namespace

TEST_CASE("three scheduler processes over a 1 s schedule, one killed midway: each occurrence enqueued once",
          "[reliability][scheduler]") {
  LocalServer server;
  TempDir dir;
  const Config config = fault_config({server.url()});
  NatsBackend backend(config);
  ConnectionScope scope(backend);
  Fleet fleet(config, dir.path);
  auto& store = backend.sync_schedule_store();

  std::vector<Process*> schedulers;
  for (int i = 1; i <= 3; ++i) schedulers.push_back(&fleet.start_scheduler("s" + std::to_string(i), kPoll));
  const bool ready = wait_until(
      [&] {
        for (Process* p : schedulers)
          if (p->output().find("scheduling") == std::string::npos) return false;
        return true;
      },
      20s);
  if (!ready) FAIL("the schedulers did not start; their logs end with:\n" << fleet.log_tails());

  const Schedule beat = Schedule::from_interval(1s, "beat", {}, {}, "beats");
  store.create_schedule(beat);
  const Timestamp first = *beat.next_run;
  const auto runs = [&] {
    const auto record = store.get_schedule(beat.id);
    return record ? record->schedule.run_count : 0;
  };

  // SIGKILL as an occurrence falls due, when a scheduler may hold it between its enqueue
  // and its compare-and-swap: another one must take the occurrence over, without a duplicate.
  REQUIRE(wait_until([&] { return runs() >= kKillAt; }, 30s));
  std::this_thread::sleep_until(first + kKillAt * 1s + 5ms);
  schedulers[0]->kill9();
  CHECK(schedulers[0]->state() == "killed by signal 9");
  if (!wait_until([&] { return runs() >= kOccurrences; }, 30s))
    FAIL("the schedule stopped at run " << runs() << "; the schedulers' logs end with:\n"
                                        << fleet.log_tails());
  if (!fleet.stop_all()) FAIL_CHECK("a scheduler did not exit 0 on SIGTERM; logs:\n" << fleet.log_tails());

  // The schedulers are stopped, each after finishing its tick: the record is final.
  const auto record = store.get_schedule(beat.id);
  REQUIRE(record);
  const int n = record->schedule.run_count;
  REQUIRE(n >= kOccurrences);
  CHECK(record->schedule.last_run == first + (n - 1) * 1s);  // anchored: one a second, none skipped
  // The occurrence ids are deterministic: first, first + 1 s, ... up to the last one run.
  std::vector<std::string> expected;
  for (int k = 0; k < n; ++k) expected.push_back(occurrence_task_id(beat.id, first + k * 1s));
  REQUIRE(std::set<std::string>(expected.begin(), expected.end()).size() == expected.size());

  // Every message the tasks stream stored, removed or not: a duplicate enqueue would be one more.
  CHECK(stream_last_seq(server.url(), config.tasks_stream.name) == static_cast<std::uint64_t>(n));
  std::map<std::string, int> tasks;
  for (const auto& t : drain(backend, "beats")) ++tasks[t.id];
  {
    INFO("tasks not enqueued exactly once:\n"
         << mismatches(expected, tasks) << "logs:\n"
         << fleet.log_tails(40));
    CHECK(mismatches(expected, tasks).empty());
  }

  // The winner of each occurrence logs one enqueued event after its compare-and-swap, so two
  // would mean two schedulers both advanced it. The killed scheduler may have died between
  // its compare-and-swap and its event: at most one event is missing.
  std::map<std::string, int> events;
  for (const auto& e : backend.sync_event_log().get_events(std::nullopt, EventType::enqueued, std::nullopt,
                                                           std::nullopt, 1000))
    if (e.schedule_id == beat.id) ++events[e.task_id];
  std::string extra;
  for (const auto& [id, count] : events)
    if (count > 1 || !tasks.count(id)) extra += "  " + id + " (" + std::to_string(count) + " events)\n";
  INFO("enqueued events not one per occurrence:\n" << extra);
  CHECK(extra.empty());
  CHECK(events.size() + 1 >= expected.size());
}
