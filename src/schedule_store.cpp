// The schedule store: schedules in a KV bucket without TTL, updated by compare-and-swap.
#include "omniq/detail/connection.hpp"
#include "omniq/detail/ensure.hpp"
#include "omniq/schedule_store.hpp"

#include <algorithm>

#include "omniq/detail/kv.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/validation.hpp"

namespace omniq {

namespace {
detail::KvBucket bucket_of(NatsBackend& backend) {
  return detail::KvBucket(detail::connection_of(backend), backend.config().schedules_bucket.name);
}
constexpr int kChangeAttempts = 10;  // compare-and-swap retries of pause / resume

// A stored schedule, or decode_error naming its key. Any client allowed to publish on the
// bucket's subjects may have put something there that decodes and still cannot be fired (an
// invalid cron expression, an id that is not its key): a scheduler would enqueue its task on
// every tick and never advance it, so such a value is refused like one that does not decode.
Schedule decode_stored(const NatsBackend& backend, const detail::KvEntry& entry) {
  return detail::decode_entry(entry, "schedule", backend.config().schedules_bucket.name, [&](std::string_view text) {
    Schedule schedule = decode_schedule(text);
    if (schedule.id != entry.key) throw_error(errc::decode_error, "it holds schedule " + schedule.id);
    schedule.validate();
    return schedule;
  });
}
}  // namespace

asio::awaitable<void> ScheduleStore::ensure() {
  co_await detail::ensure_bucket_once(provisioned_, backend_.connection(), backend_.config().schedules_bucket);
}

asio::awaitable<BucketReport> ScheduleStore::info() {
  co_await ensure();
  co_return co_await detail::bucket_report(backend_.connection(), backend_.config().schedules_bucket.name);
}

std::string ScheduleStore::checked_value(const Schedule& schedule) const {
  schedule.validate();
  std::string value = encode(schedule);
  detail::check_value_size("schedule " + schedule.id, value.size(), backend_.config().schedules_bucket.max_value_size,
                           backend_.connection().max_payload());
  return value;
}

asio::awaitable<std::uint64_t> ScheduleStore::create_schedule(Schedule schedule) {
  std::string value = checked_value(schedule);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  auto revision = co_await bucket.create(schedule.id, std::move(value));
  if (!revision) throw_error(errc::already_exists, "schedule " + schedule.id + " already exists");
  co_return *revision;
}

asio::awaitable<std::uint64_t> ScheduleStore::save_schedule(Schedule schedule) {
  std::string value = checked_value(schedule);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  co_return co_await bucket.put(schedule.id, std::move(value));
}

asio::awaitable<std::optional<ScheduleRecord>> ScheduleStore::get_schedule(std::string schedule_id) {
  validate_kv_key("schedule_id", schedule_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  auto entry = co_await bucket.get(schedule_id);
  if (!entry) co_return std::nullopt;
  co_return ScheduleRecord{decode_stored(backend_, *entry), entry->revision};
}

asio::awaitable<std::optional<std::uint64_t>> ScheduleStore::update_schedule(Schedule schedule,
                                                                              std::uint64_t expected_revision) {
  std::string value = checked_value(schedule);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  co_return co_await bucket.update(schedule.id, std::move(value), expected_revision);
}

asio::awaitable<bool> ScheduleStore::delete_schedule(std::string schedule_id) {
  validate_kv_key("schedule_id", schedule_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  if (!co_await bucket.get(schedule_id)) co_return false;
  co_await bucket.erase(schedule_id);
  co_return true;
}

asio::awaitable<std::vector<ScheduleRecord>> ScheduleStore::list_schedules(std::optional<ScheduleStatus> status,
                                                                          std::size_t limit, std::size_t offset) {
  co_await ensure();
  auto bucket = bucket_of(backend_);
  std::vector<detail::KvEntry> entries = co_await bucket.list();
  std::vector<ScheduleRecord> out;
  std::size_t matched = 0;
  for (auto& entry : entries) {
    std::optional<Schedule> schedule;
    try {
      schedule = decode_stored(backend_, entry);
    } catch (const Error& e) {
      backend_.log().warn("omniq: skipping a stored value: {}", e.what());
      continue;
    }
    if (status && schedule->status != *status) continue;
    if (matched++ >= offset && out.size() < limit) out.push_back(ScheduleRecord{std::move(*schedule), entry.revision});
  }
  co_return out;
}

asio::awaitable<std::vector<ScheduleRecord>> ScheduleStore::get_ready_schedules(Timestamp at) {
  std::vector<ScheduleRecord> all = co_await list_schedules(ScheduleStatus::active, static_cast<std::size_t>(-1), 0);
  std::vector<ScheduleRecord> ready;
  for (auto& r : all)
    if (r.schedule.is_ready(at)) ready.push_back(std::move(r));
  std::sort(ready.begin(), ready.end(),
            [](const ScheduleRecord& a, const ScheduleRecord& b) { return *a.schedule.next_run < *b.schedule.next_run; });
  co_return ready;
}

template <class Change>
asio::awaitable<bool> ScheduleStore::change(std::string schedule_id, Change change) {
  for (int attempt = 0; attempt < kChangeAttempts; ++attempt) {
    auto record = co_await get_schedule(schedule_id);
    if (!record) co_return false;
    Schedule updated = record->schedule;
    if (!change(updated)) co_return false;
    if (co_await update_schedule(std::move(updated), record->revision)) co_return true;
  }
  throw_error(errc::timeout, "schedule " + schedule_id + " kept changing under " + std::to_string(kChangeAttempts) +
                                 " attempts to update it");
}

asio::awaitable<bool> ScheduleStore::pause_schedule(std::string schedule_id) {
  const bool paused = co_await change(schedule_id, [](Schedule& s) {
    if (s.status != ScheduleStatus::active) return false;
    s.pause();
    return true;
  });
  if (paused) {
    TaskEvent event = events::schedule_paused(schedule_id);
    co_await backend_.event_log().log_event(std::move(event));
  }
  co_return paused;
}

asio::awaitable<bool> ScheduleStore::resume_schedule(std::string schedule_id) {
  const bool resumed = co_await change(schedule_id, [](Schedule& s) {
    if (s.status != ScheduleStatus::paused) return false;
    s.resume(now());
    return true;
  });
  if (resumed) {
    TaskEvent event = events::schedule_resumed(schedule_id);
    co_await backend_.event_log().log_event(std::move(event));
  }
  co_return resumed;
}

}  // namespace omniq
