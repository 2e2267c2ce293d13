// The outcome of a task, kept in the result store under the task's id: its status, the
// returned value or the error, timings and the worker that ran it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "omniq/time.hpp"

namespace omniq {

enum class ResultStatus { pending, success, error, cancelled, expired };

std::string_view to_string(ResultStatus status) noexcept;
/// Throws omniq::Error(errc::decode_error) listing the valid values.
ResultStatus parse_result_status(std::string_view text);

struct TaskResult {
  std::string task_id{};
  ResultStatus status = ResultStatus::pending;
  nlohmann::json result{};  // the task's return value (null until it succeeds)
  std::optional<std::string> error{};
  std::optional<std::string> error_type{};
  Timestamp created_at = now();
  std::optional<Timestamp> started_at{};
  std::optional<Timestamp> completed_at{};
  std::optional<Duration> ttl{};  // counted from created_at
  std::optional<Timestamp> expires_at{};
  std::optional<std::string> worker_id{};
  std::optional<Duration> execution_time{};
  /// Written by the worker with every claim and outcome: the task's queue and function (a
  /// finished task's message is gone from the stream; these let it be listed by queue).
  std::optional<std::string> queue_name{};
  std::optional<std::string> func{};
  /// The last progress(fraction, message) of the run that holds or held the claim.
  std::optional<double> progress{};
  std::optional<std::string> progress_message{};
  nlohmann::json metadata = nlohmann::json::object();

  /// status success, result = value, completed_at = now().
  static TaskResult success(std::string task_id, nlohmann::json value);
  /// status error, completed_at = now().
  static TaskResult failure(std::string task_id, std::string error_type, std::string message);

  /// Throws omniq::Error(errc::invalid_name) when task_id is not a safe token (it is a key).
  void validate() const;
  /// The earlier of expires_at and created_at + ttl, or nullopt when neither is set.
  std::optional<Timestamp> expiry() const;
  bool is_expired(Timestamp at) const;  // at >= expiry()
};

void to_json(nlohmann::json& j, ResultStatus status);
void from_json(const nlohmann::json& j, ResultStatus& status);
void to_json(nlohmann::json& j, const TaskResult& result);
void from_json(const nlohmann::json& j, TaskResult& result);  // throws omniq::Error(decode_error)

std::string encode(const TaskResult& result);
TaskResult decode_result(std::string_view text);  // throws omniq::Error(decode_error)

}  // namespace omniq
