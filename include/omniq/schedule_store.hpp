// The schedule store: schedules in a NATS KV bucket (omniq_schedules) that never expires.
// Updates are compare-and-swap on the key's revision, so concurrent schedulers and admins
// never overwrite each other silently. Asynchronous API on ScheduleStore; its blocking twin
// SyncScheduleStore runs the same operations from plain threads.
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
#include "omniq/models/schedule.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class TaskQueue;
class ResultStore;
class EventLog;
class ScheduleStore;
class Worker;
class Scheduler;

class Scheduler;

/// A schedule as stored, with the revision update_schedule compares against.
struct ScheduleRecord {
  Schedule schedule{};
  std::uint64_t revision = 0;
};

/// Each operation is an initiating function (omniq/async.hpp) completing with
/// void(error_code, T); a cancelled one completes with asio::error::operation_aborted.
class ScheduleStore {
 public:
  /// Shares the backend's connection; creates nothing until first used.
  explicit ScheduleStore(NatsBackend& backend) : backend_(backend) {}

  /// Creates or checks the bucket with the configured settings (done once): void(error_code).
  template <class CompletionToken = default_token>
  auto async_ensure(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this]() { return ensure(); });
  }
  /// The bucket as the server reports it: void(error_code, BucketReport).
  template <class CompletionToken = default_token>
  auto async_info(CompletionToken&& token = {}) {
    return detail::initiate<BucketReport>(token, executor(), [this]() { return info(); });
  }
  /// Stores a new schedule; an existing id is errc::already_exists. Completes with the revision:
  /// void(error_code, std::uint64_t). Bad input (invalid id for a KV key, value over the bucket's
  /// max_value_size) is refused before any network call.
  template <class CompletionToken = default_token>
  auto async_create_schedule(Schedule schedule, CompletionToken&& token = {}) {
    return detail::initiate<std::uint64_t>(token, executor(), [this, schedule = std::move(schedule)]() mutable { return create_schedule(std::move(schedule)); });
  }
  /// Stores the schedule whether or not it exists (last writer wins); completes with the revision.
  template <class CompletionToken = default_token>
  auto async_save_schedule(Schedule schedule, CompletionToken&& token = {}) {
    return detail::initiate<std::uint64_t>(token, executor(), [this, schedule = std::move(schedule)]() mutable { return save_schedule(std::move(schedule)); });
  }
  /// The schedule with its revision, nullopt when there is none:
  /// void(error_code, std::optional<ScheduleRecord>).
  template <class CompletionToken = default_token>
  auto async_get_schedule(std::string schedule_id, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<ScheduleRecord>>(token, executor(), [this, schedule_id = std::move(schedule_id)]() mutable { return get_schedule(std::move(schedule_id)); });
  }
  /// Stores `schedule` if it is still at `expected_revision`; the new revision, or nullopt
  /// when another writer changed it first (read it again and decide):
  /// void(error_code, std::optional<std::uint64_t>).
  template <class CompletionToken = default_token>
  auto async_update_schedule(Schedule schedule, std::uint64_t expected_revision, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<std::uint64_t>>(token, executor(), [this, schedule = std::move(schedule), expected_revision]() mutable { return update_schedule(std::move(schedule), expected_revision); });
  }
  /// False when there was no such schedule: void(error_code, bool).
  template <class CompletionToken = default_token>
  auto async_delete_schedule(std::string schedule_id, CompletionToken&& token = {}) {
    return detail::initiate<bool>(token, executor(), [this, schedule_id = std::move(schedule_id)]() mutable { return delete_schedule(std::move(schedule_id)); });
  }
  /// Schedules with `status` (all when empty). One scan of the bucket; a value that cannot be
  /// decoded (written by another client) is logged and skipped, the rest are listed:
  /// void(error_code, std::vector<ScheduleRecord>).
  template <class CompletionToken = default_token>
  auto async_list_schedules(std::optional<ScheduleStatus> status = std::nullopt, std::size_t limit = 1000, std::size_t offset = 0, CompletionToken&& token = {}) {
    return detail::initiate<std::vector<ScheduleRecord>>(token, executor(), [this, status = std::move(status), limit, offset]() mutable { return list_schedules(std::move(status), limit, offset); });
  }
  /// Active schedules due at `at` (next_run <= at, not expired), earliest first:
  /// void(error_code, std::vector<ScheduleRecord>).
  template <class CompletionToken = default_token>
  auto async_get_ready_schedules(Timestamp at = now(), CompletionToken&& token = {}) {
    return detail::initiate<std::vector<ScheduleRecord>>(token, executor(), [this, at]() { return get_ready_schedules(at); });
  }
  /// Pause / resume with compare-and-swap retries; false when the schedule does not exist or
  /// is not in a state that allows it (pausing a cancelled schedule). Logs schedule_paused /
  /// schedule_resumed events in the event log: void(error_code, bool).
  template <class CompletionToken = default_token>
  auto async_pause_schedule(std::string schedule_id, CompletionToken&& token = {}) {
    return detail::initiate<bool>(token, executor(), [this, schedule_id = std::move(schedule_id)]() mutable { return pause_schedule(std::move(schedule_id)); });
  }
  template <class CompletionToken = default_token>
  auto async_resume_schedule(std::string schedule_id, CompletionToken&& token = {}) {
    return detail::initiate<bool>(token, executor(), [this, schedule_id = std::move(schedule_id)]() mutable { return resume_schedule(std::move(schedule_id)); });
  }

  NatsBackend& backend() noexcept { return backend_; }

 private:
  friend class TaskQueue;
  friend class ResultStore;
  friend class EventLog;
  friend class Worker;
  friend class NatsBackend;
  friend class Scheduler;
  asio::any_io_executor executor() const noexcept { return backend_.get_executor(); }

  asio::awaitable<void> ensure();
  asio::awaitable<BucketReport> info();
  asio::awaitable<std::uint64_t> create_schedule(Schedule schedule);
  asio::awaitable<std::uint64_t> save_schedule(Schedule schedule);
  asio::awaitable<std::optional<ScheduleRecord>> get_schedule(std::string schedule_id);
  asio::awaitable<std::optional<std::uint64_t>> update_schedule(Schedule schedule, std::uint64_t expected_revision);
  asio::awaitable<bool> delete_schedule(std::string schedule_id);
  asio::awaitable<std::vector<ScheduleRecord>> list_schedules(std::optional<ScheduleStatus> status = std::nullopt, std::size_t limit = 1000, std::size_t offset = 0);
  asio::awaitable<std::vector<ScheduleRecord>> get_ready_schedules(Timestamp at = now());
  asio::awaitable<bool> pause_schedule(std::string schedule_id);
  asio::awaitable<bool> resume_schedule(std::string schedule_id);

  template <class Change>
  asio::awaitable<bool> change(std::string schedule_id, Change change);
  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

