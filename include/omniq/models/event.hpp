// A task lifecycle event for the event log. The event type and task id become tokens of the
// event subject (omniq.events.{event_type}.{task_id}), so both must be safe tokens.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "omniq/time.hpp"
#include "omniq/uuid.hpp"

namespace omniq {

/// The names (to_string) are the exact lower-case words used in subjects.
enum class EventType {
  enqueued,
  dequeued,
  executing,
  completed,
  failed,
  retry,
  cancelled,
  expired,
  schedule_paused,
  schedule_resumed,
};

std::string_view to_string(EventType type) noexcept;
/// Throws omniq::Error(errc::decode_error) listing the valid values.
EventType parse_event_type(std::string_view text);

struct TaskEvent {
  std::string id = new_uuid();
  std::string task_id{};
  EventType event_type = EventType::enqueued;
  Timestamp timestamp = now();
  std::optional<std::string> message{};
  nlohmann::json details = nlohmann::json::object();
  std::optional<std::string> worker_id{};
  std::optional<std::string> queue_name{};
  std::optional<std::string> schedule_id{};
  std::optional<std::string> error_type{};
  std::optional<std::string> error_message{};
  std::optional<Duration> execution_time{};
  nlohmann::json metadata = nlohmann::json::object();

  static TaskEvent make(EventType type, std::string task_id);

  /// Throws omniq::Error(errc::invalid_name) when task_id is not a safe subject token.
  void validate() const;
};

void to_json(nlohmann::json& j, EventType type);
void from_json(const nlohmann::json& j, EventType& type);
void to_json(nlohmann::json& j, const TaskEvent& event);
void from_json(const nlohmann::json& j, TaskEvent& event);  // throws omniq::Error(decode_error)

std::string encode(const TaskEvent& event);
TaskEvent decode_event(std::string_view text);  // throws omniq::Error(decode_error)

}  // namespace omniq
