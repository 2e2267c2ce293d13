// Worker and scheduler processes for the multi-process tests (e2e, reliability) and the
// checker that counts what happened to every task id (issue 7's counters). Needs
// OMNIQ_TEST_WORKER and OMNIQ_TEST_SCHEDULER, the paths of omniq_test_worker and
// omniq_test_scheduler (tests/CMakeLists.txt defines them for suites marked WORKER).
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "omniq/backend.hpp"
#include "omniq/config.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "process.hpp"
#include "test_support.hpp"

namespace omniq::test {

// Worker processes (omniq_test_worker) and scheduler processes (omniq_test_scheduler) sharing
// one config file.
class Fleet {
 public:
  Fleet(const Config& config, const std::filesystem::path& dir) : dir_(dir), config_file_(dir / "worker.json") {
    std::ofstream(config_file_) << config_to_json(config).dump(2);
  }
  Process& start(const std::string& queue, int concurrency, const std::string& id) {
    std::vector<std::string> argv{OMNIQ_TEST_WORKER, config_file_.string(), queue, std::to_string(concurrency), id};
    return add(std::move(argv), id);
  }
  // A scheduler process looking for due schedules every `poll`; its log is <id>.log.
  Process& start_scheduler(const std::string& id, std::chrono::milliseconds poll) {
    return add({OMNIQ_TEST_SCHEDULER, config_file_.string(), std::to_string(poll.count())}, id);
  }
  // `count` workers "w1".."w<count>" on `queue`, each running `concurrency` tasks at once.
  void start_many(const std::string& queue, int count, int concurrency) {
    for (int i = 1; i <= count; ++i) start(queue, concurrency, "w" + std::to_string(i));
  }
  // The last `lines` lines of each process's log, for a failure message.
  std::string log_tails(std::size_t lines = 15) {
    std::string out;
    for (const auto& w : processes_) {
      const std::string text = w->output();
      // The start of the last `lines` lines (a final newline ends the last one, it opens none);
      // rfind's npos + 1 wraps to 0, the start of the text.
      std::size_t from = text.size();
      for (std::size_t n = 0; n < lines && from > 1; ++n) from = text.rfind('\n', from - 2) + 1;
      out += "---- " + w->log_path().string() + " (" + w->state() + ", " + std::to_string(text.size()) +
             " bytes)\n" + text.substr(from);
    }
    return out;
  }
  // SIGTERM to every process not already stopped (a killed one is); true when all exited 0.
  bool stop_all() {
    bool ok = true;
    for (auto& w : processes_)
      if (!w->reaped()) ok = w->terminate() == 0 && ok;
    return ok;
  }

 private:
  Process& add(std::vector<std::string> argv, const std::string& id) {
    processes_.push_back(std::make_unique<Process>(std::move(argv), dir_ / (id + ".log")));
    return *processes_.back();
  }

