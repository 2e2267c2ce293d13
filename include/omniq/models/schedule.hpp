// A recurring or one-off schedule kept in the schedule store: it enqueues `func` on a cron
// expression (in a time zone), at a fixed interval, or once at a timestamp.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "omniq/time.hpp"
#include "omniq/uuid.hpp"

namespace omniq {

enum class ScheduleType { cron, interval, timestamp };
enum class ScheduleStatus { active, paused, completed, cancelled };

std::string_view to_string(ScheduleType type) noexcept;
std::string_view to_string(ScheduleStatus status) noexcept;
/// Throw omniq::Error(errc::decode_error) listing the valid values.
ScheduleType parse_schedule_type(std::string_view text);
ScheduleStatus parse_schedule_status(std::string_view text);

struct Schedule {
  /// The shortest interval an interval schedule may have. An occurrence's task id has
  /// one-second resolution (occurrence_task_id), so two occurrences within one second would
  /// share an id and the tasks stream would drop the second as a duplicate, while run_count
  /// still counted it.
  static constexpr Duration min_interval = std::chrono::seconds(1);

  std::string id = new_uuid();  // the key in the schedule store
  ScheduleType type = ScheduleType::cron;
  std::string func{};
  std::optional<std::string> cron_expression{};  // type cron
  std::string time_zone = "UTC";                 // type cron: IANA name the expression is read in
  std::optional<Duration> interval{};            // type interval: at least min_interval
  std::optional<Timestamp> timestamp{};          // type timestamp
  nlohmann::json args = nlohmann::json::array();
  nlohmann::json kwargs = nlohmann::json::object();
  std::string queue_name = "default";
  ScheduleStatus status = ScheduleStatus::active;
  Timestamp created_at = now();
  std::optional<Timestamp> last_run{};
  std::optional<Timestamp> next_run{};
  std::optional<int> max_runs{};  // completed after this many runs
  int run_count = 0;
  std::optional<Duration> ttl{};  // counted from created_at
  std::optional<Timestamp> expires_at{};
  nlohmann::json metadata = nlohmann::json::object();

  /// Parses the expression at once: an invalid expression or zone throws
  /// omniq::Error(errc::invalid_cron). next_run = the first occurrence after now().
  static Schedule from_cron(std::string expression, std::string func,
                            nlohmann::json args = nlohmann::json::array(),
                            nlohmann::json kwargs = nlohmann::json::object(),
                            std::string queue_name = "default", std::string time_zone = "UTC");
  /// `every` must be at least min_interval, 1 s (else errc::invalid_argument naming the value).
  /// next_run = now() + every.
  static Schedule from_interval(Duration every, std::string func,
                                nlohmann::json args = nlohmann::json::array(),
                                nlohmann::json kwargs = nlohmann::json::object(),
                                std::string queue_name = "default");
  /// Runs once; next_run = at.
  static Schedule from_timestamp(Timestamp at, std::string func,
                                 nlohmann::json args = nlohmann::json::array(),
                                 nlohmann::json kwargs = nlohmann::json::object(),
                                 std::string queue_name = "default");

  /// Lifecycle. Each acts only from the states named; otherwise it changes nothing.
  void pause();                       // active -> paused
  void resume(Timestamp at = now());  // paused -> active; cron and interval schedules get a
                                      /// fresh next_run after `at` (missed runs are skipped)
  void cancel();                      // active or paused -> cancelled, next_run cleared
  /// Records the run of `occurrence` (the next_run that fired, not the wall clock, so an
  /// interval schedule does not drift): run_count + 1, last_run = occurrence, next_run = the
  /// next occurrence after it. Completes the schedule (next_run cleared) when max_runs is
  /// reached, no occurrence is left, or the next one is not before expiry().
  void mark_run(Timestamp occurrence);

  /// The first occurrence strictly after `t`: cron → the expression's next match, interval →
  /// t + interval, timestamp → the timestamp if it is after t. Throws omniq::Error if the
  /// type's field is missing (invalid_argument) or the expression is invalid (invalid_cron).
  std::optional<Timestamp> compute_next_after(Timestamp t) const;

  bool is_ready(Timestamp at) const;  // active, next_run <= at, not expired
  /// The earlier of expires_at and created_at + ttl, or nullopt when neither is set.
  std::optional<Timestamp> expiry() const;
  bool is_expired(Timestamp at) const;  // at >= expiry()

  /// Throws omniq::Error: invalid_name for an id that is not a KV key or a queue name that is
  /// not a safe token; invalid_cron for a bad expression or zone; invalid_argument otherwise
  /// (empty func, missing cron_expression / interval / timestamp for the type, an interval
  /// under min_interval, ...). The schedule store reads back only schedules that pass, so one
  /// stored by an older version or another client with a shorter interval is never fired.
  void validate() const;
};

/// The task id of a schedule's occurrence, "<schedule id>-<unix seconds>" ("s<hash>-<unix
/// seconds>" when the schedule id is not a subject token): the same for every scheduler, so
/// the tasks stream's deduplication keeps one task per occurrence. Whole seconds: a cron
/// occurrence is a whole second and an interval is at least Schedule::min_interval, so a
/// schedule's occurrences never share one (from 1970 on: before it, the seconds are cut
/// toward zero, and -0.5 s and 0.5 s share "0").
std::string occurrence_task_id(const std::string& schedule_id, Timestamp occurrence);

void to_json(nlohmann::json& j, ScheduleType type);
void from_json(const nlohmann::json& j, ScheduleType& type);
void to_json(nlohmann::json& j, ScheduleStatus status);
void from_json(const nlohmann::json& j, ScheduleStatus& status);
void to_json(nlohmann::json& j, const Schedule& schedule);
void from_json(const nlohmann::json& j, Schedule& schedule);  // throws omniq::Error(decode_error)

std::string encode(const Schedule& schedule);
Schedule decode_schedule(std::string_view text);  // throws omniq::Error(decode_error)

}  // namespace omniq
