// The schedule store: schedules in a NATS KV bucket (omniq_schedules) that never expires.
// Coroutine API on ScheduleStore; its blocking twin SyncScheduleStore runs the same operations from plain threads
// over the backend's one connection.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class ScheduleStore {
 public:
  // Shares the backend's connection; creates nothing until first used.
  explicit ScheduleStore(NatsBackend& backend) : backend_(backend) {}

  // Creates or checks its bucket with the configured settings (done once; every operation does it).
  asio::awaitable<void> ensure();
  // The server's view of its bucket: settings as stored and current state.
  asio::awaitable<BucketReport> info();

  NatsBackend& backend() noexcept { return backend_; }

 private:
  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

class SyncScheduleStore {
 public:
  explicit SyncScheduleStore(ScheduleStore& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "schedule_store.ensure"); }
  BucketReport info() { return run(part_.info(), "schedule_store.info"); }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(part_.backend().get_executor(), std::move(op), what);
  }
  ScheduleStore& part_;
};

}  // namespace omniq