  std::filesystem::path dir_;
  std::filesystem::path config_file_;
  std::vector<std::unique_ptr<Process>> processes_;
};

// What happened to a set of task ids (issue 7's counters).
struct Outcome {
  std::size_t enqueued = 0;    // ids whose enqueue was acknowledged (or reported duplicate)
  std::size_t completed = 0;   // distinct ids with a stored success
  std::size_t executions = 0;  // handler runs (executing events)
  std::size_t lost = 0;        // enqueued - completed
  std::size_t duplicates = 0;  // executions - completed
  std::uint64_t depth = 0;     // consumer pending + unacked for the queue
  // For a failure message: how each of the first few lost ids ended ("dead-lettered: <reason>",
  // "result <status>", "no result").
  std::vector<std::string> lost_how{};
};

// The counting reads, retried for up to 30 s while they fail transiently: right after a
// cluster recovers, JetStream may still answer "unavailable" (10008) for a moment.
inline Outcome outcome_once(NatsBackend& backend, const std::set<std::string>& ids, const std::string& queue);

inline Outcome outcome(NatsBackend& backend, const std::set<std::string>& ids, const std::string& queue) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    try {
      return outcome_once(backend, ids, queue);
    } catch (const Error& e) {
      if (!is_transient(e.code()) || std::chrono::steady_clock::now() >= until) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
}

inline Outcome outcome_once(NatsBackend& backend, const std::set<std::string>& ids, const std::string& queue) {
  Outcome o;
  o.enqueued = ids.size();
  std::set<std::string> done;
  for (const auto& r : backend.sync_result_store().list(ResultStatus::success, ids.size() * 2 + 100))
    if (ids.count(r.task_id)) done.insert(r.task_id);
  o.completed = done.size();
  for (const auto& e : backend.sync_event_log().get_events(std::nullopt, EventType::executing, std::nullopt,
                                                           std::nullopt, ids.size() * 10 + 100))
    if (ids.count(e.task_id)) ++o.executions;
  o.lost = o.enqueued - o.completed;
  o.duplicates = o.executions > o.completed ? o.executions - o.completed : 0;
  o.depth = backend.sync_task_queue().get_queue_size(queue);
  if (o.lost > 0) {
    std::map<std::string, std::string> letters;
    for (const auto& l : backend.sync_task_queue().list_dead_letters(queue, 10'000)) letters[l.task_id] = l.reason;
    for (const auto& id : ids) {
      if (done.count(id) || o.lost_how.size() >= 5) continue;
      const auto r = backend.sync_result_store().get_record(id);
      const auto letter = letters.find(id);
      o.lost_how.push_back(id + ": " + (letter != letters.end() ? "dead-lettered: " + letter->second
                                        : r ? "result " + std::string(to_string(r->result.status))
                                            : std::string("no result")));
    }
  }
  return o;
}

inline std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "enqueued " << o.enqueued << ", completed " << o.completed << ", executions " << o.executions
            << ", lost " << o.lost << ", duplicates " << o.duplicates << ", depth " << o.depth;
  for (const auto& how : o.lost_how) os << "\n  lost " << how;
  return os;
}

// Waits until the queue's consumers hold no work; false after `timeout`.
inline bool drained(NatsBackend& backend, const std::string& queue, Duration timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    try {
      if (backend.sync_task_queue().get_queue_size(queue) == 0) return true;
    } catch (const Error&) {  // the server may be coming back
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

// Fails the test unless the queue drains within `timeout`, showing the workers' log tails.
inline void require_drained(NatsBackend& backend, const std::string& queue, Duration timeout, Fleet& fleet) {
  if (drained(backend, queue, timeout)) return;
  std::string depth = "unknown";
  try {
    depth = std::to_string(backend.sync_task_queue().get_queue_size(queue));
  } catch (const Error& e) {
    depth += std::string(" (") + e.what() + ")";
  }
  FAIL("queue " << queue << " did not drain: depth " << depth << "; the workers' logs end with:\n"
                << fleet.log_tails());
}

// The end of a scenario: the queue drains (or the test fails with the workers' logs), the
// workers stop and exit 0, and what happened to `ids` is counted (its depth is 0 by then).
inline Outcome drain_and_count(NatsBackend& backend, Fleet& fleet, const std::set<std::string>& ids,
                               const std::string& queue, Duration timeout) {
  require_drained(backend, queue, timeout, fleet);
  if (!fleet.stop_all())
    FAIL_CHECK("a worker did not exit 0 on SIGTERM; the workers' logs end with:\n" << fleet.log_tails());
  return outcome(backend, ids, queue);
}

// Enqueues `tasks` in batches of 500; returns their ids.
inline std::set<std::string> enqueue_in_batches(NatsBackend& backend, const std::vector<Task>& tasks) {
  std::set<std::string> ids;
  for (std::size_t i = 0; i < tasks.size(); i += 500) {
    std::vector<Task> chunk(tasks.begin() + static_cast<std::ptrdiff_t>(i),
                            tasks.begin() + static_cast<std::ptrdiff_t>(std::min(tasks.size(), i + 500)));
    for (const auto& id : backend.sync_task_queue().enqueue_batch(std::move(chunk))) ids.insert(id);
  }
  return ids;
}

inline std::vector<Task> noop_tasks(std::size_t n, const std::string& queue, const std::string& func = "noop") {
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < n; ++i) {
    Task t;
    t.func = func;
    t.args = nlohmann::json::array({static_cast<int>(i)});
    t.queue_name = queue;
    t.retry_delay = std::chrono::milliseconds(50);
    tasks.push_back(std::move(t));
  }
  return tasks;
}

}  // namespace omniq::test
