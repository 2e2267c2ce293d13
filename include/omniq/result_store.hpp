// The result store: task results in a NATS KV bucket (omniq_results) whose keys expire after
// the bucket TTL (7 days by default); a result's own ttl / expires_at is honoured on read.
// Asynchronous API on ResultStore (initiating functions); its blocking twin SyncResultStore runs the same operations
// from plain threads over the backend's one connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "omniq/async.hpp"
#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/models/result.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class TaskQueue;
class ResultStore;
class EventLog;
class ScheduleStore;
class Worker;
class Scheduler;

class Worker;
class Scheduler;

/// A stored result with the revision that create/update compare against.
struct ResultRecord {
  TaskResult result{};
  std::uint64_t revision = 0;
};

/// Each operation is an initiating function (omniq/async.hpp) completing with
/// void(error_code, T); a cancelled one completes with asio::error::operation_aborted.
class ResultStore {
 public:
  /// Shares the backend's connection; creates nothing until first used.
  explicit ResultStore(NatsBackend& backend) : backend_(backend) {}

  /// Creates or checks the bucket with the configured settings (done once): void(error_code).
  template <class CompletionToken = default_token>
  auto async_ensure(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this] { return ensure(); });
  }
  /// The bucket as the server reports it: void(error_code, BucketReport).
  template <class CompletionToken = default_token>
  auto async_info(CompletionToken&& token = {}) {
    return detail::initiate<BucketReport>(token, executor(), [this] { return info(); });
  }
  /// Stores the result under its task id (replacing an earlier one); completes with its
  /// revision: void(error_code, std::uint64_t). Errors: invalid_name (task id),
  /// payload_too_large (over the bucket's max_value_size or the server's max_payload), before
  /// any network call.
  template <class CompletionToken = default_token>
  auto async_set(TaskResult result, CompletionToken&& token = {}) {
    return detail::initiate<std::uint64_t>(token, executor(),
                                           [this, r = std::move(result)]() mutable { return set(std::move(r)); });
  }
  /// Stores the result only if the task has none yet; its revision, or nullopt when one exists:
  /// void(error_code, std::optional<std::uint64_t>). The worker claims a task this way before
  /// running it (a `pending` result), so a task id runs once even when it was enqueued again. A
  /// key with history (a deleted result) is looked at through the bucket's leader. Errors like set.
  template <class CompletionToken = default_token>
  auto async_create(TaskResult result, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<std::uint64_t>>(
        token, executor(), [this, r = std::move(result)]() mutable { return create(std::move(r)); });
  }
  /// Stores the result if the stored one is still at `expected_revision` (from create,
  /// get_record or an earlier update); nullopt when another writer changed it first:
  /// void(error_code, std::optional<std::uint64_t>).
  template <class CompletionToken = default_token>
  auto async_update(TaskResult result, std::uint64_t expected_revision, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<std::uint64_t>>(
        token, executor(),
        [this, r = std::move(result), expected_revision]() mutable { return update(std::move(r), expected_revision); });
  }
  /// The result, or nullopt when there is none or it has expired:
  /// void(error_code, std::optional<TaskResult>). A `pending` result means a worker runs the task
  /// now. Read by direct get, which any replica of the bucket may answer: on a cluster it can lag
  /// a moment behind the last write.
  template <class CompletionToken = default_token>
  auto async_get(std::string task_id, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<TaskResult>>(token, executor(),
                                                       [this, id = std::move(task_id)]() mutable { return get(std::move(id)); });
  }
  /// The result with its revision, expired or not; nullopt when there is none:
  /// void(error_code, std::optional<ResultRecord>). Read through the bucket's leader, so the
  /// revision is the one a compare-and-set (update) is checked against, and every acknowledged
  /// write is seen.
  template <class CompletionToken = default_token>
  auto async_get_record(std::string task_id, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<ResultRecord>>(
        token, executor(), [this, id = std::move(task_id)]() mutable { return get_record(std::move(id)); });
  }
  /// Removes the result; false when there was none: void(error_code, bool).
  template <class CompletionToken = default_token>
  auto async_remove(std::string task_id, CompletionToken&& token = {}) {
    return detail::initiate<bool>(token, executor(), [this, id = std::move(task_id)]() mutable { return remove(std::move(id)); });
  }
  /// Results with `status` (all when empty), in the order they were stored; one scan of the
  /// bucket, not a round trip per key. A value that cannot be decoded is logged and skipped:
  /// void(error_code, std::vector<TaskResult>).
  template <class CompletionToken = default_token>
  auto async_list(std::optional<ResultStatus> status = std::nullopt, std::size_t limit = 100, std::size_t offset = 0,
                  CompletionToken&& token = {}) {
    return detail::initiate<std::vector<TaskResult>>(token, executor(),
                                                     [this, status, limit, offset] { return list(status, limit, offset); });
  }
  /// Deletes results whose own expiry has passed; completes with how many:
  /// void(error_code, std::size_t).
  template <class CompletionToken = default_token>
  auto async_cleanup_expired(CompletionToken&& token = {}) {
    return detail::initiate<std::size_t>(token, executor(), [this] { return cleanup_expired(); });
  }
  /// Waits until a final result for `task_id` (any status but `pending`) is stored, or one
  /// already is, and completes with it; nullopt after `timeout`:
  /// void(error_code, std::optional<TaskResult>). Wakes on the KV change itself (a watch on the
  /// key), not by polling. Cancelled: operation_aborted at once.
  template <class CompletionToken = default_token>
  auto async_wait_for_result(std::string task_id, Duration timeout, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<TaskResult>>(
        token, executor(), [this, id = std::move(task_id), timeout]() mutable { return wait_for_result(std::move(id), timeout); });
  }

  NatsBackend& backend() noexcept { return backend_; }

 private:
  friend class TaskQueue;
  friend class EventLog;
  friend class ScheduleStore;
  friend class NatsBackend;
  friend class Worker;
  friend class Scheduler;
  asio::any_io_executor executor() const noexcept { return backend_.get_executor(); }

  asio::awaitable<void> ensure();
  asio::awaitable<BucketReport> info();
  asio::awaitable<std::uint64_t> set(TaskResult result);
  asio::awaitable<std::optional<std::uint64_t>> create(TaskResult result);
  asio::awaitable<std::optional<std::uint64_t>> update(TaskResult result, std::uint64_t expected_revision);
  asio::awaitable<std::optional<TaskResult>> get(std::string task_id);
  asio::awaitable<std::optional<ResultRecord>> get_record(std::string task_id);
  asio::awaitable<bool> remove(std::string task_id);
  asio::awaitable<std::vector<TaskResult>> list(std::optional<ResultStatus> status = std::nullopt,
                                                std::size_t limit = 100, std::size_t offset = 0);
  asio::awaitable<std::size_t> cleanup_expired();
  asio::awaitable<std::optional<TaskResult>> wait_for_result(std::string task_id, Duration timeout);

  asio::awaitable<std::optional<ResultRecord>> read(std::string task_id, bool by_leader);
  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

