// The Asio-native API against a real nats-server: every kind of completion token, error codes
// with their diagnostics beside the throwing forms, and per-operation cancellation.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "omniq/omniq.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

Task make_task(std::string queue = "default") {
  Task t;
  t.func = "work";
  t.queue_name = std::move(queue);
  return t;
}

// Runs `body` as a coroutine on a backend that shares an io_context run by this thread: the
// executor of the completion handlers is the application's, as in a real Asio program.
template <class Body>
void in_coroutine(const LocalServer& server, Body body, std::function<void(Config&)> tune = {}) {
  asio::io_context io;
  Config config = test::config_for(server);
  if (tune) tune(config);
  NatsBackend backend(io.get_executor(), config);
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await backend.async_connect();
        co_await body(backend);
        co_await backend.async_close();
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

TEST_CASE("every kind of completion token drives the task queue", "[async][tokens]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  TaskQueue& q = backend.task_queue();

  // use_future, from a plain thread.
  Task by_future = make_task();
  std::future<std::string> id = q.async_enqueue(by_future, asio::use_future);
  CHECK(id.get() == by_future.id);

  // A plain callback, run on the backend's executor (the handler has none of its own).
  Task by_callback = make_task();
  std::promise<std::pair<error_code, std::string>> called;
  q.async_enqueue(by_callback, [&](error_code ec, std::string got) {
    CHECK(backend.get_executor().target<asio::io_context::executor_type>()->running_in_this_thread());
    called.set_value({ec, got});
  });
  const auto [callback_ec, callback_id] = called.get_future().get();
  CHECK_FALSE(callback_ec);
  CHECK(callback_id == by_callback.id);

  // The default token and asio::deferred, co_awaited; as_tuple and redirect_error hand an
  // error over as a value, without an exception.
  Task by_default = make_task();
  Task by_deferred = make_task();
  Task bad = make_task("no spaces allowed");
  auto flow = [&]() -> asio::awaitable<void> {
    const std::string a = co_await q.async_enqueue(by_default);
    CHECK(a == by_default.id);
    // A deferred error code would be thrown as boost::system::system_error (no message).
    const std::string b = co_await q.async_enqueue(by_deferred, asio::deferred);
    CHECK(b == by_deferred.id);
    auto [bad_ec, none] = co_await q.async_enqueue(bad, asio::as_tuple(asio::use_awaitable));
    CHECK(bad_ec == errc::invalid_name);
    CHECK(none.empty());
    error_code redirected;
    co_await q.async_enqueue(bad, asio::redirect_error(asio::use_awaitable, redirected));
    CHECK(redirected == errc::invalid_name);
    CHECK_THROWS_AS(co_await q.async_enqueue(bad), Error);
  };
  test::run_sync(backend, flow());

  std::set<std::string> delivered;
  const auto until = Steady::now() + 10s;
  while (delivered.size() < 4 && Steady::now() < until) {
    for (auto& lease : backend.sync_task_queue().dequeue_batch({"default"}, 10, 1s)) {
      delivered.insert(lease.task().id);
      lease.ack();
    }
  }
  CHECK(delivered == std::set<std::string>{by_future.id, by_callback.id, by_default.id, by_deferred.id});
}

TEST_CASE("every kind of completion token drives the result store, event log and schedule store",
          "[async][tokens]") {
  LocalServer server;
  in_coroutine(server, [](NatsBackend& backend) -> asio::awaitable<void> {
    ResultStore& results = backend.result_store();
    EventLog& log = backend.event_log();
    ScheduleStore& schedules = backend.schedule_store();

    co_await results.async_set(TaskResult::success("t-1", 42));
    auto [ec, got] = co_await results.async_get("t-1", asio::as_tuple(asio::use_awaitable));
    CHECK_FALSE(ec);
    REQUIRE(got);
    CHECK(got->result == 42);
    const bool removed = co_await results.async_remove("t-1", asio::deferred);
    CHECK(removed);

    co_await log.async_log_event(events::cancelled("t-1"));
    const auto logged = co_await log.async_get_events("t-1");
    CHECK(logged.size() == 1);

    Schedule every = Schedule::from_interval(60s, "beat");
    co_await schedules.async_create_schedule(every);
    Diagnostics diag;
    auto [twice, revision] =
        co_await schedules.async_create_schedule(every, bind_diagnostics(diag, asio::as_tuple(asio::use_awaitable)));
    CHECK(twice == errc::already_exists);
    CHECK(revision == 0);
    CHECK_THAT(diag.message, Catch::Contains(every.id));
  });
}

TEST_CASE("error-code forms report the same errc and message the throwing forms throw", "[async][errors]") {
  test::ServerFixture f;
  SyncTaskQueue& q = f.backend->sync_task_queue();
  Task bad = make_task("bad queue");

  std::string thrown;
  errc thrown_kind{};
  try {
    q.enqueue(bad);
  } catch (const Error& e) {
    thrown = e.what();
    thrown_kind = e.kind();
  }
  REQUIRE_FALSE(thrown.empty());
  CHECK(thrown_kind == errc::invalid_name);

  error_code ec;
  Diagnostics diag;
  CHECK(q.enqueue(bad, ec, diag).empty());
  CHECK(ec == errc::invalid_name);
  CHECK(diag.message == thrown);
  CHECK(ec.message() == "invalid name");
  // Usable as a std::error_code too.
  const std::error_code std_ec = ec;
  CHECK(std_ec == errc::invalid_name);

  // The asynchronous forms say the same.
  Diagnostics async_diag;
  std::promise<error_code> async_done;
  f.backend->task_queue().async_enqueue(
      bad, bind_diagnostics(async_diag, [&](error_code e, const std::string&) { async_done.set_value(e); }));
  CHECK(async_done.get_future().get() == errc::invalid_name);
  CHECK(async_diag.message == thrown);
  try {
    test::run_sync(*f.backend, f.backend->task_queue().async_enqueue(bad));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == thrown);
  }

  // A success leaves both clear.
  const std::string stored = q.enqueue(make_task(), ec, diag);
  CHECK_FALSE(ec);
  CHECK(diag.message.empty());
  CHECK_FALSE(stored.empty());
}

