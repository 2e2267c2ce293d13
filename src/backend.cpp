#include "omniq/detail/connection.hpp"
#include "omniq/backend.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "omniq/detail/sync.hpp"
#include "omniq/detail/worker_registry.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/task_queue.hpp"

namespace omniq {

std::shared_ptr<spdlog::logger> default_logger() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("omniq")) return existing;
    return spdlog::default_logger()->clone("omniq");
  }();
  return logger;
}

// The storage parts, made on first access so that a part never used costs nothing.
struct NatsBackend::Parts {
  explicit Parts(NatsBackend& b)
      : tasks(b), results(b), events(b), schedules(b),
        sync_tasks(tasks), sync_results(results), sync_events(events), sync_schedules(schedules) {}
  TaskQueue tasks;
  ResultStore results;
  EventLog events;
  ScheduleStore schedules;
  SyncTaskQueue sync_tasks;
  SyncResultStore sync_results;
  SyncEventLog sync_events;
  SyncScheduleStore sync_schedules;
};

NatsBackend::NatsBackend(Config config, std::shared_ptr<spdlog::logger> logger)
    : own_io_(std::make_shared<asio::io_context>(1)) {
  own_work_.emplace(own_io_->get_executor());
  executor_ = own_io_->get_executor();
  config.validate();
  connection_ = std::make_unique<detail::Connection>(executor_, std::move(config),
                                                     logger ? std::move(logger) : default_logger());
  own_thread_ = std::thread([io = own_io_] { io->run(); });  // holds its own reference
}

NatsBackend::NatsBackend(asio::any_io_executor executor, Config config, std::shared_ptr<spdlog::logger> logger)
    : executor_(std::move(executor)) {
  config.validate();
  connection_ = std::make_unique<detail::Connection>(executor_, std::move(config),
                                                     logger ? std::move(logger) : default_logger());
}

NatsBackend::~NatsBackend() {
  connection_->close_blocking();  // pending operations complete with errc::closed
  if (own_io_) {
    own_work_.reset();
    // The closed completions were posted first and run before this stop; a coroutine still
    // waiting on something of its own does not keep the destructor waiting.
    asio::post(*own_io_, [io = own_io_.get()] { io->stop(); });
    if (own_thread_.get_id() == std::this_thread::get_id()) {
      // Destroyed from a handler on its own io thread: it cannot join itself. The thread
      // keeps the io_context alive until its run() returns.
      connection_->log().error("omniq: NatsBackend destroyed on its own io thread; thread detached");
      own_thread_.detach();
    } else {
      own_thread_.join();
    }
  }
  parts_.reset();
  connection_.reset();
}

asio::awaitable<void> NatsBackend::connect() { co_await connection_->async_connect(asio::use_awaitable); }

asio::awaitable<void> NatsBackend::close() { co_await connection_->async_close(asio::use_awaitable); }

asio::awaitable<void> NatsBackend::provision() {
  co_await task_queue().ensure();
  co_await result_store().ensure();
  co_await event_log().ensure();
  co_await schedule_store().ensure();
  detail::WorkerRegistry workers(*this);
  co_await workers.ensure();
}

void NatsBackend::provision_sync() {
  detail::wait_blocking<void>(executor_, "NatsBackend::provision_sync", [&](auto t) { return async_provision(t); });
}
void NatsBackend::provision_sync(error_code& ec, Diagnostics& diag) {
  detail::wait_blocking<void>(executor_, "NatsBackend::provision_sync", [&](auto t) { return async_provision(t); }, ec, diag);
}
void NatsBackend::connect_sync() {
  detail::wait_blocking<void>(executor_, "NatsBackend::connect_sync", [&](auto t) { return async_connect(t); });
}
void NatsBackend::connect_sync(error_code& ec, Diagnostics& diag) {
  detail::wait_blocking<void>(executor_, "NatsBackend::connect_sync", [&](auto t) { return async_connect(t); }, ec, diag);
}
void NatsBackend::close_sync() {
  detail::wait_blocking<void>(executor_, "NatsBackend::close_sync", [&](auto t) { return async_close(t); });
}
void NatsBackend::close_sync(error_code& ec, Diagnostics& diag) {
  detail::wait_blocking<void>(executor_, "NatsBackend::close_sync", [&](auto t) { return async_close(t); }, ec, diag);
}

bool NatsBackend::is_connected() const noexcept { return connection_->is_connected(); }
const Config& NatsBackend::config() const noexcept { return connection_->config(); }
spdlog::logger& NatsBackend::log() const noexcept { return connection_->log(); }

namespace detail {
Connection& connection_of(NatsBackend& backend) noexcept { return backend.connection(); }
}  // namespace detail

NatsBackend::Parts& NatsBackend::parts() {
  std::lock_guard lock(parts_mu_);
  if (!parts_) parts_ = std::make_unique<Parts>(*this);
  return *parts_;
}

TaskQueue& NatsBackend::task_queue() { return parts().tasks; }
ResultStore& NatsBackend::result_store() { return parts().results; }
EventLog& NatsBackend::event_log() { return parts().events; }
ScheduleStore& NatsBackend::schedule_store() { return parts().schedules; }
SyncTaskQueue& NatsBackend::sync_task_queue() { return parts().sync_tasks; }
SyncResultStore& NatsBackend::sync_result_store() { return parts().sync_results; }
SyncEventLog& NatsBackend::sync_event_log() { return parts().sync_events; }
SyncScheduleStore& NatsBackend::sync_schedule_store() { return parts().sync_schedules; }

}  // namespace omniq
