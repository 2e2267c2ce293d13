// A unit of work on the task queue: which function to call, its arguments, where and when to
// run it, and its retry policy. Encoded as versioned JSON (see encode / decode_task).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "omniq/time.hpp"
#include "omniq/uuid.hpp"

namespace omniq {

/// A task's place in its life. The task as enqueued says `pending`; what get_task and
/// list_tasks report is read from where each fact is stored (docs/task-queue.md, "Task
/// state"): `delayed` (pending with a run_at still ahead: a delay or a retry's backoff),
/// `running` (a worker claimed it), `completed`, `failed` (failed for good, its dead letter
/// since removed), `dead_lettered` (failed for good and kept in the dead-letter stream),
/// `cancelled`, `expired`.
enum class TaskStatus { pending, running, completed, failed, cancelled, expired, delayed, dead_lettered };

std::string_view to_string(TaskStatus status) noexcept;
/// Throws omniq::Error(errc::decode_error) listing the valid values.
TaskStatus parse_task_status(std::string_view text);

struct Task {
  /// Priorities outside this range are rejected by validate(); a bounded range lets the
  /// queue map priorities to ordered lanes.
  static constexpr int min_priority = -1000;
  static constexpr int max_priority = 1000;
  /// Exponential backoff stops doubling here (or at retry_delay, if that is longer).
  static constexpr Duration max_retry_backoff = std::chrono::hours(1);

  std::string id = new_uuid();
  std::string func{};
  nlohmann::json args = nlohmann::json::array();
  nlohmann::json kwargs = nlohmann::json::object();
  std::string queue_name = "default";
  int priority = 0;  // higher runs first
  Timestamp created_at = now();
  std::optional<Timestamp> run_at{};  // not before this time
  std::optional<Duration> ttl{};      // counted from created_at
  std::optional<Timestamp> expires_at{};
  TaskStatus status = TaskStatus::pending;
  int retry_count = 0;
  int max_retries = 3;
  Duration retry_delay = std::chrono::seconds(1);  // first retry; doubles after each
  /// Longest one attempt may run before the worker cancels it; nullopt: the worker's default.
  std::optional<Duration> timeout{};
  std::vector<std::string> dependencies{};         // task ids
  std::vector<std::string> callbacks{};
  nlohmann::json metadata = nlohmann::json::object();

  /// Throws omniq::Error: errc::invalid_name for an id, queue name or dependency that is not
  /// a safe subject token; errc::invalid_argument for any other field out of its range.
  void validate() const;

  /// The earlier of expires_at and created_at + ttl, or nullopt when neither is set.
  std::optional<Timestamp> expiry() const;
  bool is_expired(Timestamp at) const;  // at >= expiry()
  bool is_ready(Timestamp at) const;    // no run_at, or run_at <= at
  bool can_retry() const noexcept { return retry_count < max_retries; }
  /// retry_delay * 2^retry_count, capped at max(retry_delay, max_retry_backoff); never overflows.
  Duration retry_backoff() const;
};

void to_json(nlohmann::json& j, TaskStatus status);
void from_json(const nlohmann::json& j, TaskStatus& status);
void to_json(nlohmann::json& j, const Task& task);
void from_json(const nlohmann::json& j, Task& task);  // throws omniq::Error(decode_error)

/// Compact JSON text with "schema_version": 1. Throws omniq::Error(invalid_argument) if a
/// string holds invalid UTF-8 or a timestamp is outside [min_timestamp, max_timestamp]
/// (the same holds for the other models' encode).
std::string encode(const Task& task);
/// Throws omniq::Error(errc::decode_error) naming the field at fault.
Task decode_task(std::string_view text);

}  // namespace omniq
