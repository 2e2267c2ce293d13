// The result store: task results in a NATS KV bucket (omniq_results) whose keys expire after
// the bucket TTL (7 days by default); a result's own ttl / expires_at is honoured on read.
// Coroutine API on ResultStore; its blocking twin SyncResultStore runs the same operations
// from plain threads over the backend's one connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "omniq/backend.hpp"
#include "omniq/detail/kv.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/models/result.hpp"
#include "omniq/reports.hpp"

namespace omniq {

// A stored result with the revision that create/update compare against.
struct ResultRecord {
  TaskResult result{};
  std::uint64_t revision = 0;
};

class ResultStore {
 public:
  // Shares the backend's connection; creates nothing until first used.
  explicit ResultStore(NatsBackend& backend) : backend_(backend) {}

  // Creates or checks the bucket with the configured settings (done once).
  asio::awaitable<void> ensure();
  asio::awaitable<BucketReport> info();

  // Stores the result under its task id (replacing an earlier one); returns its revision.
  // Throws omniq::Error: invalid_name (task id), payload_too_large (over the bucket's
  // max_value_size or the server's max_payload), before any network call.
  asio::awaitable<std::uint64_t> set(TaskResult result);
  // Stores the result only if the task has none yet; its revision, or nullopt when one exists.
  // The worker claims a task this way before running it (a `pending` result), so a task id
  // runs once even when it was enqueued again. A key with history (a deleted result) is looked
  // at through the bucket's leader. Throws like set.
  asio::awaitable<std::optional<std::uint64_t>> create(TaskResult result);
  // Stores the result if the stored one is still at `expected_revision` (from create,
  // get_record or an earlier update); nullopt when another writer changed it first.
  asio::awaitable<std::optional<std::uint64_t>> update(TaskResult result, std::uint64_t expected_revision);
  // The result, or nullopt when there is none or it has expired. A `pending` result means a
  // worker runs the task now. Read by direct get, which any replica of the bucket may answer:
  // on a cluster it can lag a moment behind the last write.
  asio::awaitable<std::optional<TaskResult>> get(std::string task_id);
  // The result with its revision, expired or not; nullopt when there is none. Read through
  // the bucket's leader, so the revision is the one a compare-and-set (update) is checked
  // against, and every acknowledged write is seen.
  asio::awaitable<std::optional<ResultRecord>> get_record(std::string task_id);
  // False when there was no result.
  asio::awaitable<bool> delete_result(std::string task_id);
  // Results with `status` (all when empty), in the order they were stored; one scan of the
  // bucket, not a round trip per key. A value that cannot be decoded is logged and skipped.
  asio::awaitable<std::vector<TaskResult>> list_results(std::optional<ResultStatus> status = std::nullopt,
                                                        std::size_t limit = 100, std::size_t offset = 0);
  // Deletes results whose own expiry has passed; returns how many.
  asio::awaitable<std::size_t> cleanup_expired_results();
  // Waits until a final result for `task_id` (any status but `pending`) is stored, or one
  // already is, and returns it; nullopt after `timeout`. Wakes on the KV change itself (a
  // watch on the key), not by polling.
  asio::awaitable<std::optional<TaskResult>> wait_for_result(std::string task_id, Duration timeout);

  NatsBackend& backend() noexcept { return backend_; }

 private:
  std::string checked_value(const TaskResult& result) const;
  asio::awaitable<std::optional<ResultRecord>> read(std::string task_id, detail::Served served);

  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

class SyncResultStore {
 public:
  explicit SyncResultStore(ResultStore& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "result_store.ensure"); }
  BucketReport info() { return run(part_.info(), "result_store.info"); }
  std::uint64_t set(TaskResult result) { return run(part_.set(std::move(result)), "result_store.set"); }
  std::optional<std::uint64_t> create(TaskResult result) {
    return run(part_.create(std::move(result)), "result_store.create");
  }
  std::optional<std::uint64_t> update(TaskResult result, std::uint64_t expected_revision) {
    return run(part_.update(std::move(result), expected_revision), "result_store.update");
  }
  std::optional<ResultRecord> get_record(std::string task_id) {
    return run(part_.get_record(std::move(task_id)), "result_store.get_record");
  }
  std::optional<TaskResult> get(std::string task_id) { return run(part_.get(std::move(task_id)), "result_store.get"); }
  bool delete_result(std::string task_id) {
    return run(part_.delete_result(std::move(task_id)), "result_store.delete_result");
  }
  std::vector<TaskResult> list_results(std::optional<ResultStatus> status = std::nullopt, std::size_t limit = 100,
                                       std::size_t offset = 0) {
    return run(part_.list_results(status, limit, offset), "result_store.list_results");
  }
  std::size_t cleanup_expired_results() {
    return run(part_.cleanup_expired_results(), "result_store.cleanup_expired_results");
  }
  std::optional<TaskResult> wait_for_result(std::string task_id, Duration timeout) {
    return run(part_.wait_for_result(std::move(task_id), timeout), "result_store.wait_for_result");
  }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(part_.backend().get_executor(), std::move(op), what);
  }
  ResultStore& part_;
};

}  // namespace omniq
