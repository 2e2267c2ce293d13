// The task queue against a real nats-server: durable delivery, leases, priorities, delays,
// idempotency, task state, dead letters and bad input.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <future>
#include <thread>

#include <nats/nats.h>

#include "omniq/backend.hpp"
#include "omniq/detail/jetstream.hpp"
#include "omniq/error.hpp"
#include "omniq/task_queue.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

struct Fixture : test::ServerFixture {
  using ServerFixture::ServerFixture;
  SyncTaskQueue& q() { return backend->sync_task_queue(); }
};

Task make_task(std::string func = "work", std::string queue = "default", int priority = 0) {
  Task t;
  t.func = std::move(func);
  t.queue_name = std::move(queue);
  t.priority = priority;
  return t;
}


}  // namespace

TEST_CASE("a task enqueued before any worker existed is delivered with every field intact", "[task_queue]") {
  LocalServer server;
  Task sent = make_task("reports.build", "reports", 7);
  sent.args = {1, "two", {{"three", 3}}};
  sent.kwargs = {{"format", "pdf"}, {"pages", {1, 2}}};
  sent.ttl = std::chrono::hours(1);
  sent.max_retries = 5;
  sent.retry_delay = 1500ms;
  sent.dependencies = {"dep-1"};
  sent.callbacks = {"notify"};
  sent.metadata = {{"owner", "ops"}};
  {
    NatsBackend producer(test::config_for(server));
    ConnectionScope scope(producer);
    CHECK(producer.sync_task_queue().enqueue(sent) == sent.id);
  }  // the producer is gone before any worker connects
  NatsBackend worker(test::config_for(server));
  ConnectionScope scope(worker);
  auto lease = worker.sync_task_queue().dequeue({"reports"}, 2s);
  REQUIRE(lease);
  const Task& got = lease->task();
  CHECK(got.id == sent.id);
  CHECK(got.func == sent.func);
  CHECK(got.args == sent.args);
  CHECK(got.kwargs == sent.kwargs);
  CHECK(got.queue_name == "reports");
  CHECK(got.priority == 7);
  CHECK(got.created_at == sent.created_at);
  CHECK(got.ttl == sent.ttl);
  CHECK(got.max_retries == 5);
  CHECK(got.retry_delay == sent.retry_delay);
  CHECK(got.dependencies == sent.dependencies);
  CHECK(got.callbacks == sent.callbacks);
  CHECK(got.metadata == sent.metadata);
  CHECK(lease->delivery() == 1);
  lease->ack();
  CHECK_FALSE(worker.sync_task_queue().dequeue({"reports"}, 200ms));
  CHECK(worker.sync_task_queue().get_queue_size("reports") == 0);
}

TEST_CASE("4 concurrent consumers drain 10 000 tasks: each delivered once, none lost, size 0", "[task_queue][load]") {
  LocalServer server;
  constexpr int n = 10'000;
  std::vector<Task> tasks;
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(make_task());
    ids.insert(tasks.back().id);
  }
  {
    NatsBackend producer(test::config_for(server));
    ConnectionScope scope(producer);
    REQUIRE(producer.sync_task_queue().enqueue_batch(tasks).size() == n);
  }
  std::mutex mu;
  std::map<std::string, int> deliveries;
  std::atomic<int> acked{0};
  const auto deadline = Steady::now() + 90s;
  std::vector<std::thread> consumers;
  for (int w = 0; w < 4; ++w) {
    consumers.emplace_back([&] {
      NatsBackend backend(test::config_for(server));  // a connection of its own, like a worker process
      ConnectionScope scope(backend);
      auto& q = backend.sync_task_queue();
      while (acked < n && Steady::now() < deadline) {
        for (auto& lease : q.dequeue_batch({"default"}, 64, 200ms)) {
          {
            std::lock_guard lock(mu);
            ++deliveries[lease.task().id];
          }
          lease.ack();
          ++acked;
        }
      }
    });
  }
  for (auto& t : consumers) t.join();
  CHECK(acked == n);
  CHECK(deliveries.size() == static_cast<std::size_t>(n));
  int duplicates = 0;
  for (auto& [id, count] : deliveries) {
    if (count != 1) ++duplicates;
    CHECK(ids.count(id) == 1);
  }
  CHECK(duplicates == 0);
  NatsBackend checker(test::config_for(server));
  ConnectionScope scope(checker);
  CHECK(checker.sync_task_queue().get_queue_size("default") == 0);
}

