// The schedule store: schedules in a NATS KV bucket (omniq_schedules) that never expires.
// Updates are compare-and-swap on the key's revision, so concurrent schedulers and admins
// never overwrite each other silently. Coroutine API on ScheduleStore; its blocking twin
// SyncScheduleStore runs the same operations from plain threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/models/schedule.hpp"
#include "omniq/reports.hpp"

namespace omniq {

// A schedule as stored, with the revision update_schedule compares against.
struct ScheduleRecord {
  Schedule schedule{};
  std::uint64_t revision = 0;
};

class ScheduleStore {
 public:
  // Shares the backend's connection; creates nothing until first used.
  explicit ScheduleStore(NatsBackend& backend) : backend_(backend) {}

  asio::awaitable<void> ensure();
  asio::awaitable<BucketReport> info();

  // Stores a new schedule; an existing id is errc::already_exists. Returns the revision.
  // Bad input (invalid id for a KV key, value over the bucket's max_value_size) is refused
  // before any network call.
  asio::awaitable<std::uint64_t> create_schedule(Schedule schedule);
  // Stores the schedule whether or not it exists (last writer wins); returns the revision.
  asio::awaitable<std::uint64_t> save_schedule(Schedule schedule);
  asio::awaitable<std::optional<ScheduleRecord>> get_schedule(std::string schedule_id);
  // Stores `schedule` if it is still at `expected_revision`; the new revision, or nullopt
  // when another writer changed it first (read it again and decide).
  asio::awaitable<std::optional<std::uint64_t>> update_schedule(Schedule schedule, std::uint64_t expected_revision);
  // False when there was no such schedule.
  asio::awaitable<bool> delete_schedule(std::string schedule_id);
  // Schedules with `status` (all when empty). One scan of the bucket; a value that cannot be
  // decoded (written by another client) is logged and skipped, the rest are listed.
  asio::awaitable<std::vector<ScheduleRecord>> list_schedules(std::optional<ScheduleStatus> status = std::nullopt,
                                                              std::size_t limit = 1000, std::size_t offset = 0);
  // Active schedules due at `at` (next_run <= at, not expired), earliest first.
  asio::awaitable<std::vector<ScheduleRecord>> get_ready_schedules(Timestamp at = now());
  // Pause / resume with compare-and-swap retries; false when the schedule does not exist or
  // is not in a state that allows it (pausing a cancelled schedule). Logs schedule_paused /
  // schedule_resumed events in the event log.
  asio::awaitable<bool> pause_schedule(std::string schedule_id);
  asio::awaitable<bool> resume_schedule(std::string schedule_id);

  NatsBackend& backend() noexcept { return backend_; }

 private:
  std::string checked_value(const Schedule& schedule) const;
  template <class Change>
  asio::awaitable<bool> change(std::string schedule_id, Change change);

  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

class SyncScheduleStore {
 public:
  explicit SyncScheduleStore(ScheduleStore& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "schedule_store.ensure"); }
  BucketReport info() { return run(part_.info(), "schedule_store.info"); }
  std::uint64_t create_schedule(Schedule s) { return run(part_.create_schedule(std::move(s)), "create_schedule"); }
  std::uint64_t save_schedule(Schedule s) { return run(part_.save_schedule(std::move(s)), "save_schedule"); }
  std::optional<ScheduleRecord> get_schedule(std::string id) {
    return run(part_.get_schedule(std::move(id)), "get_schedule");
  }
  std::optional<std::uint64_t> update_schedule(Schedule s, std::uint64_t expected_revision) {
    return run(part_.update_schedule(std::move(s), expected_revision), "update_schedule");
  }
  bool delete_schedule(std::string id) { return run(part_.delete_schedule(std::move(id)), "delete_schedule"); }
  std::vector<ScheduleRecord> list_schedules(std::optional<ScheduleStatus> status = std::nullopt,
                                             std::size_t limit = 1000, std::size_t offset = 0) {
    return run(part_.list_schedules(status, limit, offset), "list_schedules");
  }
  std::vector<ScheduleRecord> get_ready_schedules(Timestamp at = now()) {
    return run(part_.get_ready_schedules(at), "get_ready_schedules");
  }
  bool pause_schedule(std::string id) { return run(part_.pause_schedule(std::move(id)), "pause_schedule"); }
  bool resume_schedule(std::string id) { return run(part_.resume_schedule(std::move(id)), "resume_schedule"); }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(part_.backend().get_executor(), std::move(op), what);
  }
  ScheduleStore& part_;
};

}  // namespace omniq
