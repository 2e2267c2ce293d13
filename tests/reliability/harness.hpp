// The fault-injection harness: servers and clusters started from generated configs on
// loopback, worker processes, and the checker that counts what happened to every task id.
#pragma once

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nats/nats.h>

#include "omniq/backend.hpp"
#include "omniq/config.hpp"
#include "omniq/event_log.hpp"
#include "omniq/local_server.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "process.hpp"
#include "test_support.hpp"

namespace omniq::test {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

// Fast settings for fault tests (issue 7): short ack_wait, bounded deliveries, quick and
// endless reconnects.
inline Config fault_config(const std::vector<std::string>& urls, int replicas = 1) {
  Config c;
  c.servers = urls;
  c.ack_wait = 2000ms;
  c.max_deliver = 5;
  c.connect_timeout = 2000ms;
  c.reconnect_time_wait = 100ms;
  c.max_reconnect_attempts = -1;
  c.request_timeout = 2000ms;
  for (StreamSettings* s : {&c.tasks_stream, &c.events_stream, &c.dead_letter_stream}) s->replicas = replicas;
  for (BucketSettings* b : {&c.results_bucket, &c.schedules_bucket, &c.task_state_bucket}) b->replicas = replicas;
  return c;
}

// Worker processes (omniq_test_worker) sharing one config file.
class Fleet {
 public:
  Fleet(const Config& config, const std::filesystem::path& dir) : dir_(dir), config_file_(dir / "worker.json") {
    std::ofstream(config_file_) << config_to_json(config).dump(2);
  }
  Process& start(const std::string& queue, int concurrency, const std::string& id) {
    std::vector<std::string> argv{OMNIQ_TEST_WORKER, config_file_.string(), queue, std::to_string(concurrency), "0", id};
    workers_.push_back(std::make_unique<Process>(std::move(argv), dir_ / (id + ".log")));
    return *workers_.back();
  }
  // SIGTERM to every worker not already stopped (a killed one is); true when all exited 0.
  bool stop_all() {
    bool ok = true;
    for (auto& w : workers_)
      if (!w->reaped()) ok = w->terminate() == 0 && ok;
    return ok;
  }
  std::string logs() const {
    std::string all;
    for (const auto& w : workers_) all += w->output();
    return all;
  }

 private:
  std::filesystem::path dir_;
  std::filesystem::path config_file_;
  std::vector<std::unique_ptr<Process>> workers_;
};

// What happened to a set of task ids (issue 7's counters).
struct Outcome {
  std::size_t enqueued = 0;    // ids whose enqueue was acknowledged (or reported duplicate)
  std::size_t completed = 0;   // distinct ids with a stored success
  std::size_t executions = 0;  // handler runs (executing events)
  std::size_t lost = 0;        // enqueued - completed
  std::size_t duplicates = 0;  // executions - completed
  std::uint64_t depth = 0;     // consumer pending + unacked for the queue
};

inline Outcome outcome(NatsBackend& backend, const std::set<std::string>& ids, const std::string& queue) {
  Outcome o;
  o.enqueued = ids.size();
  std::set<std::string> done;
  for (const auto& r : backend.sync_result_store().list_results(ResultStatus::success, ids.size() * 2 + 100))
    if (ids.count(r.task_id)) done.insert(r.task_id);
  o.completed = done.size();
  for (const auto& e : backend.sync_event_log().get_events(std::nullopt, EventType::executing, std::nullopt,
                                                           std::nullopt, ids.size() * 10 + 100))
    if (ids.count(e.task_id)) ++o.executions;
  o.lost = o.enqueued - o.completed;
  o.duplicates = o.executions > o.completed ? o.executions - o.completed : 0;
  o.depth = backend.sync_task_queue().get_queue_size(queue);
  return o;
}

inline std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "enqueued " << o.enqueued << ", completed " << o.completed << ", executions " << o.executions
            << ", lost " << o.lost << ", duplicates " << o.duplicates << ", depth " << o.depth;
}

