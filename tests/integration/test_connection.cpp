// The NATS connection and the nats.c/Asio bridge against a real nats-server.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <vector>
#include <thread>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include "omniq/backend.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/task_queue.hpp"
#include "test_support.hpp"

using namespace omniq;
using namespace std::chrono_literals;
using asio::use_awaitable;

namespace {

// A core subscription that swallows requests, so a request to it never gets a reply.
struct SilentResponder {
  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  SilentResponder(const std::string& url, const std::string& subject) {
    REQUIRE(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK);
    REQUIRE(natsConnection_SubscribeSync(&sub, nc, subject.c_str()) == NATS_OK);
    REQUIRE(natsConnection_Flush(nc) == NATS_OK);
  }
  ~SilentResponder() {
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
  }
};

}  // namespace

TEST_CASE("a backend on the caller's io_context connects and closes", "[connection]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  CHECK_FALSE(backend.is_connected());
  test::run(io, backend.async_connect());
  CHECK(backend.is_connected());
  CHECK(omniq::detail::connection_of(backend).max_payload() == 1024 * 1024);
  test::run(io, backend.async_close());
  CHECK_FALSE(backend.is_connected());
  // close is idempotent
  test::run(io, backend.async_close());
}

TEST_CASE("a backend with its own io thread serves blocking callers through ConnectionScope", "[connection]") {
  LocalServer server;
  NatsBackend backend(test::config_for(server));
  {
    ConnectionScope scope(backend);
    CHECK(backend.is_connected());
  }
  CHECK_FALSE(backend.is_connected());
}

TEST_CASE("a request completes on the awaiting coroutine's thread, never on a nats.c thread", "[connection][bridge]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  test::run(io, backend.task_queue().async_ensure());

  const auto io_thread = std::this_thread::get_id();  // test::run runs io here
  auto [reply, resumed_on] = test::run(io, [&]() -> asio::awaitable<std::pair<detail::Reply, std::thread::id>> {
    detail::Request req{.subject = backend.config().tasks_subject + ".bridge.check", .data = "payload"};
    auto r = co_await omniq::detail::connection_of(backend).async_request(std::move(req), use_awaitable);
    co_return std::pair{r, std::this_thread::get_id()};
  }());
  CHECK(resumed_on == io_thread);
  auto ack = nlohmann::json::parse(reply.data);
  CHECK(ack.at("stream") == "OMNIQ_TASKS");
  CHECK(ack.at("seq") == 1);
}

TEST_CASE("many requests in flight all complete", "[connection][bridge]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  test::run(io, backend.event_log().async_ensure());
  constexpr int n = 2000;
  std::atomic<int> acked{0};
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      detail::Request req{.subject = "omniq.events.enqueued.t" + std::to_string(i), .data = "{}"};
      auto r = co_await omniq::detail::connection_of(backend).async_request(std::move(req), use_awaitable);
      if (r.data.find("\"seq\"") != std::string::npos) ++acked;
    }, asio::detached);
  }
  io.restart();
  io.run();
  CHECK(acked == n);
  auto report = test::run(io, backend.event_log().async_info());
  CHECK(report.messages == n);
}

// Records every message on `subject` (a wildcard) in arrival order, as "<last token>:<data>",
// and answers requests.
struct OrderRecorder {
  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  std::mutex mu;
  std::vector<std::string> got;
  OrderRecorder(const std::string& url, const std::string& subject) {
    REQUIRE(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK);
    REQUIRE(natsConnection_Subscribe(&sub, nc, subject.c_str(), &OrderRecorder::on_msg, this) == NATS_OK);
    REQUIRE(natsConnection_Flush(nc) == NATS_OK);
  }
  static void on_msg(natsConnection* c, natsSubscription*, natsMsg* m, void* self) {
    auto* r = static_cast<OrderRecorder*>(self);
    std::string subject = natsMsg_GetSubject(m);
    std::string entry = subject.substr(subject.rfind('.') + 1) + ":" +
                        std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    {
      std::lock_guard lock(r->mu);
      r->got.push_back(std::move(entry));
    }
    if (const char* reply = natsMsg_GetReply(m)) natsConnection_PublishString(c, reply, "ok");
    natsMsg_Destroy(m);
  }
  std::vector<std::string> seen(char kind) {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& e : got)
      if (e[0] == kind) out.push_back(e);
    return out;
  }
  ~OrderRecorder() {
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
  }
};