TEST_CASE("a blocking call on the backend's own io thread fails with wrong_thread in both forms", "[async][errors]") {
  test::ServerFixture f;
  auto on_io = [&]() -> asio::awaitable<std::pair<error_code, bool>> {
    error_code ec;
    Diagnostics diag;
    f.backend->sync_task_queue().get_queue_size("default", ec, diag);
    bool threw = false;
    try {
      f.backend->sync_task_queue().get_queue_size("default");
    } catch (const Error& e) {
      threw = e.kind() == errc::wrong_thread;
    }
    co_return std::pair{ec, threw};
  };
  const auto [ec, threw] = test::run_sync(*f.backend, on_io());
  CHECK(ec == errc::wrong_thread);
  CHECK(threw);
}

TEST_CASE("a dequeue waiting on an empty queue is cancelled at once, and a task arriving then goes to another consumer",
          "[async][cancel]") {
  LocalServer server;
  NatsBackend waiting(test::config_for(server));
  NatsBackend other(test::config_for(server));
  ConnectionScope s1(waiting);
  ConnectionScope s2(other);
  waiting.sync_task_queue().ensure();
  CHECK(waiting.sync_task_queue().get_queue_size("cancelq") == 0);  // its consumers exist

  asio::cancellation_signal signal;
  std::promise<std::pair<error_code, bool>> done;
  waiting.task_queue().async_dequeue({"cancelq"}, 30s,
                                     asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, std::optional<Lease> l) {
                                       done.set_value({ec, l.has_value()});
                                     }));
  std::this_thread::sleep_for(300ms);  // waiting now, its watchers pulling
  const auto cancelled_at = Steady::now();
  asio::post(waiting.get_executor(), [&] { signal.emit(asio::cancellation_type::terminal); });
  auto outcome = done.get_future();
  REQUIRE(outcome.wait_for(2s) == std::future_status::ready);
  const auto took = Steady::now() - cancelled_at;
  const auto [ec, got] = outcome.get();
  CHECK(ec == asio::error::operation_aborted);
  CHECK_FALSE(got);
  CHECK(took < 100ms);

  // A task enqueued right after is not held by the cancelled side: another consumer gets it
  // long before ack_wait (30 s) would have handed it back.
  Task t = make_task("cancelq");
  other.sync_task_queue().enqueue(t);
  const auto enqueued_at = Steady::now();
  auto lease = other.sync_task_queue().dequeue({"cancelq"}, 5s);
  REQUIRE(lease);
  CHECK(lease->task().id == t.id);
  CHECK(Steady::now() - enqueued_at < 3s);
  // At most once through the cancelled side's pull still in flight, which hands it back.
  CHECK(lease->delivery() <= 2);
  lease->ack();
}

