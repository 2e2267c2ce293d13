// The schedule store: schedules in a KV bucket without TTL, updated by compare-and-swap.
#include "omniq/detail/connection.hpp"
#include "omniq/detail/ensure.hpp"
#include "omniq/schedule_store.hpp"

#include <algorithm>

#include "omniq/detail/model_bucket.hpp"
#include "omniq/error.hpp"
#include "omniq/event_log.hpp"
#include "omniq/validation.hpp"

namespace omniq {

namespace {
constexpr int kChangeAttempts = 10;  // compare-and-swap retries of pause / resume

// Schedules by id. Any client allowed to publish on the bucket's subjects may have put
// something there that decodes and still cannot be fired (an invalid cron expression, an id
// that is not its key): a scheduler would enqueue its task on every tick and never advance it,
// so such a value is refused like one that does not decode.
struct ScheduleTraits {
  static constexpr std::string_view kind = "schedule";
  static std::string label(const Schedule& schedule) { return "schedule " + schedule.id; }
  static Schedule decode(std::string_view text, const std::string& key) {
    Schedule schedule = decode_schedule(text);
    if (schedule.id != key) throw_error(errc::decode_error, "it holds schedule " + schedule.id);
    schedule.validate();
    return schedule;
  }
};
using Schedules = detail::ModelBucket<Schedule, ScheduleTraits>;

Schedules schedules_of(NatsBackend& backend) {
  return Schedules(detail::connection_of(backend), backend.config().schedules_bucket);
}
}  // namespace

asio::awaitable<void> ScheduleStore::ensure() {
  co_await detail::ensure_bucket_once(provisioned_, backend_.connection(), backend_.config().schedules_bucket);
}

asio::awaitable<BucketReport> ScheduleStore::info() {
  co_await ensure();
  co_return co_await detail::bucket_report(backend_.connection(), backend_.config().schedules_bucket.name);
}

asio::awaitable<std::uint64_t> ScheduleStore::create_schedule(Schedule schedule) {
  auto schedules = schedules_of(backend_);
  std::string value = schedules.checked_value(schedule);
  co_await ensure();
  auto revision = co_await schedules.kv().create(schedule.id, std::move(value));
  if (!revision) throw_error(errc::already_exists, "schedule " + schedule.id + " already exists");
  co_return *revision;
}

asio::awaitable<std::uint64_t> ScheduleStore::save_schedule(Schedule schedule) {
  auto schedules = schedules_of(backend_);
  std::string value = schedules.checked_value(schedule);
  co_await ensure();
  co_return co_await schedules.kv().put(schedule.id, std::move(value));
}

asio::awaitable<std::optional<ScheduleRecord>> ScheduleStore::get_schedule(std::string schedule_id) {
  validate_kv_key("schedule_id", schedule_id);
  co_await ensure();
  auto stored = co_await schedules_of(backend_).read(std::move(schedule_id));
  if (!stored) co_return std::nullopt;
  co_return ScheduleRecord{std::move(stored->model), stored->revision};
}

asio::awaitable<std::optional<std::uint64_t>> ScheduleStore::update_schedule(Schedule schedule,
                                                                              std::uint64_t expected_revision) {
  auto schedules = schedules_of(backend_);
  std::string value = schedules.checked_value(schedule);
  co_await ensure();
  co_return co_await schedules.kv().update(schedule.id, std::move(value), expected_revision);
}

asio::awaitable<bool> ScheduleStore::delete_schedule(std::string schedule_id) {
  validate_kv_key("schedule_id", schedule_id);
  co_await ensure();
  co_return co_await schedules_of(backend_).remove(std::move(schedule_id));
}

asio::awaitable<std::vector<ScheduleRecord>> ScheduleStore::list_schedules(std::optional<ScheduleStatus> status,
                                                                          std::size_t limit, std::size_t offset) {
  co_await ensure();
  std::vector<ScheduleRecord> out;
  std::size_t matched = 0;
  for (auto& stored : co_await schedules_of(backend_).list(&backend_.log())) {
    if (status && stored.model.status != *status) continue;
    if (matched++ >= offset && out.size() < limit) out.push_back(ScheduleRecord{std::move(stored.model), stored.revision});
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
