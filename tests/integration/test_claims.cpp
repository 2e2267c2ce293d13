// A delivery is acked only once its outcome is stored: the claim and outcome paths of the
// Worker against a real nats-server, with the doubts a cluster produces injected by hand
// (a claim held by a live or a gone worker, a claim revision that moved under the run,
// outcome writes failing together while the server is away). docs/reliability.md states the
// rules; tests/unit/test_claim.cpp the decisions (a claim create that timed out but landed is
// recognised there by its claim id, which holds a random instance of the Worker).
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "omniq/backend.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/kv.hpp"
#include "omniq/detail/worker_registry.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/worker.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using nlohmann::json;
using omniq::test::wait_until;

namespace {

struct Fixture : test::ServerFixture {
  using ServerFixture::ServerFixture;
  SyncTaskQueue& q() { return backend->sync_task_queue(); }
  SyncResultStore& results() { return backend->sync_result_store(); }
  std::size_t count_events(const std::string& task_id, EventType type) {
    return backend->sync_event_log().get_events(task_id, type, std::nullopt, std::nullopt, 1000).size();
  }
};

// A worker serving on a thread of its own, with one handler, "gate": it counts its runs and
// returns "done" once `open` is set (at once when it already is).
struct GateWorker {
  Worker worker;
  std::atomic<int> runs{0};
  std::atomic<bool> open{true};
  std::atomic<bool> fail{false};  // throw a non-retryable TaskError instead of returning
  std::future<void> done;

  GateWorker(NatsBackend& backend, WorkerOptions options = {}) : worker(backend, std::move(options)) {
    worker.handle_blocking("gate", [this](TaskContext&, const json&, const json&) -> json {
      ++runs;
      while (!open) std::this_thread::sleep_for(5ms);
      if (fail) throw TaskError("Refused", "fails on purpose", false);
      return "done";
    });
  }
  void start() {
    done = std::async(std::launch::async, [this] { worker.run_sync(); });
  }
  ~GateWorker() {
    open = true;
    worker.stop();
    if (done.valid()) done.wait();
  }
};

Task gate_task() {
  Task t;
  t.func = "gate";
  t.queue_name = "default";
  return t;
}

// A pending claim on `task_id` as another run would have written it.
TaskResult foreign_claim(const std::string& task_id, const std::string& worker, const std::string& claim_id) {
  TaskResult r{.task_id = task_id, .status = ResultStatus::pending};
  r.worker_id = worker;
  r.metadata["message"] = 999'999;
  r.metadata["attempts"] = 1;
  r.metadata["claim"] = claim_id;
  return r;
}

}  // namespace

TEST_CASE("a claim held by a worker that is gone is taken over: the task runs and its outcome is stored",
          "[claims]") {
  Fixture f;
  const std::string id = f.q().enqueue(gate_task());
  // Its worker claimed it and died; its key in the workers bucket has expired (never written).
  f.results().set(foreign_claim(id, "gone-worker", "gone-worker.1"));
  GateWorker w(*f.backend);
  w.start();
  const auto r = f.results().wait_for_result(id, 15s);
  REQUIRE(r);
  CHECK(r->status == ResultStatus::success);
  CHECK(r->result == "done");
  CHECK(w.runs == 1);
  CHECK(f.count_events(id, EventType::completed) == 1);
  REQUIRE(wait_until([&] { return f.q().get_queue_size("default") == 0; }, 5s));
  CHECK(w.worker.stats().duplicates == 0);
}

