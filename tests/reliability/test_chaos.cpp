// Chaos on a 3-node cluster (issue 12's scenario): R3 streams and buckets, two worker processes
// at concurrency 16, short and slow tasks enqueued continuously, and every 5-10 s one fault
// at random: kill -9 of a NATS node (restarted 3-8 s later, never two down), kill -9 of a
// worker, or SIGTERM of a worker (both replaced by a new process). Then: nothing lost, every
// task one final result with the right value and exactly one completed event, re-executions
// only of tasks whose first worker was killed -9, the queue drained within 30 s of the last
// fault. The seed is printed; OMNIQ_CHAOS_SEED replays a run, OMNIQ_CHAOS_SECONDS sets how
// long faults go on (60). tests/run-chaos.sh runs it many times.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include "harness.hpp"

using namespace omniq;
using namespace omniq::test;
using nlohmann::json;

namespace {

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  return std::strtoull(text, nullptr, 10);
}

// The checker's reads, tried again for up to 30 s: right after a node restarts, a read (a scan
// through an ephemeral consumer) can meet a stream still settling its leader, and fail
// clearly (the library's reads are not retried for the caller).
template <class Read>
auto read_settled(Read read) {
  const auto until = Steady::now() + 30s;
  for (;;) {
    try {
      return read();
    } catch (const Error& e) {
      if (Steady::now() >= until) throw;
      std::cout << "chaos: checker read failed, trying again: " << e.what() << std::endl;
      std::this_thread::sleep_for(500ms);
    }
  }
}

std::int64_t ms_since(Steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t).count();
}

// The worker processes of the run, each with an id of its own (a replacement gets a new one,
// as a restarted process would).
struct Workers {
  Fleet& fleet;
  std::vector<std::pair<std::string, Process*>> live{};
  std::set<std::string> killed{};  // ids of the processes killed -9
  int started = 0;

  void start_one() {
    const std::string id = "w" + std::to_string(++started);
    live.emplace_back(id, &fleet.start("chaos", 16, id));
  }
  // Takes a random live worker out with `sig` and starts its replacement; returns its id.
  std::string replace(std::mt19937_64& rng, bool kill9) {
    std::uniform_int_distribution<std::size_t> pick(0, live.size() - 1);
    const std::size_t i = pick(rng);
    auto [id, process] = live[i];
    live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    if (kill9) {
      process->kill9();
      killed.insert(id);
    } else {
      process->terminate();
    }
    start_one();
    return id;
  }
};

}  // namespace