TEST_CASE("a task not acked is redelivered after ack_wait, in_progress holds it, nack(delay) delays it",
          "[task_queue][lease]") {
  Fixture f([](Config& c) { c.ack_wait = 1000ms; });
  auto& q = f.q();

  SECTION("not acked: redelivered after ack_wait") {
    q.enqueue(make_task());
    const auto first_at = Steady::now();
    auto first = q.dequeue({"default"}, 1s);
    REQUIRE(first);
    auto again = q.dequeue({"default"}, 5s);
    REQUIRE(again);
    CHECK(Steady::now() - first_at >= 900ms);
    CHECK(again->task().id == first->task().id);
    CHECK(again->delivery() == 2);
    again->ack();
  }
  SECTION("in_progress keeps it from redelivery") {
    q.enqueue(make_task());
    auto lease = q.dequeue({"default"}, 1s);
    REQUIRE(lease);
    std::atomic<bool> redelivered{false};
    std::thread other([&] {
      NatsBackend second(f.config);
      ConnectionScope scope(second);
      if (second.sync_task_queue().dequeue({"default"}, 2500ms)) redelivered = true;
    });
    for (int i = 0; i < 8; ++i) {  // 3.2 s of work, over three times ack_wait
      std::this_thread::sleep_for(400ms);
      lease->in_progress();
    }
    other.join();
    CHECK_FALSE(redelivered);
    lease->ack();
  }
  SECTION("nack(delay) redelivers after about that delay") {
    q.enqueue(make_task());
    auto lease = q.dequeue({"default"}, 1s);
    REQUIRE(lease);
    const auto nacked_at = Steady::now();
    lease->nack(700ms);
    CHECK_FALSE(q.dequeue({"default"}, 300ms));
    auto again = q.dequeue({"default"}, 3s);
    REQUIRE(again);
    const auto waited = Steady::now() - nacked_at;
    CHECK(waited >= 650ms);
    CHECK(waited < 2500ms);
    again->ack();
  }
}

TEST_CASE("higher priority tasks waiting in a queue are served first, earlier queues drain first",
          "[task_queue][priority]") {
  Fixture f;
  auto& q = f.q();
  SECTION("within a queue") {
    // The lane watchers run (see docs/task-queue.md: at a cold start the first lane to answer
    // may be served first); then every band's tasks arrive while they wait.
    REQUIRE_FALSE(q.dequeue({"default"}, 300ms));
    std::vector<Task> batch;
    for (int i = 0; i < 3; ++i) batch.push_back(make_task("low", "default", -5));
    for (int i = 0; i < 3; ++i) batch.push_back(make_task("normal", "default", 0));
    for (int i = 0; i < 3; ++i) batch.push_back(make_task("high", "default", 50));
    batch.push_back(make_task("urgent", "default", 500));
    q.enqueue_batch(batch);
    // Waiting: delivered to the watchers (docs/task-queue.md: a dequeue takes among what has
    // arrived, and a task enqueued a moment ago may still be on its way).
    std::this_thread::sleep_for(200ms);
    std::vector<std::string> order;
    while (auto lease = q.dequeue({"default"}, 300ms)) {
      order.push_back(lease->task().func);
      lease->ack();
    }
    CHECK(order == std::vector<std::string>{"urgent", "high", "high", "high", "normal", "normal", "normal", "low",
                                            "low", "low"});
  }
  SECTION("across queues, in the order given") {
    for (int i = 0; i < 3; ++i) q.enqueue(make_task("regular", "default"));
    for (int i = 0; i < 3; ++i) q.enqueue(make_task("important", "critical"));
    std::vector<std::string> order;
    while (auto lease = q.dequeue({"critical", "default"}, 300ms)) {
      order.push_back(lease->task().func);
      lease->ack();
    }
    CHECK(order == std::vector<std::string>{"important", "important", "important", "regular", "regular", "regular"});
  }
}

