// The result store: task results in a NATS KV bucket (omniq_results) whose keys expire after the bucket TTL.
// Coroutine API on ResultStore; its blocking twin SyncResultStore runs the same operations from plain threads
// over the backend's one connection.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class ResultStore {
 public:
  // Shares the backend's connection; creates nothing until first used.
  explicit ResultStore(NatsBackend& backend) : backend_(backend) {}

  // Creates or checks its bucket with the configured settings (done once; every operation does it).
  asio::awaitable<void> ensure();
  // The server's view of its bucket: settings as stored and current state.
  asio::awaitable<BucketReport> info();

  NatsBackend& backend() noexcept { return backend_; }

 private:
  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

class SyncResultStore {
 public:
  explicit SyncResultStore(ResultStore& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "result_store.ensure"); }
  BucketReport info() { return run(part_.info(), "result_store.info"); }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(part_.backend().get_executor(), std::move(op), what);
  }
  ResultStore& part_;
};

}  // namespace omniq