TEST_CASE("chaos: R3 cluster, nodes and workers killed at random while tasks flow: nothing lost, one outcome each",
          "[reliability][chaos]") {
  const std::uint64_t seed = env_number("OMNIQ_CHAOS_SEED", std::random_device{}());
  const auto fault_period = std::chrono::seconds(env_number("OMNIQ_CHAOS_SECONDS", 60));
  std::cout << "chaos: seed " << seed << ", faults for " << fault_period.count() << " s" << std::endl;
  INFO("chaos seed " << seed << " (OMNIQ_CHAOS_SEED=" << seed << " replays the faults' choices)");
  std::mt19937_64 rng(seed);

  ClusterSetup s("chaos", [](Config& c) {
    c.ack_wait = 5000ms;            // a killed worker's tasks come back after 5 s
    c.max_deliver = 20;             // the faults must not be what dead-letters a task
  });  // a worker's key outlives a leader election (15 s, fault_config)
  Workers workers{s.fleet};
  workers.start_one();
  workers.start_one();

  // The producer: a batch every 400 ms (20 short tasks, 4 sleeping 300-800 ms) until the faults
  // end; a batch whose enqueue fails (it retries for publish_timeout itself) is counted and sent
  // again with the same ids.
  std::mutex mu;
  std::map<std::string, json> expected;  // id -> the result its handler returns (its args)
  std::size_t producer_errors = 0;
  std::atomic<bool> producing{true};
  std::mt19937_64 task_rng(seed ^ 0x9e3779b97f4a7c15ull);
  auto producer = std::async(std::launch::async, [&] {
    while (producing) {
      std::vector<Task> batch;
      for (int i = 0; i < 24; ++i) {
        Task t;
        t.queue_name = "chaos";
        if (i < 20) {
          t.func = "noop";
          t.args = json::array({i, t.id});
        } else {
          t.func = "sleep_ms";
          t.args = json::array({std::uniform_int_distribution<int>(300, 800)(task_rng)});
        }
        batch.push_back(std::move(t));
      }
      const auto until = Steady::now() + 60s;
      for (;;) {
        try {
          s.backend.sync_task_queue().enqueue_batch(batch);
          break;
        } catch (const Error& e) {
          std::lock_guard lock(mu);
          ++producer_errors;
          std::cout << "chaos: enqueue_batch failed: " << e.what() << std::endl;
          if (Steady::now() >= until) return;
        }
      }
      {
        std::lock_guard lock(mu);
        for (const auto& t : batch) expected[t.id] = t.args;
      }
      std::this_thread::sleep_for(400ms);
    }
  });

  // The faults.
  std::vector<std::string> faults;
  const auto started = Steady::now();
  std::uniform_int_distribution<int> gap_ms(5000, 10'000), down_ms(3000, 8000), kind(0, 2);
  while (Steady::now() - started < fault_period) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(rng)));
    std::ostringstream what;
    what << "+" << ms_since(started) / 1000.0 << "s ";
    switch (kind(rng)) {
      case 0: {
        const std::size_t n = std::uniform_int_distribution<std::size_t>(0, 2)(rng);
        s.cluster.node(n).kill();
        const int down = down_ms(rng);
        std::this_thread::sleep_for(std::chrono::milliseconds(down));
        s.cluster.node(n).restart();
        what << "kill -9 node n" << n + 1 << ", restarted after " << down << " ms";
        break;
      }
      case 1:
        what << "kill -9 worker " << workers.replace(rng, true);
        break;
      default:
        what << "SIGTERM worker " << workers.replace(rng, false);
        break;
    }
    faults.push_back(what.str());
    std::cout << "chaos: " << faults.back() << std::endl;
  }
  const auto last_fault = Steady::now();
  producing = false;
  producer.get();

  std::map<std::string, json> ids_args;
  {
    std::lock_guard lock(mu);
    ids_args = expected;
  }
  std::set<std::string> ids;
  for (const auto& [id, args] : ids_args) ids.insert(id);
  REQUIRE(ids.size() > 500);

  // Drained within 30 s of the last fault (the queue's depth from the consumers' state).
  const bool drained_in_time = drained(s.backend, "chaos", 30s - std::chrono::milliseconds(ms_since(last_fault)));
  const auto drain_ms = ms_since(last_fault);
  if (!drained_in_time) require_drained(s.backend, "chaos", 60s, s.fleet);  // for the logs; then fail below
  CHECK(drained_in_time);
  CHECK(s.fleet.stop_all());

  // What happened to every task id.
  std::map<std::string, TaskResult> results;
  auto stored = read_settled([&] { return s.backend.sync_result_store().list(std::nullopt, ids.size() * 2 + 1000); });
  for (auto& r : stored)
    if (ids.count(r.task_id)) results.emplace(r.task_id, std::move(r));
  auto events_of = [&](EventType type) {
    return read_settled([&] {
      return s.backend.sync_event_log().get_events(std::nullopt, type, std::nullopt, std::nullopt, ids.size() * 4 + 1000);
    });
  };
  std::map<std::string, int> completed_events;
  for (const auto& e : events_of(EventType::completed))
    if (ids.count(e.task_id)) ++completed_events[e.task_id];
  std::map<std::string, std::vector<std::string>> runs;  // id -> workers of its executing events, in order
  for (const auto& e : events_of(EventType::executing))
    if (ids.count(e.task_id) && !e.details.contains("progress")) runs[e.task_id].push_back(e.worker_id.value_or(""));

  std::size_t lost = 0, wrong = 0, events_off = 0, reruns = 0, unexplained_reruns = 0;
  std::vector<std::string> examples;
  auto note = [&](const std::string& text) {
    if (examples.size() < 8) examples.push_back(text);
  };
  for (const auto& [id, args] : ids_args) {
    const auto r = results.find(id);
    if (r == results.end() || r->second.status != ResultStatus::success) {
      ++lost;
      note(id + ": " + (r == results.end() ? "no result" : "result " + std::string(to_string(r->second.status))));
      continue;
    }
    if (r->second.result != args) {
      ++wrong;
      note(id + ": result " + r->second.result.dump() + ", expected " + args.dump());
    }
    if (completed_events[id] != 1) {
      ++events_off;
      note(id + ": " + std::to_string(completed_events[id]) + " completed events");
    }
    const auto& ran = runs[id];
    if (ran.size() > 1) {
      ++reruns;
      if (!workers.killed.count(ran.front())) {
        ++unexplained_reruns;
        note(id + ": ran " + std::to_string(ran.size()) + " times, first on " + ran.front() + ", never killed -9");
      }
    }
  }

  std::ostringstream summary;
  summary << "chaos summary: seed=" << seed << " tasks=" << ids.size() << " lost=" << lost << " wrong=" << wrong
          << " completed_events_off=" << events_off << " reruns=" << reruns
          << " unexplained_reruns=" << unexplained_reruns << " producer_errors=" << producer_errors
          << " drain_ms=" << drain_ms << " faults=" << faults.size() << " killed=" << workers.killed.size();
  std::cout << summary.str() << std::endl;
  std::string detail;
  for (const auto& f : faults) detail += "\n  fault " + f;
  for (const auto& e : examples) detail += "\n  " + e;
  INFO(summary.str() << detail);
  CHECK(lost == 0);
  CHECK(wrong == 0);
  CHECK(events_off == 0);
  CHECK(unexplained_reruns == 0);
  CHECK(producer_errors == 0);
}