TEST_CASE("a delayed task is not delivered before run_at and is delivered after", "[task_queue][delay]") {
  Fixture f;
  auto& q = f.q();
  Task t = make_task();
  t.run_at = now() + 1500ms;
  q.enqueue(t);
  CHECK(q.get_queue_size("default") == 1);
  CHECK_FALSE(q.dequeue({"default"}, 700ms));
  auto lease = q.dequeue({"default"}, 4s);
  REQUIRE(lease);
  CHECK(now() >= *t.run_at);
  CHECK(lease->task().id == t.id);
  lease->ack();
  CHECK(q.get_queue_size("default") == 0);
}

TEST_CASE("an expired task is not executed, it is marked expired", "[task_queue][expiry]") {
  Fixture f;
  auto& q = f.q();
  Task t = make_task();
  t.ttl = 100ms;
  q.enqueue(t);
  std::this_thread::sleep_for(200ms);
  CHECK_FALSE(q.dequeue({"default"}, 300ms));
  auto record = q.get_task(t.id);
  REQUIRE(record);
  CHECK(record->task.status == TaskStatus::expired);
  CHECK(q.get_queue_size("default") == 0);
}

TEST_CASE("the same task id enqueued twice is one task", "[task_queue][idempotency]") {
  Fixture f;
  auto& q = f.q();
  Task t = make_task();
  q.enqueue(t);
  q.enqueue(t);
  q.enqueue_batch({t, t});
  CHECK(q.get_queue_size("default") == 1);
  auto lease = q.dequeue({"default"}, 1s);
  REQUIRE(lease);
  lease->ack();
  CHECK_FALSE(q.dequeue({"default"}, 300ms));
}

TEST_CASE("a cancelled pending task is never delivered", "[task_queue][state]") {
  Fixture f;
  auto& q = f.q();
  Task keep = make_task("keep");
  Task drop = make_task("drop");
  q.enqueue(drop);
  q.enqueue(keep);
  CHECK(q.cancel_task(drop.id));
  CHECK_FALSE(q.cancel_task(drop.id));  // already cancelled
  CHECK(q.get_task(drop.id)->task.status == TaskStatus::cancelled);
  auto lease = q.dequeue({"default"}, 1s);
  REQUIRE(lease);
  CHECK(lease->task().id == keep.id);
  lease->ack();
  CHECK_FALSE(q.dequeue({"default"}, 300ms));
  CHECK_FALSE(q.cancel_task("no-such-task"));
}

TEST_CASE("task state: get, compare-and-swap update, list, delete, cleanup", "[task_queue][state]") {
  Fixture f;
  auto& q = f.q();
  Task a = make_task("a", "alpha");
  Task b = make_task("b", "alpha");
  Task c = make_task("c", "beta");
  q.enqueue_batch({a, b, c});

  auto record = q.get_task(a.id);
  REQUIRE(record);
  CHECK(record->revision == 0);  // only enqueued so far
  CHECK(record->task.func == "a");
  CHECK_FALSE(q.get_task("missing"));

  SECTION("compare-and-swap: a stale revision loses and is a value, not an exception") {
    Task changed = record->task;
    changed.metadata["note"] = "first";
    auto rev = q.update_task(changed, 0);
    REQUIRE(rev);
    changed.metadata["note"] = "second";
    CHECK_FALSE(q.update_task(changed, 0));  // lost: the revision moved on
    CHECK(q.update_task(changed, *rev));
    CHECK(q.get_task(a.id)->task.metadata["note"] == "second");
  }
  SECTION("list with queue, status, limit and offset") {
    auto alpha = q.list_tasks("alpha");
    REQUIRE(alpha.size() == 2);
    CHECK(alpha[0].id == a.id);
    CHECK(alpha[1].id == b.id);
    CHECK(q.list_tasks(std::nullopt, TaskStatus::pending).size() == 3);
    auto page = q.list_tasks(std::nullopt, std::nullopt, 1, 1);
    REQUIRE(page.size() == 1);
    CHECK(page[0].id == b.id);
    REQUIRE(q.cancel_task(c.id));
    auto cancelled = q.list_tasks(std::nullopt, TaskStatus::cancelled);
    REQUIRE(cancelled.size() == 1);
    CHECK(cancelled[0].id == c.id);
    CHECK(q.list_tasks("beta", TaskStatus::pending).empty());
  }
  SECTION("delete removes the task and its state") {
    CHECK(q.delete_task(b.id));
    CHECK_FALSE(q.get_task(b.id));
    CHECK_FALSE(q.delete_task(b.id));
    CHECK(q.get_queue_size("alpha") == 1);
  }
  SECTION("cleanup removes expired pending tasks and marks them") {
    Task short_lived = make_task("short", "alpha");
    short_lived.ttl = 50ms;
    q.enqueue(short_lived);
    std::this_thread::sleep_for(150ms);
    CHECK(q.cleanup_expired_tasks() == 1);
    CHECK(q.get_task(short_lived.id)->task.status == TaskStatus::expired);
    CHECK(q.get_queue_size("alpha") == 2);
  }
}

