// Shared helpers for omniq's integration tests: a real nats-server per test (LocalServer), a
// Config pointing at it, and a way to run a coroutine to completion on a fresh io_context.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <functional>
#include <memory>

#include <catch2/catch.hpp>
#include <nats/nats.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "omniq/detail/connection.hpp"
#include "omniq/backend.hpp"
#include "omniq/config.hpp"
#include "omniq/local_server.hpp"

namespace omniq::test {

namespace asio = boost::asio;

// Polls `done` every 20 ms until it holds (true) or `timeout` passed (false).
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

inline Config config_for(const LocalServer& server) {
  Config c;
  c.servers = {server.url()};
  c.connect_timeout = std::chrono::milliseconds(2000);
  c.reconnect_time_wait = std::chrono::milliseconds(100);
  return c;
}

// Runs `op` on `io` until it completes and returns its value (or rethrows).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> op) {
  auto future = asio::co_spawn(io, std::move(op), asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

// Runs a backend coroutine from the test thread on the backend's own executor.
template <class Backend, class T>
T run_sync(Backend& backend, asio::awaitable<T> op) {
  return asio::co_spawn(backend.get_executor(), std::move(op), asio::use_future).get();
}

// A real nats-server and a backend connected to it, running on an io thread of its own, so
// the blocking twins can be called from the test thread.
struct ServerFixture {
  LocalServer server;
  Config config;
  std::unique_ptr<NatsBackend> backend;

  explicit ServerFixture(const std::function<void(Config&)>& tune = {},
                         std::shared_ptr<spdlog::logger> logger = nullptr)
      : config(config_for(server)) {
    if (tune) tune(config);
    backend = std::make_unique<NatsBackend>(config, std::move(logger));
    backend->connect_sync();
  }
  // The blocking parts, for tests on plain threads.
  SyncTaskQueue& q() { return backend->sync_task_queue(); }
  SyncResultStore& results() { return backend->sync_result_store(); }
  SyncEventLog& events() { return backend->sync_event_log(); }
};

// Another client, careless: publishes raw bytes on a subject with plain nats.c.
inline void publish_raw(const std::string& url, const std::string& subject, const std::string& data) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK);
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  REQUIRE(js_Publish(nullptr, js, subject.c_str(), data.data(), static_cast<int>(data.size()), nullptr, nullptr) ==
          NATS_OK);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

// A temporary directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    // mkdtemp: a new directory of our own, even with other test processes running.
    std::string pattern = (std::filesystem::temp_directory_path() / "omniq-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp " + pattern + " failed");
    path = pattern;
  }
  // OMNIQ_KEEP_TEST_DIRS=1 keeps it (server stores, worker logs) for a post-mortem.
  ~TempDir() {
    if (const char* keep = std::getenv("OMNIQ_KEEP_TEST_DIRS"); keep && *keep == '1') return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Runs a shell command; returns its exit status.
inline int sh(const std::string& command) { return std::system(command.c_str()); }

// A logger that keeps the last `lines` messages, for tests that check what omniq logged.
struct CapturedLog {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  std::shared_ptr<spdlog::logger> logger;

  explicit CapturedLog(const std::string& name = "captured", std::size_t lines = 256)
      : sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(lines)),
        logger(std::make_shared<spdlog::logger>(name, sink)) {
    logger->set_level(spdlog::level::debug);
  }
  std::string text() const {
    std::string all;
    for (const auto& line : sink->last_formatted()) all += line;
    return all;
  }
  // How many logged lines contain `needle`.
  std::size_t count(const std::string& needle) const {
    std::size_t n = 0;
    for (const auto& line : sink->last_formatted()) n += line.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
};

// How many times the backend's connection reconnected (nats.c's statistics): 0 means the
// server never dropped it.
inline std::uint64_t reconnects(NatsBackend& backend) {
  detail::HandleLease handles = omniq::detail::connection_of(backend).lease_handles();
  natsStatistics* stats = nullptr;
  REQUIRE(natsStatistics_Create(&stats) == NATS_OK);
  REQUIRE(natsConnection_GetStats(handles.nats(), stats) == NATS_OK);
  std::uint64_t in_msgs = 0, in_bytes = 0, out_msgs = 0, out_bytes = 0, reconnected = 0;
  REQUIRE(natsStatistics_GetCounts(stats, &in_msgs, &in_bytes, &out_msgs, &out_bytes, &reconnected) == NATS_OK);
  natsStatistics_Destroy(stats);
  return reconnected;
}

}  // namespace omniq::test
