// The event log: task lifecycle events in a JetStream stream (OMNIQ_EVENTS) with limits retention.
// Coroutine API on EventLog; its blocking twin SyncEventLog runs the same operations from plain threads
// over the backend's one connection.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class EventLog {
 public:
  // Shares the backend's connection; creates nothing until first used.
  explicit EventLog(NatsBackend& backend) : backend_(backend) {}

  // Creates or checks its stream with the configured settings (done once; every operation does it).
  asio::awaitable<void> ensure();
  // The server's view of its stream: settings as stored and current state.
  asio::awaitable<StreamReport> info();

  NatsBackend& backend() noexcept { return backend_; }

 private:
  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

class SyncEventLog {
 public:
  explicit SyncEventLog(EventLog& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "event_log.ensure"); }
  StreamReport info() { return run(part_.info(), "event_log.info"); }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(part_.backend().get_executor(), std::move(op), what);
  }
  EventLog& part_;
};

}  // namespace omniq