TEST_CASE("a task delivered more than max_deliver times is dead-lettered and can be requeued",
          "[task_queue][dead_letter]") {
  Fixture f([](Config& c) {
    c.ack_wait = 400ms;
    c.max_deliver = 2;
  });
  auto& q = f.q();
  Task poison = make_task("poison");
  Task healthy = make_task("healthy");
  q.enqueue(poison);
  for (int i = 0; i < 2; ++i) {  // taken and abandoned twice (a worker that dies each time)
    auto lease = q.dequeue({"default"}, 2s);
    REQUIRE(lease);
    CHECK(lease->task().id == poison.id);
  }
  // Past ack_wait the poison task is delivered a third time: dequeue dead-letters it instead
  // of returning it. Dequeue until that happened (bounded: the server redelivers after 400 ms).
  std::vector<DeadLetter> letters;
  for (const auto until = std::chrono::steady_clock::now() + 10s;
       letters.empty() && std::chrono::steady_clock::now() < until;) {
    REQUIRE_FALSE(q.dequeue({"default"}, 500ms));
    letters = q.list_dead_letters();
  }
  q.enqueue(healthy);
  auto next = q.dequeue({"default"}, 3s);  // the queue goes on
  REQUIRE(next);
  CHECK(next->task().id == healthy.id);
  next->ack();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].task_id == poison.id);
  CHECK(letters[0].queue_name == "default");
  CHECK_THAT(letters[0].reason, Catch::Contains("max_deliver 2"));
  REQUIRE(letters[0].task);
  CHECK(letters[0].task->func == "poison");

  CHECK(q.requeue_dead_letter(poison.id));
  CHECK(q.list_dead_letters().empty());
  auto again = q.dequeue({"default"}, 2s);
  REQUIRE(again);
  CHECK(again->task().id == poison.id);
  CHECK(again->task().retry_count == 0);
  again->dead_letter("handler always fails");
  auto after = q.list_dead_letters("default");
  REQUIRE(after.size() == 1);
  CHECK(after[0].reason == "handler always fails");
  CHECK_FALSE(q.requeue_dead_letter("unknown-id"));
}

TEST_CASE("a malformed message on a task subject is dead-lettered with its reason and dequeue goes on",
          "[task_queue][bad_input]") {
  Fixture f;
  auto& q = f.q();
  q.ensure();
  test::publish_raw(f.server.url(), "omniq.tasks.default.normal.garbage-1", "{this is not json");
  Task good = make_task("good");
  q.enqueue(good);
  auto lease = q.dequeue({"default"}, 2s);
  REQUIRE(lease);
  CHECK(lease->task().id == good.id);
  lease->ack();
  auto letters = q.list_dead_letters();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].task_id == "garbage-1");
  CHECK_THAT(letters[0].reason, Catch::Contains("cannot decode task"));
  CHECK(letters[0].raw == "{this is not json");
  CHECK_FALSE(letters[0].task);
}