TEST_CASE("a claim held by a live worker sets the delivery aside: not run, not acked, settled once that worker "
          "stores the outcome",
          "[claims]") {
  Fixture f([](Config& c) { c.ack_wait = 1500ms; });  // deliveries set aside come back after ack_wait / 3
  detail::WorkerRegistry registry(*f.backend);
  test::run_sync(*f.backend, registry.beat("live-worker", json::object()));
  const std::string id = f.q().enqueue(gate_task());
  f.results().set(foreign_claim(id, "live-worker", "live-worker.1"));
  GateWorker w(*f.backend);
  w.start();
  REQUIRE(wait_until([&] { return w.worker.stats().held >= 2; }, 10s));  // set aside, came back, again
  CHECK(w.runs == 0);
  CHECK(f.results().get(id)->status == ResultStatus::pending);
  CHECK(f.q().get_queue_size("default") == 1);  // still queued: nothing was acked away
  // The live worker finishes and stores its outcome; the delivery set aside then settles from it.
  TaskResult finished = TaskResult::success(id, "from the live worker");
  finished.worker_id = "live-worker";
  f.results().set(finished);
  REQUIRE(wait_until([&] { return w.worker.stats().already_done == 1; }, 10s));
  REQUIRE(wait_until([&] { return f.q().get_queue_size("default") == 0; }, 5s));
  CHECK(w.runs == 0);
  CHECK(f.results().get(id)->result == "from the live worker");
}

TEST_CASE("an outcome whose compare-and-set fails because the claim's revision moved is read back from the leader "
          "and stored, not dropped",
          "[claims]") {
  // ack_wait 4 s: dropping the outcome would leave the task to come back after it and run again.
  Fixture f([](Config& c) { c.ack_wait = 4000ms; });
  const std::string id = f.q().enqueue(gate_task());
  GateWorker w(*f.backend);
  w.open = false;
  w.start();
  REQUIRE(wait_until([&] { return w.runs == 1; }, 10s));
  // What a replica that numbered the claim differently, or a write answered twice, looks like
  // to the run: its claim, unchanged, at another revision.
  const auto claim = f.results().get_record(id);
  REQUIRE(claim);
  REQUIRE(claim->result.status == ResultStatus::pending);
  f.results().set(claim->result);
  const auto released = std::chrono::steady_clock::now();
  w.open = true;
  const auto r = f.results().wait_for_result(id, 15s);
  REQUIRE(r);
  CHECK(r->status == ResultStatus::success);
  CHECK(std::chrono::steady_clock::now() - released < 3s);  // stored by this run, not after a redelivery
  REQUIRE(wait_until([&] { return f.q().get_queue_size("default") == 0; }, 5s));
  std::this_thread::sleep_for(4500ms);  // past ack_wait: nothing comes back
  CHECK(w.runs == 1);
  CHECK(f.count_events(id, EventType::completed) == 1);
}

TEST_CASE("outcome writes that fail together while the server is away are retried until stored, once",
          "[claims]") {
  Fixture f([](Config& c) {
    c.request_timeout = 700ms;
    c.ack_wait = 20'000ms;
  });
  const std::string id = f.q().enqueue(gate_task());
  GateWorker w(*f.backend);
  w.open = false;
  w.fail = true;  // a failure: result, then its event and the task state in parallel, then the dead letter
  w.start();
  REQUIRE(wait_until([&] { return w.runs == 1; }, 10s));
  f.server.stop();
  w.open = true;
  std::this_thread::sleep_for(2500ms);  // several request timeouts: every write fails meanwhile
  f.server.restart();
  const auto r = f.results().wait_for_result(id, 30s);
  REQUIRE(r);
  CHECK(r->status == ResultStatus::error);
  CHECK(r->error_type == "Refused");
  REQUIRE(wait_until([&] { return f.count_events(id, EventType::failed) == 1; }, 15s));
  REQUIRE(wait_until([&] { return f.q().list_dead_letters("default").size() == 1; }, 15s));
  REQUIRE(wait_until([&] { return f.q().get_queue_size("default") == 0; }, 15s));
  CHECK(w.runs == 1);
  CHECK(w.worker.stats().failed == 1);
}

