// Streams and buckets: created on first use with the configured settings, read back from the
// server, brought to the configuration when they exist, and refused clearly when they cannot.
#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>

#include <nats/nats.h>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/task_queue.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;

namespace {

// Stream names as nats.c reports them, independent of omniq's own reporting.
std::set<std::string> stream_names(const std::string& url) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK);
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  jsStreamNamesList* list = nullptr;
  std::set<std::string> names;
  natsStatus s = js_StreamNames(&list, js, nullptr, nullptr);
  if (s == NATS_OK) {
    for (int i = 0; i < list->Count; ++i) names.insert(list->List[i]);
    jsStreamNamesList_Destroy(list);
  } else {
    REQUIRE(s == NATS_NOT_FOUND);  // no streams at all
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return names;
}

}  // namespace

TEST_CASE("streams and buckets are created with the configured settings", "[provisioning]") {
  LocalServer server;
  Config c = test::config_for(server);
  c.tasks_stream.max_msgs = 5000;
  c.tasks_stream.duplicate_window = 30s;
  c.events_stream.max_age = 1h;
  c.events_stream.max_msgs = 1000;
  c.events_stream.storage = StorageType::memory;
  c.results_bucket.ttl = 60s;
  c.results_bucket.history = 2;
  c.schedules_bucket.history = 5;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), c);
  test::run(io, backend.async_connect());

  const StreamReport tasks = test::run(io, backend.task_queue().async_info());
  CHECK(tasks.name == "OMNIQ_TASKS");
  CHECK(tasks.subjects == std::vector<std::string>{"omniq.tasks.>"});
  CHECK(tasks.retention == "workqueue");
  CHECK(tasks.discard == "new");  // a full queue rejects new work, never drops accepted tasks
  CHECK(tasks.storage == "file");
  CHECK(tasks.max_msgs == 5000);
  CHECK(tasks.duplicate_window == 30s);

  const StreamReport events = test::run(io, backend.event_log().async_info());
  CHECK(events.name == "OMNIQ_EVENTS");
  CHECK(events.subjects == std::vector<std::string>{"omniq.events.>"});
  CHECK(events.retention == "limits");
  CHECK(events.storage == "memory");
  CHECK(events.max_age == 1h);
  CHECK(events.max_msgs == 1000);

  const BucketReport results = test::run(io, backend.result_store().async_info());
  CHECK(results.stream == "KV_omniq_results");
  CHECK(results.ttl == 60s);
  CHECK(results.history == 2);
  CHECK(results.allow_direct);

  const BucketReport schedules = test::run(io, backend.schedule_store().async_info());
  CHECK(schedules.stream == "KV_omniq_schedules");
  CHECK(schedules.ttl == 0s);  // schedules never expire
  CHECK(schedules.history == 5);

  CHECK(stream_names(server.url()) ==
        std::set<std::string>{"OMNIQ_TASKS", "OMNIQ_DLQ", "KV_omniq_tasks", "OMNIQ_EVENTS", "KV_omniq_results",
                                 "KV_omniq_schedules"});
}

TEST_CASE("the defaults are the seed's: 7-day results TTL, 30-day and 10 M events", "[provisioning]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  CHECK(backend.sync_result_store().info().ttl == std::chrono::hours(24 * 7));
  const auto events = backend.sync_event_log().info();
  CHECK(events.max_age == std::chrono::hours(24 * 30));
  CHECK(events.max_msgs == 10'000'000);
}

TEST_CASE("a storage part that is never used creates no stream or bucket", "[provisioning]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  CHECK(stream_names(server.url()).empty());  // connecting alone creates nothing
  backend.sync_result_store().ensure();
  CHECK(stream_names(server.url()) == std::set<std::string>{"KV_omniq_results"});
}

TEST_CASE("an existing stream is brought to the configured limits and keeps its messages", "[provisioning]") {
  LocalServer server;
  asio::io_context io;
  {
    Config c = test::config_for(server);
    c.events_stream.max_msgs = 100;
    NatsBackend first(io.get_executor(), c);
    test::run(io, first.async_connect());
    test::run(io, first.event_log().async_ensure());
    for (int i = 0; i < 3; ++i)
      test::run(io, omniq::detail::connection_of(first).async_request({.subject = "omniq.events.enqueued.t" + std::to_string(i)},
                                                     asio::use_awaitable));
    test::run(io, first.async_close());
  }
  Config c = test::config_for(server);
  c.events_stream.max_msgs = 200;
  NatsBackend second(io.get_executor(), c);
  test::run(io, second.async_connect());
  const auto report = test::run(io, second.event_log().async_info());
  CHECK(report.max_msgs == 200);
  CHECK(report.messages == 3);
}

TEST_CASE("a stream whose storage type differs from the configuration is a clear error", "[provisioning]") {
  LocalServer server;
  asio::io_context io;
  {
    Config c = test::config_for(server);
    c.events_stream.storage = StorageType::memory;
    NatsBackend first(io.get_executor(), c);
    test::run(io, first.async_connect());
    test::run(io, first.event_log().async_ensure());
  }
  NatsBackend second(io.get_executor(), test::config_for(server));
  test::run(io, second.async_connect());
  try {
    test::run(io, second.event_log().async_ensure());
    FAIL("expected invalid_config");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_config);
    CHECK_THAT(e.what(), Catch::Contains("OMNIQ_EVENTS") && Catch::Contains("storage"));
  }
}

TEST_CASE("a tasks stream that is not a work queue is refused, naming the retention", "[provisioning]") {
  LocalServer server;
  {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    REQUIRE(natsConnection_ConnectTo(&nc, server.url().c_str()) == NATS_OK);
    REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "OMNIQ_TASKS";
    const char* subjects[] = {"omniq.tasks.>"};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    REQUIRE(js_AddStream(nullptr, js, &cfg, nullptr, nullptr) == NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  try {
    backend.sync_task_queue().ensure();
    FAIL("expected invalid_config");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_config);
    CHECK_THAT(e.what(), Catch::Contains("OMNIQ_TASKS") && Catch::Contains("retention"));
  }
}

TEST_CASE("several processes making the same streams and buckets at once all succeed", "[provisioning]") {
  LocalServer server;
  std::vector<std::unique_ptr<NatsBackend>> backends;
  for (int i = 0; i < 4; ++i) {
    backends.push_back(std::make_unique<NatsBackend>(test::config_for(server)));
    backends.back()->connect_sync();
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> racers;
  for (auto& b : backends) {
    racers.emplace_back([&failures, backend = b.get()] {
      try {
        backend->sync_task_queue().ensure();
        backend->sync_result_store().ensure();
      } catch (const Error& e) {
        ++failures;
        WARN(e.what());
      }
    });
  }
  for (auto& t : racers) t.join();
  CHECK(failures == 0);
  CHECK(stream_names(server.url()).count("OMNIQ_TASKS") == 1);
}