TEST_CASE("bad names are refused before any network call", "[task_queue][bad_input]") {
  asio::io_context io;  // never connected: a network call would fail with not_connected
  Config c;
  NatsBackend backend(io.get_executor(), c);
  for (std::string bad : {"a.b", "a*", "a>", "a b", "a\tb", "a\r\nb", "", "caf\xc3\xa9"}) {
    Task t = make_task("f", bad);
    try {
      test::run(io, backend.task_queue().async_enqueue(t));
      FAIL("accepted queue name " << bad);
    } catch (const Error& e) {
      CHECK(e.kind() == errc::invalid_name);
      CHECK_THAT(e.what(), Catch::Contains("queue_name"));
    }
    try {
      test::run(io, backend.task_queue().async_dequeue({bad}));
      FAIL("accepted queue name " << bad);
    } catch (const Error& e) {
      CHECK(e.kind() == errc::invalid_name);
    }
  }
  Task bad_id = make_task();
  bad_id.id = "id.with.dots";
  try {
    test::run(io, backend.task_queue().async_enqueue(bad_id));
    FAIL("accepted an id with dots");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_name);
    CHECK_THAT(e.what(), Catch::Contains("'.'"));
  }
}

TEST_CASE("a task over max_payload is refused naming the limit, a batch with one bad task stores nothing",
          "[task_queue][bad_input]") {
  Fixture f;
  auto& q = f.q();
  Task big = make_task();
  big.args = {std::string(1024 * 1024, 'x')};
  try {
    q.enqueue(big);
    FAIL("accepted a task over max_payload");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::payload_too_large);
    CHECK_THAT(e.what(), Catch::Contains("1048576"));
  }
  std::vector<Task> batch{make_task(), make_task(), make_task("f", "bad queue")};
  try {
    q.enqueue_batch(batch);
    FAIL("accepted a batch with a bad task");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_name);
    CHECK_THAT(e.what(), Catch::Contains("task 2 of 3") && Catch::Contains("nothing was enqueued"));
  }
  CHECK(q.get_queue_size("default") == 0);
  CHECK(f.backend->is_connected());
}

TEST_CASE("a full tasks stream refuses new tasks clearly and keeps every stored one", "[task_queue][bad_input]") {
  Fixture f([](Config& c) { c.tasks_stream.max_msgs = 5; });
  auto& q = f.q();
  std::set<std::string> stored;
  for (int i = 0; i < 5; ++i) stored.insert(q.enqueue(make_task()));
  try {
    q.enqueue(make_task());
    FAIL("a full stream accepted a task");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::stream_full);
    CHECK_THAT(e.what(), Catch::Contains("enqueueing task"));
  }
  std::set<std::string> drained;
  while (auto lease = q.dequeue({"default"}, 300ms)) {
    drained.insert(lease->task().id);
    lease->ack();
  }
  CHECK(drained == stored);
}

TEST_CASE("the blocking twin works from plain threads and refuses the backend's own io thread",
          "[task_queue][sync]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  std::thread runner([&] {
    auto guard = asio::make_work_guard(io);
    io.run_for(20s);
  });
  backend.connect_sync();
  auto& q = backend.sync_task_queue();
  const std::string id = q.enqueue(make_task());
  CHECK(q.get_task(id));
  auto lease = q.dequeue({"default"}, 1s);
  REQUIRE(lease);
  // From inside the io thread the twin must refuse rather than wait for itself.
  std::promise<std::string> outcome;
  asio::post(io, [&] {
    try {
      q.get_queue_size("default");
      outcome.set_value("no error");
    } catch (const Error& e) {
      outcome.set_value(e.kind() == errc::wrong_thread ? "wrong_thread" : e.what());
    }
  });
  CHECK(outcome.get_future().get() == "wrong_thread");
  lease->ack();
  backend.close_sync();
  io.stop();
  runner.join();
}

