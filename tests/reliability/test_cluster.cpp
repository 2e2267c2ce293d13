// Faults on a 3-node JetStream cluster with replicated (R3) streams and buckets: the stream
// leader killed during enqueue, the consumer leader killed during consumption, and the loss
// of quorum. See test_faults.cpp for the single-server table.
#include <catch2/catch.hpp>

#include <algorithm>
#include <future>
#include <optional>
#include <mutex>
#include <thread>

#include "harness.hpp"
#include "omniq/detail/layout.hpp"

using namespace omniq;
using namespace omniq::test;

namespace {

// Enqueues one task at a time, each retried with its id until acknowledged, and notes when
// each acknowledgement arrived.
struct TimedProducer {
  std::atomic<std::size_t> acked{0};
  std::mutex mu;
  std::vector<Steady::time_point> acks;

  std::set<std::string> run(NatsBackend& backend, const std::vector<Task>& tasks) {
    std::set<std::string> ids;
    for (const auto& t : tasks) {
      const auto one = enqueue_persistently(backend, {t}, 30s);
      if (one.empty()) continue;
      ids.insert(t.id);
      {
        std::lock_guard lock(mu);
        acks.push_back(Steady::now());
      }
      ++acked;
    }
    return ids;
  }
  // The first acknowledgement at or after `t`, if any.
  std::optional<Steady::time_point> first_ack_after(Steady::time_point t) {
    std::lock_guard lock(mu);
    const auto it = std::lower_bound(acks.begin(), acks.end(), t);
    if (it == acks.end()) return std::nullopt;
    return *it;
  }
};

std::int64_t ms_between(Steady::time_point from, Steady::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

}  // namespace

// Two durations, told apart: the failover itself (the kill until a surviving node names a new
// stream leader; nats-server's Raft waits 4-9 s without a leader before it campaigns) and the
// library's part (that new leader until the producer's next acknowledgement: at most one
// request timeout, the one spent on the publish the dead leader never answered).
TEST_CASE("R3 cluster: the stream leader killed during enqueue: nothing lost, each id stored once, failover "
          "within 10 s",
          "[reliability][cluster]") {
  ClusterSetup s("lead");
  const auto tasks = noop_tasks(2000, "lead");
  TimedProducer producer;
  auto enqueued = std::async(std::launch::async, [&] { return producer.run(s.backend, tasks); });
  REQUIRE(wait_until([&] { return producer.acked >= 500; }, 60s));
  const std::string leader = s.cluster.leader(s.config.tasks_stream.name);
  REQUIRE_FALSE(leader.empty());
  LocalServer& victim = s.cluster.node(s.cluster.index_of(leader));
  victim.kill();
  const auto killed_at = Steady::now();
  std::string successor;
  while (Steady::now() < killed_at + 30s) {
    successor = s.cluster.leader(s.config.tasks_stream.name, "", 250ms);
    if (!successor.empty() && successor != leader) break;
    std::this_thread::sleep_for(50ms);
  }
  const auto elected_at = Steady::now();
  REQUIRE_FALSE(successor.empty());
  REQUIRE(successor != leader);
  if (elected_at < killed_at + 5s) std::this_thread::sleep_for(killed_at + 5s - elected_at);
  victim.restart();
  const auto ids = enqueued.get();
  REQUIRE(ids.size() == 2000);
  const auto resumed_at = producer.first_ack_after(killed_at);
  REQUIRE(resumed_at);
  // The poll may see the new leader after the producer did: the earlier of the two is when
  // the stream had a leader again.
  const auto led_again = std::min(elected_at, *resumed_at);
  const auto failover_ms = ms_between(killed_at, led_again);
  const auto resume_ms = ms_between(led_again, *resumed_at);
  INFO("stream leader " << leader << " killed; " << successor << " elected after " << failover_ms
                        << " ms; the producer's next ack " << resume_ms << " ms later");
  CHECK(failover_ms <= 10'000);
  CHECK(resume_ms <= s.config.request_timeout.count() + 1000);
  // Each id stored once: retries of a timed-out publish were deduplicated by id.
  CHECK(s.backend.sync_task_queue().info().messages == 2000);
  s.fleet.start_many("lead", 2, 16);
  const Outcome o = drain_and_count(s.backend, s.fleet, ids, "lead", 60s);
  INFO(o);
  CHECK(o.lost == 0);
  CHECK(o.depth == 0);
  WARN("stream leader failover " << failover_ms << " ms, producer resumed " << resume_ms << " ms after; " << o);
}

TEST_CASE("R3 cluster: the consumer leader killed during consumption: nothing lost", "[reliability][cluster]") {
  ClusterSetup s("cons");
  const std::set<std::string> ids = enqueue_in_batches(s.backend, noop_tasks(2000, "cons", "sleep_ms_2"));
  const std::string stream = s.config.tasks_stream.name;
  const std::string consumer = detail::consumer_name(s.config, "cons", detail::band_for(0));
  REQUIRE(s.cluster.wait_leader(stream, consumer, 20s));
  s.fleet.start_many("cons", 2, 16);
  auto& q = s.backend.sync_task_queue();
  REQUIRE(wait_until([&] { return q.get_queue_size("cons") <= 1400; }, 60s));
  REQUIRE(q.get_queue_size("cons") > 0);  // killed with work left
  const std::string leader = s.cluster.leader(stream, consumer);
  REQUIRE_FALSE(leader.empty());
  LocalServer& victim = s.cluster.node(s.cluster.index_of(leader));
  victim.kill();
  // Down for 5 s (the scenario), meanwhile watching whether another node takes the
  // consumer over; after the restart the consumer must have a leader again.
  const auto killed_at = Steady::now();
  std::string successor;
  wait_until([&] {
    successor = s.cluster.leader(stream, consumer, 250ms);
    return !successor.empty() && successor != leader;
  }, 5s);
  if (Steady::now() < killed_at + 5s) std::this_thread::sleep_for(killed_at + 5s - Steady::now());
  victim.restart();
  REQUIRE(s.cluster.wait_leader(stream, consumer, 30s));
  if (successor.empty() || successor == leader) successor = s.cluster.leader(stream, consumer);
  const Outcome o = drain_and_count(s.backend, s.fleet, ids, "cons", 90s);
  INFO("consumer leader was " << leader << ", then " << successor << "; " << o);
  CHECK(o.lost == 0);
  CHECK(o.depth == 0);
  WARN("consumer leader " << leader << " killed: " << o);
}

TEST_CASE("R3 cluster: quorum lost for 5 s: no enqueue reported stored unless it is, nothing lost after recovery",
          "[reliability][cluster]") {
  ClusterSetup s("quorum");
  const auto tasks = noop_tasks(100'000, "quorum");
  std::mutex mu;
  std::set<std::string> accepted;
  std::size_t refused = 0;
  std::atomic<std::size_t> tried{0};
  std::atomic<bool> enough{false};
  // A producer that tries each enqueue once (publish_timeout 0), so the outage reaches it.
  Config once = s.config;
  once.publish_timeout = 0ms;
  NatsBackend single_try(once);
  ConnectionScope single_try_scope(single_try);
  auto producer = std::async(std::launch::async, [&] {
    for (const auto& t : tasks) {
      if (enough) break;
      std::this_thread::sleep_for(2ms);
      try {
        single_try.sync_task_queue().enqueue(t);  // one attempt each: success must mean stored
        std::lock_guard lock(mu);
        accepted.insert(t.id);
      } catch (const Error&) {
        std::lock_guard lock(mu);
        ++refused;
      }
      ++tried;
    }
  });
  REQUIRE(wait_until([&] { return tried >= 300; }, 60s));
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
  s.fleet.start_many("quorum", 2, 16);
  const Outcome o = drain_and_count(s.backend, s.fleet, accepted, "quorum", 60s);
  INFO(o);
  CHECK(o.lost == 0);
  WARN("quorum loss: accepted " << accepted.size() << ", refused " << refused << "; " << o);
}