TEST_CASE("the awaitable operators' timeout idiom works on a dequeue, a result wait and a follower",
          "[async][cancel]") {
  LocalServer server;
  in_coroutine(server, [](NatsBackend& backend) -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    co_await backend.task_queue().async_ensure();
    // Named, not braced temporaries inside co_await: g++ 12 rejects those ("array used as
    // initializer").
    const std::vector<std::string> raceq{"raceq"};

    auto race = [&](auto op) -> asio::awaitable<std::pair<std::size_t, Steady::duration>> {
      asio::steady_timer timer(ex, 50ms);
      const auto start = Steady::now();
      auto waited = timer.async_wait(asio::use_awaitable);
      auto either = std::move(op) || std::move(waited);
      auto which = co_await std::move(either);
      co_return std::pair{which.index(), Steady::now() - start};
    };

    auto dequeued = co_await race(backend.task_queue().async_dequeue(raceq, 30s));
    CHECK(dequeued.first == 1);  // the timer won
    CHECK(dequeued.second < 1s);

    auto result = co_await race(backend.result_store().async_wait_for_result("never", 30s));
    CHECK(result.first == 1);
    CHECK(result.second < 1s);

    EventFilter only_race_task{.task_id = "race-task"};
    EventFollower follower = co_await backend.event_log().async_follow(only_race_task);
    auto next = co_await race(follower.async_next(30s));
    CHECK(next.first == 1);
    CHECK(next.second < 1s);

    // The follower still works after a cancelled wait: nothing lost, nothing repeated.
    co_await backend.event_log().async_log_event(events::cancelled("race-task"));
    auto event = co_await follower.async_next(5s);
    REQUIRE(event);
    CHECK(event->task_id == "race-task");
    auto none = co_await follower.async_next(200ms);
    CHECK_FALSE(none);
    co_await follower.async_close();

    // And a queue whose dequeue was cancelled still delivers to the next dequeue.
    Task t = make_task("raceq");
    co_await backend.task_queue().async_enqueue(t);
    std::optional<Lease> lease = co_await backend.task_queue().async_dequeue(raceq, 5s);
    REQUIRE(lease);
    CHECK(lease->task().id == t.id);
    co_await lease->async_ack();
  });
}

TEST_CASE("a result wait and a follower's next cancelled through a signal complete with operation_aborted at once",
          "[async][cancel]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  backend.sync_result_store().ensure();

  auto cancel_after = [&](auto start) {
    asio::cancellation_signal signal;
    std::promise<error_code> done;
    start(signal, done);
    std::this_thread::sleep_for(300ms);
    const auto at = Steady::now();
    asio::post(backend.get_executor(), [&] { signal.emit(asio::cancellation_type::terminal); });
    auto f = done.get_future();
    REQUIRE(f.wait_for(2s) == std::future_status::ready);
    CHECK(Steady::now() - at < 100ms);
    return f.get();
  };

  const error_code waited = cancel_after([&](asio::cancellation_signal& signal, std::promise<error_code>& done) {
    backend.result_store().async_wait_for_result(
        "nobody", 30s,
        asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, std::optional<TaskResult>) { done.set_value(ec); }));
  });
  CHECK(waited == asio::error::operation_aborted);

  const error_code next = cancel_after([&](asio::cancellation_signal& signal, std::promise<error_code>& done) {
    backend.event_log().async_follow(EventFilter{.task_id = "quiet"}, [&, &sig = signal](error_code ec, EventFollower f) {
      REQUIRE_FALSE(ec);
      auto kept = std::make_shared<EventFollower>(std::move(f));
      kept->async_next(30s, asio::bind_cancellation_slot(sig.slot(), [&, kept](error_code e, std::optional<TaskEvent>) {
                         done.set_value(e);
                       }));
    });
  });
  CHECK(next == asio::error::operation_aborted);
}

TEST_CASE("cancelling a worker's run stops it gracefully and completes with operation_aborted", "[async][cancel]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  WorkerOptions options;
  options.queues = {"runq"};
  options.concurrency = 2;
  Worker worker(backend, options);
  std::atomic<int> ran{0};
  worker.handle("work", [&](TaskContext&, const nlohmann::json&, const nlohmann::json&) -> asio::awaitable<nlohmann::json> {
    ++ran;
    co_return nlohmann::json(1);
  });
  asio::cancellation_signal signal;
  std::promise<error_code> done;
  worker.async_run(asio::bind_cancellation_slot(signal.slot(), [&](error_code ec) { done.set_value(ec); }));
  Task t = make_task("runq");
  backend.sync_task_queue().enqueue(t);
  CHECK(backend.sync_result_store().wait_for_result(t.id, 10s));
  asio::post(backend.get_executor(), [&] { signal.emit(asio::cancellation_type::terminal); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  CHECK(f.get() == asio::error::operation_aborted);
  CHECK(ran == 1);
  CHECK(worker.stats().completed == 1);
}