/// The blocking forms: each in a throwing form and an error-code form (see SyncTaskQueue).
class SyncResultStore : detail::Blocking {
 public:
  explicit SyncResultStore(ResultStore& part) : Blocking(part.backend().get_executor()), part_(part) {}
  void ensure() { wait<void>("result_store.ensure", [&](auto t) { return part_.async_ensure(t); }); }
  void ensure(error_code& ec, Diagnostics& diag) {
    wait<void>("result_store.ensure", [&](auto t) { return part_.async_ensure(t); }, ec, diag);
  }
  BucketReport info() { return wait<BucketReport>("result_store.info", [&](auto t) { return part_.async_info(t); }); }
  BucketReport info(error_code& ec, Diagnostics& diag) {
    return wait<BucketReport>("result_store.info", [&](auto t) { return part_.async_info(t); }, ec, diag);
  }
  std::uint64_t set(TaskResult r) {
    return wait<std::uint64_t>("result_store.set", [&](auto t) { return part_.async_set(std::move(r), t); });
  }
  std::uint64_t set(TaskResult r, error_code& ec, Diagnostics& diag) {
    return wait<std::uint64_t>("result_store.set", [&](auto t) { return part_.async_set(std::move(r), t); }, ec, diag);
  }
  std::optional<std::uint64_t> create(TaskResult r) {
    return wait<std::optional<std::uint64_t>>("result_store.create",
                                              [&](auto t) { return part_.async_create(std::move(r), t); });
  }
  std::optional<std::uint64_t> create(TaskResult r, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<std::uint64_t>>(
        "result_store.create", [&](auto t) { return part_.async_create(std::move(r), t); }, ec, diag);
  }
  std::optional<std::uint64_t> update(TaskResult r, std::uint64_t expected_revision) {
    return wait<std::optional<std::uint64_t>>(
        "result_store.update", [&](auto t) { return part_.async_update(std::move(r), expected_revision, t); });
  }
  std::optional<std::uint64_t> update(TaskResult r, std::uint64_t expected_revision, error_code& ec,
                                      Diagnostics& diag) {
    return wait<std::optional<std::uint64_t>>(
        "result_store.update", [&](auto t) { return part_.async_update(std::move(r), expected_revision, t); }, ec, diag);
  }
  std::optional<ResultRecord> get_record(std::string id) {
    return wait<std::optional<ResultRecord>>("result_store.get_record",
                                             [&](auto t) { return part_.async_get_record(std::move(id), t); });
  }
  std::optional<ResultRecord> get_record(std::string id, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<ResultRecord>>(
        "result_store.get_record", [&](auto t) { return part_.async_get_record(std::move(id), t); }, ec, diag);
  }
  std::optional<TaskResult> get(std::string id) {
    return wait<std::optional<TaskResult>>("result_store.get", [&](auto t) { return part_.async_get(std::move(id), t); });
  }
  std::optional<TaskResult> get(std::string id, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<TaskResult>>(
        "result_store.get", [&](auto t) { return part_.async_get(std::move(id), t); }, ec, diag);
  }
  bool remove(std::string id) {
    return wait<bool>("result_store.remove", [&](auto t) { return part_.async_remove(std::move(id), t); });
  }
  bool remove(std::string id, error_code& ec, Diagnostics& diag) {
    return wait<bool>("result_store.remove", [&](auto t) { return part_.async_remove(std::move(id), t); }, ec, diag);
  }
  std::vector<TaskResult> list(std::optional<ResultStatus> status = std::nullopt, std::size_t limit = 100,
                               std::size_t offset = 0) {
    return wait<std::vector<TaskResult>>("result_store.list",
                                         [&](auto t) { return part_.async_list(status, limit, offset, t); });
  }
  std::vector<TaskResult> list(std::optional<ResultStatus> status, std::size_t limit, std::size_t offset,
                               error_code& ec, Diagnostics& diag) {
    return wait<std::vector<TaskResult>>(
        "result_store.list", [&](auto t) { return part_.async_list(status, limit, offset, t); }, ec, diag);
  }
  std::size_t cleanup_expired() {
    return wait<std::size_t>("result_store.cleanup_expired", [&](auto t) { return part_.async_cleanup_expired(t); });
  }
  std::size_t cleanup_expired(error_code& ec, Diagnostics& diag) {
    return wait<std::size_t>(
        "result_store.cleanup_expired", [&](auto t) { return part_.async_cleanup_expired(t); }, ec, diag);
  }
  std::optional<TaskResult> wait_for_result(std::string id, Duration timeout) {
    return wait<std::optional<TaskResult>>(
        "result_store.wait_for_result", [&](auto t) { return part_.async_wait_for_result(std::move(id), timeout, t); });
  }
  std::optional<TaskResult> wait_for_result(std::string id, Duration timeout, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<TaskResult>>(
        "result_store.wait_for_result", [&](auto t) { return part_.async_wait_for_result(std::move(id), timeout, t); },
        ec, diag);
  }

 private:
  ResultStore& part_;
};

}  // namespace omniq