/// The blocking forms: each in a throwing form and an error-code form (see SyncTaskQueue).
class SyncScheduleStore : detail::Blocking {
 public:
  explicit SyncScheduleStore(ScheduleStore& part) : Blocking(part.backend().get_executor()), part_(part) {}
  void ensure() { wait<void>("schedule_store.ensure", [&](auto t) { return part_.async_ensure(t); }); }
  void ensure(error_code& ec, Diagnostics& diag) {
    wait<void>("schedule_store.ensure", [&](auto t) { return part_.async_ensure(t); }, ec, diag);
  }
  BucketReport info() { return wait<BucketReport>("schedule_store.info", [&](auto t) { return part_.async_info(t); }); }
  BucketReport info(error_code& ec, Diagnostics& diag) {
    return wait<BucketReport>("schedule_store.info", [&](auto t) { return part_.async_info(t); }, ec, diag);
  }
  std::uint64_t create_schedule(Schedule schedule) { return wait<std::uint64_t>("schedule_store.create_schedule", [&](auto t) { return part_.async_create_schedule(std::move(schedule), t); }); }
  std::uint64_t create_schedule(Schedule schedule, error_code& ec, Diagnostics& diag) {
    return wait<std::uint64_t>("schedule_store.create_schedule", [&](auto t) { return part_.async_create_schedule(std::move(schedule), t); }, ec, diag);
  }
  std::uint64_t save_schedule(Schedule schedule) { return wait<std::uint64_t>("schedule_store.save_schedule", [&](auto t) { return part_.async_save_schedule(std::move(schedule), t); }); }
  std::uint64_t save_schedule(Schedule schedule, error_code& ec, Diagnostics& diag) {
    return wait<std::uint64_t>("schedule_store.save_schedule", [&](auto t) { return part_.async_save_schedule(std::move(schedule), t); }, ec, diag);
  }
  std::optional<ScheduleRecord> get_schedule(std::string schedule_id) { return wait<std::optional<ScheduleRecord>>("schedule_store.get_schedule", [&](auto t) { return part_.async_get_schedule(std::move(schedule_id), t); }); }
  std::optional<ScheduleRecord> get_schedule(std::string schedule_id, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<ScheduleRecord>>("schedule_store.get_schedule", [&](auto t) { return part_.async_get_schedule(std::move(schedule_id), t); }, ec, diag);
  }
  std::optional<std::uint64_t> update_schedule(Schedule schedule, std::uint64_t expected_revision) { return wait<std::optional<std::uint64_t>>("schedule_store.update_schedule", [&](auto t) { return part_.async_update_schedule(std::move(schedule), expected_revision, t); }); }
  std::optional<std::uint64_t> update_schedule(Schedule schedule, std::uint64_t expected_revision, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<std::uint64_t>>("schedule_store.update_schedule", [&](auto t) { return part_.async_update_schedule(std::move(schedule), expected_revision, t); }, ec, diag);
  }
  bool delete_schedule(std::string schedule_id) { return wait<bool>("schedule_store.delete_schedule", [&](auto t) { return part_.async_delete_schedule(std::move(schedule_id), t); }); }
  bool delete_schedule(std::string schedule_id, error_code& ec, Diagnostics& diag) {
    return wait<bool>("schedule_store.delete_schedule", [&](auto t) { return part_.async_delete_schedule(std::move(schedule_id), t); }, ec, diag);
  }
  std::vector<ScheduleRecord> list_schedules(std::optional<ScheduleStatus> status = std::nullopt, std::size_t limit = 1000, std::size_t offset = 0) { return wait<std::vector<ScheduleRecord>>("schedule_store.list_schedules", [&](auto t) { return part_.async_list_schedules(std::move(status), limit, offset, t); }); }
  std::vector<ScheduleRecord> list_schedules(std::optional<ScheduleStatus> status, std::size_t limit, std::size_t offset, error_code& ec, Diagnostics& diag) {
    return wait<std::vector<ScheduleRecord>>("schedule_store.list_schedules", [&](auto t) { return part_.async_list_schedules(std::move(status), limit, offset, t); }, ec, diag);
  }
  std::vector<ScheduleRecord> get_ready_schedules(Timestamp at = now()) { return wait<std::vector<ScheduleRecord>>("schedule_store.get_ready_schedules", [&](auto t) { return part_.async_get_ready_schedules(at, t); }); }
  std::vector<ScheduleRecord> get_ready_schedules(Timestamp at, error_code& ec, Diagnostics& diag) {
    return wait<std::vector<ScheduleRecord>>("schedule_store.get_ready_schedules", [&](auto t) { return part_.async_get_ready_schedules(at, t); }, ec, diag);
  }
  bool pause_schedule(std::string schedule_id) { return wait<bool>("schedule_store.pause_schedule", [&](auto t) { return part_.async_pause_schedule(std::move(schedule_id), t); }); }
  bool pause_schedule(std::string schedule_id, error_code& ec, Diagnostics& diag) {
    return wait<bool>("schedule_store.pause_schedule", [&](auto t) { return part_.async_pause_schedule(std::move(schedule_id), t); }, ec, diag);
  }
  bool resume_schedule(std::string schedule_id) { return wait<bool>("schedule_store.resume_schedule", [&](auto t) { return part_.async_resume_schedule(std::move(schedule_id), t); }); }
  bool resume_schedule(std::string schedule_id, error_code& ec, Diagnostics& diag) {
    return wait<bool>("schedule_store.resume_schedule", [&](auto t) { return part_.async_resume_schedule(std::move(schedule_id), t); }, ec, diag);
  }

 private:
  ScheduleStore& part_;
};

}  // namespace omniq
