// Faults on a 3-node JetStream cluster with replicated (R3) streams and buckets: the stream
// leader killed during enqueue, the consumer leader killed during consumption, and the loss
// of quorum. See test_faults.cpp for the single-server table.
#include <catch2/catch.hpp>

#include <future>
#include <mutex>
#include <thread>

#include "harness.hpp"
#include "omniq/detail/layout.hpp"

using namespace omniq;
using namespace omniq::test;

namespace {

struct ClusterSetup {
  Cluster cluster;
  TempDir dir;
  Config config = fault_config(cluster.urls(), 3);
  NatsBackend backend{config};
  ConnectionScope scope{backend};
  Fleet fleet{config, dir.path};

  explicit ClusterSetup(const std::string& queue) {
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
};

// Enqueues one task at a time, each retried with its id until acknowledged; notes the longest
// time without an acknowledgement (the failover time as a producer sees it).
struct TimedProducer {
  std::atomic<std::size_t> acked{0};
  std::atomic<std::int64_t> longest_gap_ms{0};

  std::set<std::string> run(NatsBackend& backend, const std::vector<Task>& tasks) {
    auto last = Steady::now();
    std::set<std::string> ids;
    for (const auto& t : tasks) {
      const auto one = enqueue_persistently(backend, {t}, 30s);
      if (one.empty()) continue;
      ids.insert(t.id);
      const auto now = Steady::now();
      longest_gap_ms = std::max<std::int64_t>(
          longest_gap_ms, std::chrono::duration_cast<std::chrono::milliseconds>(now - last).count());
      last = now;
      ++acked;
    }
    return ids;
  }
};

}  // namespace

TEST_CASE("R3 cluster: the stream leader killed during enqueue: nothing lost, each id stored once, failover "
          "within 10 s",
          "[reliability][cluster]") {
  ClusterSetup s("lead");
  const auto tasks = noop_tasks(2000, "lead");
  TimedProducer producer;
  auto enqueued = std::async(std::launch::async, [&] { return producer.run(s.backend, tasks); });
  while (producer.acked < 500 && enqueued.wait_for(1ms) != std::future_status::ready) {
  }
  const std::string leader = s.cluster.leader(s.config.tasks_stream.name);
  REQUIRE_FALSE(leader.empty());
  LocalServer& victim = s.cluster.node(s.cluster.index_of(leader));
  victim.kill();
  std::this_thread::sleep_for(5s);
  victim.restart();
  const auto ids = enqueued.get();
  INFO("stream leader was " << leader << "; longest wait for an ack " << producer.longest_gap_ms << " ms");
  REQUIRE(ids.size() == 2000);
  CHECK(producer.longest_gap_ms <= 10'000);
  // Each id stored once: retries of a timed-out publish were deduplicated by id.
  CHECK(s.backend.sync_task_queue().info().messages == 2000);
  s.fleet.start("lead", 16, "w1");
  s.fleet.start("lead", 16, "w2");
  REQUIRE(drained(s.backend, "lead", 60s));
  CHECK(s.fleet.stop_all());
  const Outcome o = outcome(s.backend, ids, "lead");
  INFO(o);
  CHECK(o.lost == 0);
  CHECK(o.depth == 0);
  WARN("stream leader failover: longest wait for an enqueue ack " << producer.longest_gap_ms << " ms; " << o);
}

TEST_CASE("R3 cluster: the consumer leader killed during consumption: nothing lost", "[reliability][cluster]") {
  ClusterSetup s("cons");
  std::set<std::string> ids;
  const auto tasks = noop_tasks(2000, "cons", "sleep_ms_2");
  for (std::size_t i = 0; i < tasks.size(); i += 500) {
    std::vector<Task> chunk(tasks.begin() + static_cast<std::ptrdiff_t>(i),
                            tasks.begin() + static_cast<std::ptrdiff_t>(i + 500));
    for (const auto& id : s.backend.sync_task_queue().enqueue_batch(std::move(chunk))) ids.insert(id);
  }
  const std::string consumer = detail::consumer_name(s.config, "cons", detail::band_for(0));
  REQUIRE(s.cluster.wait_leader(s.config.tasks_stream.name, consumer, 20s));
  s.fleet.start("cons", 16, "w1");
  s.fleet.start("cons", 16, "w2");
  const auto until = Steady::now() + 60s;
  while (Steady::now() < until && s.backend.sync_task_queue().get_queue_size("cons") > 1400)
    std::this_thread::sleep_for(20ms);
  const std::string leader = s.cluster.leader(s.config.tasks_stream.name, consumer);
  REQUIRE_FALSE(leader.empty());
  LocalServer& victim = s.cluster.node(s.cluster.index_of(leader));
  victim.kill();
  std::this_thread::sleep_for(5s);
  victim.restart();
  REQUIRE(drained(s.backend, "cons", 90s));
  CHECK(s.fleet.stop_all());
  const Outcome o = outcome(s.backend, ids, "cons");
  INFO("consumer leader was " << leader << "; " << o);
  CHECK(o.lost == 0);
  CHECK(o.depth == 0);
  WARN("consumer leader " << leader << " killed: " << o);
}

TEST_CASE("R3 cluster: quorum lost for 5 s: no enqueue reported stored unless it is; nothing lost after recovery",
          "[reliability][cluster]") {
  ClusterSetup s("quorum");
  const auto tasks = noop_tasks(100'000, "quorum");
  std::mutex mu;
  std::set<std::string> accepted;
  std::size_t refused = 0;
  std::atomic<std::size_t> tried{0};
  std::atomic<bool> enough{false};
  auto producer = std::async(std::launch::async, [&] {
    for (const auto& t : tasks) {
      if (enough) break;
      std::this_thread::sleep_for(2ms);
      try {
        s.backend.sync_task_queue().enqueue(t);  // one attempt each: success must mean stored
        std::lock_guard lock(mu);
        accepted.insert(t.id);
      } catch (const Error&) {
        std::lock_guard lock(mu);
        ++refused;
      }
      ++tried;
    }
  });
  while (tried < 300) std::this_thread::sleep_for(1ms);
  s.cluster.node(1).kill();
  s.cluster.node(2).kill();
  std::this_thread::sleep_for(5s);
  s.cluster.node(1).restart();
  s.cluster.node(2).restart();
  std::size_t accepted_before = 0;
  {
    std::lock_guard lock(mu);
    accepted_before = accepted.size();
  }
  REQUIRE(s.cluster.wait_leader(s.config.tasks_stream.name, "", 30s));
  std::this_thread::sleep_for(5s);  // enqueues go on after the recovery
  enough = true;
  producer.get();
  INFO("accepted " << accepted.size() << " (" << accepted_before << " before the recovery), refused " << refused);
  CHECK(refused > 0);                         // the outage was seen
  CHECK(accepted.size() > accepted_before);  // and enqueues succeed again after it
  s.fleet.start("quorum", 16, "w1");
  s.fleet.start("quorum", 16, "w2");
  REQUIRE(drained(s.backend, "quorum", 60s));
  CHECK(s.fleet.stop_all());
  const Outcome o = outcome(s.backend, accepted, "quorum");
  INFO(o);
  CHECK(o.lost == 0);
  WARN("quorum loss: accepted " << accepted.size() << ", refused " << refused << "; " << o);
}
