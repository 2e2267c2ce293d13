// NatsBackend: one NATS connection shared by omniq's four storage parts — the task queue
// (JetStream work-queue stream), the result store and the schedule store (KV buckets) and the
// event log (JetStream stream) — each with a coroutine API and a blocking twin.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/logger.h>

#include "omniq/async.hpp"
#include "omniq/config.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class NatsBackend;
namespace detail {
class Connection;
class WorkerRegistry;
/// The backend's connection, for omniq's own tests and tools (not a public API).
Connection& connection_of(NatsBackend& backend) noexcept;
}  // namespace detail

namespace asio = boost::asio;

class TaskQueue;
class ResultStore;
class EventLog;
class ScheduleStore;
class SyncTaskQueue;
class SyncResultStore;
class SyncEventLog;
class SyncScheduleStore;

class NatsBackend {
 public:
  /// Runs on an io thread of its own: the form for sync callers and simple programs.
  explicit NatsBackend(Config config, std::shared_ptr<spdlog::logger> logger = nullptr);
  /// Runs on the caller's executor (an io_context the application runs).
  NatsBackend(asio::any_io_executor executor, Config config, std::shared_ptr<spdlog::logger> logger = nullptr);
  /// Closes the connection if still open and stops an owned io thread. On the caller's
  /// executor, `co_await async_close()` first and let the io_context drain before destroying the
  /// backend: completions still queued there must not outlive it.
  ~NatsBackend();
  NatsBackend(const NatsBackend&) = delete;
  NatsBackend& operator=(const NatsBackend&) = delete;

  /// Connects to the configured servers: void(error_code). Streams and buckets are created when
  /// a storage part is first used, so a part never used creates nothing. Errors:
  /// connection_failed, auth_failed, tls_error, jetstream_unavailable.
  template <class CompletionToken = default_token>
  auto async_connect(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor_, [this] { return connect(); });
  }
  /// Closes the connection; pending operations fail with errc::closed. Idempotent:
  /// void(error_code).
  template <class CompletionToken = default_token>
  auto async_close(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor_, [this] { return close(); });
  }
  /// Creates or checks every stream and bucket omniq uses: the four storage parts' and the
  /// workers bucket that Workers keep their keys in. What an admin runs once before
  /// least-privilege users start (docs/security.md); each part also does its own on first use.
  /// void(error_code).
  template <class CompletionToken = default_token>
  auto async_provision(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor_, [this] { return provision(); });
  }

  /// The blocking forms (not on the backend's own io thread: errc::wrong_thread there).
  void connect_sync();
  void connect_sync(error_code& ec, Diagnostics& diag);
  void close_sync();
  void close_sync(error_code& ec, Diagnostics& diag);
  void provision_sync();
  void provision_sync(error_code& ec, Diagnostics& diag);

  bool is_connected() const noexcept;

  TaskQueue& task_queue();
  ResultStore& result_store();
  EventLog& event_log();
  ScheduleStore& schedule_store();
  SyncTaskQueue& sync_task_queue();
  SyncResultStore& sync_result_store();
  SyncEventLog& sync_event_log();
  SyncScheduleStore& sync_schedule_store();

  const Config& config() const noexcept;
  asio::any_io_executor get_executor() const noexcept { return executor_; }
  spdlog::logger& log() const noexcept;

 private:
  /// The parts share the one connection; it is not part of the public API.
  friend class TaskQueue;
  friend class Lease;
  friend class ResultStore;
  friend class EventLog;
  friend class EventFollower;
  friend class ScheduleStore;
  friend class Scheduler;
  friend class Worker;
  friend class detail::WorkerRegistry;
  friend detail::Connection& detail::connection_of(NatsBackend& backend) noexcept;
  detail::Connection& connection() noexcept { return *connection_; }

  asio::awaitable<void> connect();
  asio::awaitable<void> close();
  asio::awaitable<void> provision();

  struct Parts;
  Parts& parts();

  std::shared_ptr<asio::io_context> own_io_;  // set when the backend runs its own io thread
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> own_work_;
  std::thread own_thread_;
  asio::any_io_executor executor_;
  std::unique_ptr<detail::Connection> connection_;
  std::mutex parts_mu_;
  std::unique_ptr<Parts> parts_;
};

/// RAII for sync callers: connects on construction, closes on destruction.
class ConnectionScope {
 public:
  explicit ConnectionScope(NatsBackend& backend) : backend_(backend) { backend_.connect_sync(); }
  ~ConnectionScope() {
    try {
      backend_.close_sync();
    } catch (...) {
    }
  }
  ConnectionScope(const ConnectionScope&) = delete;
  ConnectionScope& operator=(const ConnectionScope&) = delete;

 private:
  NatsBackend& backend_;
};

/// The logger omniq uses when none is given: a clone of spdlog's default logger named "omniq".
std::shared_ptr<spdlog::logger> default_logger();

}  // namespace omniq