TEST_CASE("publishes and requests reach the server in the order they were made, in large and small turns",
          "[connection][bridge]") {
  LocalServer server;
  OrderRecorder recorder(server.url(), "omniq.test.order.*");
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  auto& c = omniq::detail::connection_of(backend);
  std::vector<std::string> publishes, requests;
  std::atomic<std::size_t> replies{0};
  // Turns of 200, 1, 2, 150 and 1 messages, one after the other on the io thread: a large
  // turn is written by the writer thread, and the small ones after it must not overtake it.
  // Each request starts in a handler of its own, in the order spawned.
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    int next = 0;
    for (const int turn : {200, 1, 2, 150, 1}) {
      for (int i = 0; i < turn; ++i) {
        const std::string body = std::to_string(next++);
        if (i % 3 == 0) {
          requests.push_back("r:" + body);
          asio::co_spawn(io, [&, body]() -> asio::awaitable<void> {
            detail::Request req{.subject = "omniq.test.order.r", .data = body};
            auto r = co_await c.async_request(std::move(req), use_awaitable);
            if (r.data == "ok") ++replies;
          }, asio::detached);
        } else {
          publishes.push_back("p:" + body);
          c.publish("omniq.test.order.p", body);
        }
      }
      // End of the turn: the handlers queued meanwhile (request starts, the send) run first.
      co_await asio::post(io, use_awaitable);
      co_await asio::post(io, use_awaitable);
    }
  }, asio::detached);
  io.restart();
  io.run();  // until every request has its reply
  CHECK(replies == requests.size());
  REQUIRE(test::wait_until([&] { return recorder.seen('p').size() >= publishes.size(); }, 10s));
  CHECK(recorder.seen('p') == publishes);
  CHECK(recorder.seen('r') == requests);
}

TEST_CASE("a publish that cannot be sent is refused at once", "[connection][bridge]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  const std::string big(1024 * 1024 + 1, 'x');
  try {
    omniq::detail::connection_of(backend).publish("omniq.test.big", big);
    FAIL("expected payload_too_large");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::payload_too_large);
    CHECK_THAT(e.what(), Catch::Contains("1048576"));
  }
  // Headers count as nats.c encodes them: "NATS/1.0\r\n", "Nats-Msg-Id: abc\r\n", "\r\n" = 30
  // bytes. Exactly max_payload goes out; one byte more is refused.
  const detail::Headers headers{{"Nats-Msg-Id", "abc"}};
  CHECK_NOTHROW(omniq::detail::connection_of(backend).publish("omniq.test.big", std::string(1024 * 1024 - 30, 'x'), headers));
  try {
    omniq::detail::connection_of(backend).publish("omniq.test.big", std::string(1024 * 1024 - 29, 'x'), headers);
    FAIL("expected payload_too_large with headers");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::payload_too_large);
    CHECK_THAT(e.what(), Catch::Contains("1048577 bytes"));
  }
  try {
    test::run(io, omniq::detail::connection_of(backend).async_request(
                      {.subject = "omniq.test.big", .data = std::string(1024 * 1024 - 29, 'x'), .headers = headers},
                      use_awaitable));
    FAIL("expected payload_too_large for a request with headers");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::payload_too_large);
  }
  try {
    omniq::detail::connection_of(backend).publish("omniq.test.a b", "x");
    FAIL("expected invalid_name");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::invalid_name);
  }
  // A reply after them: the server has read the exactly-max publish without closing us.
  test::run(io, omniq::detail::connection_of(backend).async_request({.subject = "$JS.API.INFO"}, use_awaitable));
  CHECK(backend.is_connected());
  test::run(io, backend.async_close());
  try {
    omniq::detail::connection_of(backend).publish("omniq.test.late", "x");
    FAIL("expected an error after close");
  } catch (const Error& e) {
    CHECK((e.kind() == errc::not_connected || e.kind() == errc::closed));
  }
}

TEST_CASE("a request without a reply times out with a clear error", "[connection][bridge]") {
  LocalServer server;
  SilentResponder silent(server.url(), "omniq.test.silent");
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  const auto started = std::chrono::steady_clock::now();
  try {
    test::run(io, omniq::detail::connection_of(backend).async_request({.subject = "omniq.test.silent", .timeout = 300ms}, use_awaitable));
    FAIL("expected a timeout");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::timeout);
    CHECK_THAT(e.what(), Catch::Contains("omniq.test.silent"));
  }
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);
}