TEST_CASE("a process that stops dequeuing hands its prefetched tasks back to the others at once",
          "[task_queue][prefetch]") {
  Fixture f;  // ack_wait is the default 30 s: nothing here may wait for it
  std::vector<Task> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(make_task());
  f.q().enqueue_batch(batch);
  auto first = f.q().dequeue({"default"}, 2s);  // its watchers prefetch the other nine
  REQUIRE(first);
  first->ack();
  NatsBackend other(f.config);
  ConnectionScope scope(other);
  const auto started = Steady::now();
  std::set<std::string> got;
  while (got.size() < 9 && Steady::now() - started < 10s)
    for (auto& lease : other.sync_task_queue().dequeue_batch({"default"}, 9, 1s)) {
      got.insert(lease.task().id);
      lease.ack();
    }
  CHECK(got.size() == 9);
  CHECK(Steady::now() - started < 5s);
  CHECK(f.q().get_queue_size("default") == 0);
}

TEST_CASE("a closed backend takes no more deliveries: a task enqueued just after goes to another consumer at once",
          "[task_queue][connection]") {
  LocalServer server;
  NatsBackend first(test::config_for(server));
  first.connect_sync();
  // Its lane watchers hold long-poll pulls open now; the close must end them with the socket.
  CHECK_FALSE(first.sync_task_queue().dequeue({"default"}, 300ms));
  first.close_sync();
  NatsBackend second(test::config_for(server));
  ConnectionScope scope(second);
  const Task t = make_task();
  second.sync_task_queue().enqueue(t);
  // Taken by a closed connection's pull, it would wait ack_wait (30 s) for a redelivery.
  auto lease = second.sync_task_queue().dequeue({"default"}, 5s);
  REQUIRE(lease);
  CHECK(lease->task().id == t.id);
  lease->ack();
}

TEST_CASE("enqueue rides out a server restart: it returns once the server is back, and the task is stored once",
          "[task_queue][producer]") {
  Fixture f([](Config& c) { c.request_timeout = 700ms; });
  f.q().enqueue(make_task());  // the stream exists; the producer is warm
  REQUIRE(f.q().get_queue_size("default") == 1);
  f.server.stop();
  const Task t = make_task();
  auto enqueued = std::async(std::launch::async, [&] { return f.q().enqueue(t); });
  auto batch = std::async(std::launch::async, [&] {
    std::vector<Task> tasks{make_task(), make_task(), make_task()};
    return f.q().enqueue_batch(tasks);
  });
  std::this_thread::sleep_for(2000ms);  // both wait meanwhile, past several request timeouts
  f.server.restart();
  CHECK(enqueued.get() == t.id);
  CHECK(batch.get().size() == 3);
  CHECK(f.q().get_queue_size("default") == 5);
}

TEST_CASE("enqueue gives up after publish_timeout with a clear error when the server stays away",
          "[task_queue][producer]") {
  Fixture f([](Config& c) {
    c.request_timeout = 500ms;
    c.publish_timeout = 1500ms;
  });
  f.q().enqueue(make_task());
  f.server.stop();
  const auto started = Steady::now();
  try {
    f.q().enqueue(make_task());
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(is_transient(e.kind()));  // the caller may try again later, with the same task
    CHECK_THAT(e.what(), Catch::Contains("enqueueing task"));
  }
  const auto took = Steady::now() - started;
  CHECK(took >= 1000ms);  // retried, not given up at the first failure
  CHECK(took < 6s);
}

TEST_CASE("enqueue provisions and checks only the tasks stream, not the dead-letter stream or task state",
          "[task_queue][producer]") {
  Fixture f;
  f.q().enqueue(make_task());
  auto info = [&](const std::string& stream) {
    return test::run_sync(*f.backend, [](detail::Connection& c, std::string s) -> asio::awaitable<bool> {
      try {
        co_await detail::api_request(c, "STREAM.INFO." + s, nullptr, "reading " + s);
        co_return true;
      } catch (const Error&) {
        co_return false;
      }
    }(omniq::detail::connection_of(*f.backend), stream));
  };
  CHECK(info(f.config.tasks_stream.name));
  CHECK_FALSE(info(f.config.dead_letter_stream.name));
  CHECK_FALSE(info("KV_" + f.config.task_state_bucket.name));
}