TEST_CASE("a read through the stream's leader sees a key's value, revision and headers, and its delete marker",
          "[claims]") {
  Fixture f;
  f.results().ensure();
  detail::KvBucket bucket(omniq::detail::connection_of(*f.backend), f.config.results_bucket.name);
  const std::string value = "{\"binary\":\"\\u0001\\u00ff\"} with bytes \x01\x7f";
  const auto revision = test::run_sync(*f.backend, bucket.put("k1", value));
  const auto read = test::run_sync(*f.backend, bucket.get("k1", detail::Served::by_leader));
  REQUIRE(read);
  CHECK(read->value == value);
  CHECK(read->revision == revision);
  CHECK_FALSE(test::run_sync(*f.backend, bucket.get("missing", detail::Served::by_leader)));
  test::run_sync(*f.backend, bucket.erase("k1"));
  CHECK_FALSE(test::run_sync(*f.backend, bucket.get("k1", detail::Served::by_leader)));
  const auto marker = test::run_sync(
      *f.backend, detail::leader_get_last(omniq::detail::connection_of(*f.backend), bucket.stream(), bucket.subject("k1")));
  REQUIRE(marker);
  CHECK(marker->headers.find("KV-Operation") == "PURGE");
  // Created again over the delete marker, which the create finds through the leader.
  CHECK(test::run_sync(*f.backend, bucket.create("k1", "again")));
}

TEST_CASE("a worker without the task's handler never overwrites the outcome another worker stored", "[claims]") {
  Fixture f;
  const std::string id = f.q().enqueue(gate_task());
  {
    // A worker with the handler ran it and stored its success; its ack was lost.
    auto lease = f.q().dequeue({"default"}, 5s);
    REQUIRE(lease);
    TaskResult done = TaskResult::success(id, "from the first worker");
    done.worker_id = "first";
    done.metadata["message"] = lease->stream_sequence();
    f.results().set(done);
    lease->nack();
  }
  // The redelivery reaches a worker of an older deploy that does not know "gate".
  Worker other(*f.backend);
  other.handle("something_else", [](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    co_return nullptr;
  });
  auto serving = std::async(std::launch::async, [&] { other.run_sync(); });
  REQUIRE(wait_until([&] { return other.stats().already_done == 1; }, 10s));
  other.stop();
  serving.get();
  CHECK(f.results().get(id)->result == "from the first worker");
  CHECK(f.q().list_dead_letters("default").empty());
  CHECK(other.stats().failed == 0);
}

TEST_CASE("a result too large for the bucket fails the task once, with a clear reason, instead of rerunning it",
          "[claims]") {
  Fixture f([](Config& c) {
    c.results_bucket.max_value_size = 2048;
    c.ack_wait = 2000ms;
  });
  Worker worker(*f.backend);
  std::atomic<int> runs{0};
  worker.handle("big", [&](TaskContext&, const json&, const json&) -> asio::awaitable<json> {
    ++runs;
    co_return std::string(4096, 'x');
  });
  Task t = gate_task();
  t.func = "big";
  const std::string id = f.q().enqueue(t);
  auto serving = std::async(std::launch::async, [&] { worker.run_sync(); });
  const auto r = f.results().wait_for_result(id, 15s);
  REQUIRE(r);
  CHECK(r->status == ResultStatus::error);
  CHECK(r->error_type == "result_too_large");
  CHECK_THAT(r->error.value_or(""), Catch::Contains("max_value_size"));
  REQUIRE(wait_until([&] { return f.q().list_dead_letters("default").size() == 1; }, 10s));
  std::this_thread::sleep_for(2500ms);  // past ack_wait: it does not come back
  worker.stop();
  serving.get();
  CHECK(runs == 1);
  CHECK(f.q().get_queue_size("default") == 0);
}

TEST_CASE("a stored outcome whose event is missing gets it once, also from a message set aside meanwhile",
          "[claims]") {
  Fixture f;
  const std::string id = f.q().enqueue(gate_task());
  // The worker that ran it stored the result (from an earlier message of the task, which was
  // set aside while it ran) and died before logging the event.
  TaskResult done = TaskResult::success(id, "from the first worker");
  done.worker_id = "first";
  done.metadata["message"] = 999'999;
  done.metadata["outcome_event"] = "outcome-" + id + "-999999-7";
  f.results().set(done);
  GateWorker w(*f.backend);
  w.start();
  REQUIRE(wait_until([&] { return w.worker.stats().already_done == 1; }, 10s));
  REQUIRE(wait_until([&] { return f.q().get_queue_size("default") == 0; }, 5s));
  CHECK(w.runs == 0);
  CHECK(f.count_events(id, EventType::completed) == 1);
}