// Waits until the queue's consumers hold no work; false after `timeout`.
inline bool drained(NatsBackend& backend, const std::string& queue, Duration timeout) {
  const auto until = Steady::now() + timeout;
  while (Steady::now() < until) {
    try {
      if (backend.sync_task_queue().get_queue_size(queue) == 0) return true;
    } catch (const Error&) {  // the server may be coming back
    }
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

inline std::vector<Task> noop_tasks(std::size_t n, const std::string& queue, const std::string& func = "noop") {
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < n; ++i) {
    Task t;
    t.func = func;
    t.args = nlohmann::json::array({static_cast<int>(i)});
    t.queue_name = queue;
    t.retry_delay = 50ms;
    tasks.push_back(std::move(t));
  }
  return tasks;
}

// Enqueues each task until the server acknowledges it (retrying with the same id through
// outages, up to `patience` per task); returns the ids acknowledged.
inline std::set<std::string> enqueue_persistently(NatsBackend& backend, const std::vector<Task>& tasks,
                                                  Duration patience, std::atomic<std::size_t>* acked = nullptr) {
  std::set<std::string> ids;
  for (const auto& t : tasks) {
    const auto until = Steady::now() + patience;
    for (;;) {
      try {
        backend.sync_task_queue().enqueue(t);
        ids.insert(t.id);
        if (acked) ++*acked;
        break;
      } catch (const Error&) {
        if (Steady::now() >= until) break;
        std::this_thread::sleep_for(50ms);
      }
    }
  }
  return ids;
}

// A 3-node JetStream cluster on loopback (NATS-FACTS.md), each node a LocalServer.
class Cluster {
 public:
  explicit Cluster(int nodes = 3) {
    std::vector<int> routes;
    for (int i = 0; i < nodes; ++i) {
      routes.push_back(LocalServer::free_port());
      ports_.push_back(LocalServer::free_port());
    }
    std::string route_urls;
    for (int i = 0; i < nodes; ++i)
      route_urls += (i ? ", " : "") + std::string("nats-route://127.0.0.1:") + std::to_string(routes[i]);
    for (int i = 0; i < nodes; ++i) {
      LocalServerOptions o;
      o.port = ports_[i];
      o.config_text = "server_name: n" + std::to_string(i + 1) +
                      "\ncluster { name: omniq_test, listen: 127.0.0.1:" +
                      std::to_string(routes[i]) + ", routes: [" + route_urls + "] }\n";
      nodes_.push_back(std::make_unique<LocalServer>(std::move(o)));
    }
  }
  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_) out.push_back(n->url());
    return out;
  }
  LocalServer& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  // The index of the node named `name` ("n1".."n3").
  std::size_t index_of(const std::string& name) const { return static_cast<std::size_t>(std::stoi(name.substr(1)) - 1); }

  // The current leader of a stream, or of a consumer when `consumer` is given ("" if none yet),
  // asked through any live node, each given `patience` to answer.
  std::string leader(const std::string& stream, const std::string& consumer = {}, Duration patience = 2s) {
    for (auto& n : nodes_) {
      if (!n->running()) continue;
      natsConnection* nc = nullptr;
      if (natsConnection_ConnectTo(&nc, n->url().c_str()) != NATS_OK) continue;
      const std::string subject = consumer.empty() ? "$JS.API.STREAM.INFO." + stream
                                                   : "$JS.API.CONSUMER.INFO." + stream + "." + consumer;
      natsMsg* reply = nullptr;
      std::string leader;
      const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(patience).count();
      if (natsConnection_RequestString(&reply, nc, subject.c_str(), "", wait_ms) == NATS_OK) {
        const auto j = nlohmann::json::parse(std::string(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)),
                                             nullptr, false);
        if (j.is_object() && j.contains("cluster") && j["cluster"].contains("leader"))
          leader = j["cluster"]["leader"].get<std::string>();
        natsMsg_Destroy(reply);
      }
      natsConnection_Destroy(nc);
      if (!leader.empty()) return leader;
    }
    return {};
  }
  // Waits until the stream (and consumer) has a leader; false after `timeout`.
  bool wait_leader(const std::string& stream, const std::string& consumer, Duration timeout) {
    const auto until = Steady::now() + timeout;
    while (Steady::now() < until) {
      if (!leader(stream, consumer).empty()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

 private:
  std::vector<int> ports_;
  std::vector<std::unique_ptr<LocalServer>> nodes_;
};

}  // namespace omniq::test