TEST_CASE("closing the backend fails every pending request with errc::closed", "[connection][bridge]") {
  LocalServer server;
  SilentResponder silent(server.url(), "omniq.test.silent");
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  std::atomic<int> closed_errors{0};
  for (int i = 0; i < 10; ++i) {
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      try {
        detail::Request req{.subject = "omniq.test.silent", .timeout = 30s};
        co_await omniq::detail::connection_of(backend).async_request(std::move(req), use_awaitable);
      } catch (const Error& e) {
        if (e.kind() == errc::closed) ++closed_errors;
      }
    }, asio::detached);
  }
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    asio::steady_timer t(io, 200ms);
    co_await t.async_wait(use_awaitable);
    co_await backend.async_close();
  }, asio::detached);
  io.restart();
  io.run();  // returns only when every request has completed
  CHECK(closed_errors == 10);
}

TEST_CASE("a request before connect fails with not_connected", "[connection][bridge]") {
  asio::io_context io;
  Config c;
  c.servers = {"nats://127.0.0.1:1"};
  NatsBackend backend(io.get_executor(), c);
  try {
    test::run(io, omniq::detail::connection_of(backend).async_request({.subject = "omniq.x"}, use_awaitable));
    FAIL("expected not_connected");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::not_connected);
  }
}

TEST_CASE("a payload over max_payload is refused before sending, naming the limit", "[connection][bridge]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  std::string big(1024 * 1024 + 1, 'x');
  try {
    test::run(io, omniq::detail::connection_of(backend).async_request({.subject = "omniq.tasks.q.x", .data = big}, use_awaitable));
    FAIL("expected payload_too_large");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::payload_too_large);
    CHECK_THAT(e.what(), Catch::Contains("1048576"));
  }
  CHECK(backend.is_connected());  // the server did not close the connection
}

TEST_CASE("a subject with whitespace is refused before sending and the connection stays up", "[connection][bridge]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  for (std::string bad : {"omniq.tasks.a b", "omniq.tasks.a\tb", "omniq.tasks.a\r\nb", "omniq..tasks", ""}) {
    try {
      test::run(io, omniq::detail::connection_of(backend).async_request({.subject = bad}, use_awaitable));
      FAIL("expected invalid_name for " << bad);
    } catch (const Error& e) {
      CHECK(e.kind() == errc::invalid_name);
    }
  }
  CHECK(backend.is_connected());
}

TEST_CASE("no server listening gives connection_failed within connect_timeout", "[connection]") {
  asio::io_context io;
  Config c;
  c.servers = {"nats://127.0.0.1:" + std::to_string(LocalServer::free_port())};
  c.connect_timeout = 500ms;
  NatsBackend backend(io.get_executor(), c);
  const auto started = std::chrono::steady_clock::now();
  try {
    test::run(io, backend.async_connect());
    FAIL("expected connection_failed");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::connection_failed);
    CHECK_THAT(e.what(), Catch::Contains(c.servers.front()));
  }
  CHECK(std::chrono::steady_clock::now() - started < 3s);
}

TEST_CASE("a server without JetStream is reported as such", "[connection]") {
  LocalServer server(LocalServerOptions{.jetstream = false});
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  try {
    test::run(io, backend.async_connect());
    FAIL("expected jetstream_unavailable");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::jetstream_unavailable);
    CHECK_THAT(e.what(), Catch::Contains("-js"));
  }
}

TEST_CASE("a blocking call on the backend's own io thread fails instead of deadlocking", "[connection][sync]") {
  LocalServer server;
  asio::io_context io;
  NatsBackend backend(io.get_executor(), test::config_for(server));
  test::run(io, backend.async_connect());
  auto outcome = test::run(io, [&]() -> asio::awaitable<std::string> {
    try {
      backend.sync_task_queue().ensure();
      co_return "no error";
    } catch (const Error& e) {
      co_return e.kind() == errc::wrong_thread ? std::string("wrong_thread: ") + e.what() : e.what();
    }
  }());
  CHECK_THAT(outcome, Catch::StartsWith("wrong_thread") && Catch::Contains("deadlock"));
}

TEST_CASE("the local server restarts on the same port and keeps its JetStream store", "[local_server]") {
  LocalServer server;
  const int port = server.port();
  {
    NatsBackend backend(test::config_for(server));
    ConnectionScope scope(backend);
    backend.sync_result_store().ensure();
  }
  server.kill();
  CHECK_FALSE(server.running());
  server.restart();
  CHECK(server.port() == port);
  NatsBackend backend(test::config_for(server));
  ConnectionScope scope(backend);
  CHECK(backend.sync_result_store().info().name == "omniq_results");
}

TEST_CASE("the local server reports a clear error when nats-server cannot start", "[local_server]") {
  try {
    LocalServer bad(LocalServerOptions{.config_text = "this is { not a config"});
    FAIL("expected server_error");
  } catch (const Error& e) {
    CHECK(e.kind() == errc::server_error);
    CHECK_THAT(e.what(), Catch::Contains("exited during start-up"));
  }
}
