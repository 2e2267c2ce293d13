// The fault-injection harness: fast settings, servers and clusters started from generated
// configs on loopback, a producer that retries through outages; worker processes and the
// checker that counts what happened to every task id come from support/workers.hpp.
#pragma once

#include <atomic>
#include <functional>
#include <chrono>
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
#include "test_support.hpp"
#include "workers.hpp"

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
  for (BucketSettings* b : {&c.results_bucket, &c.schedules_bucket, &c.task_state_bucket, &c.workers_bucket})
    b->replicas = replicas;
  // A killed worker's claims are taken over once its key is gone: 6 s on one server; a
  // cluster needs more than a leader election (a live worker's key must outlast one).
  c.workers_bucket.ttl = replicas > 1 ? std::chrono::seconds(15) : std::chrono::seconds(6);
  return c;
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

// The last sequence of `stream` (0 if it cannot be read), asked through `url` with nats.c:
// it grows with every message stored, even those a work queue removed since.
inline std::uint64_t stream_last_seq(const std::string& url, const std::string& stream) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) return 0;
  natsMsg* reply = nullptr;
  std::uint64_t seq = 0;
  const std::string subject = "$JS.API.STREAM.INFO." + stream;
  if (natsConnection_RequestString(&reply, nc, subject.c_str(), "", 2000) == NATS_OK) {
    const auto j = nlohmann::json::parse(std::string(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)),
                                         nullptr, false);
    if (j.is_object() && j.contains("state")) seq = j["state"].value("last_seq", std::uint64_t{0});
    natsMsg_Destroy(reply);
  }
  natsConnection_Destroy(nc);
  return seq;
}

// A 3-node JetStream cluster on loopback (NATS-FACTS.md), each node a LocalServer.
class Cluster {
 public:
  explicit Cluster(int nodes = 3) {
    std::vector<int> routes, ports;
    for (int i = 0; i < nodes; ++i) {
      routes.push_back(LocalServer::free_port());
      ports.push_back(LocalServer::free_port());
    }
    std::string route_urls;
    for (int i = 0; i < nodes; ++i)
      route_urls += (i ? ", " : "") + std::string("nats-route://127.0.0.1:") + std::to_string(routes[i]);
    for (int i = 0; i < nodes; ++i) {
      LocalServerOptions o;
      o.port = ports[i];
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
  std::vector<std::unique_ptr<LocalServer>> nodes_;
};

// A 3-node cluster with R3 streams and buckets, provisioned and with a stream leader, a
// backend connected to all three nodes, and a fleet of worker processes using the same config.
struct ClusterSetup {
  Cluster cluster;
  TempDir dir;
  Config config;
  NatsBackend backend;
  ConnectionScope scope{backend};
  Fleet fleet{config, dir.path};

  // `tune` changes the fault settings before anything connects.
  explicit ClusterSetup(const std::string& queue, const std::function<void(Config&)>& tune = {})
      : config(tuned(fault_config(cluster.urls(), 3), tune)), backend(config) {
    // JetStream needs its meta leader first: provision once the cluster answers.
    const auto until = Steady::now() + 30s;
    for (;;) {
      try {
        backend.sync_task_queue().ensure();
        backend.sync_result_store().ensure();
        backend.sync_event_log().ensure();
        backend.sync_task_queue().get_queue_size(queue);  // the queue's consumers
        break;
      } catch (const Error&) {
        if (Steady::now() >= until) throw;
        std::this_thread::sleep_for(250ms);
      }
    }
    REQUIRE(cluster.wait_leader(config.tasks_stream.name, "", 20s));
  }

 private:
  static Config tuned(Config c, const std::function<void(Config&)>& tune) {
    if (tune) tune(c);
    return c;
  }
};

}  // namespace omniq::test
