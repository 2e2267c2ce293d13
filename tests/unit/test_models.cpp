#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "omniq/error.hpp"
#include "omniq/models.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using omniq::Duration;
using omniq::errc;
using omniq::Timestamp;

namespace Catch {
template <>
struct StringMaker<omniq::Timestamp> {
  static std::string convert(omniq::Timestamp t) { return omniq::format_timestamp(t); }
};
template <>
struct StringMaker<omniq::Duration> {
  static std::string convert(omniq::Duration d) { return std::to_string(d.count()) + "us"; }
};
}  // namespace Catch

namespace {

Timestamp at(const char* iso) { return omniq::parse_timestamp(iso); }

// What a call threw: the omniq::Error's kind and message. Fails the test if nothing was thrown.
struct Thrown {
  errc kind;
  std::string message;
};

template <class F>
Thrown error_of(F&& f) {
  try {
    f();
  } catch (const omniq::Error& e) {
    return {e.kind(), e.what()};
  }
  FAIL("expected an omniq::Error");
  return {};
}

std::string decode_error_of(const std::string& text) {
  const auto e = error_of([&] { (void)omniq::decode_task(text); });
  CHECK(e.kind == errc::decode_error);
  return e.message;
}

// A task's JSON with one member replaced (or removed when `value` is a discarded value).
std::string task_json_with(const std::string& member, const json& value) {
  json j = json::parse(omniq::encode(omniq::Task{.func = "add"}));
  if (value.is_discarded())
    j.erase(member);
  else
    j[member] = value;
  return j.dump();
}

// Each value's name is exactly `name`, and parses back to the value.
template <class E>
void check_names(const std::vector<std::pair<E, std::string>>& table, E (*parse)(std::string_view)) {
  for (const auto& [value, name] : table) {
    CHECK(omniq::to_string(value) == name);
    CHECK(parse(name) == value);
  }
}

const json nested = {{"user", {{"id", 42}, {"tags", {"a", "b"}}}}, {"ratio", 0.25}, {"none", nullptr}};

}  // namespace

// ---------------------------------------------------------------------------------------
// Enums

TEST_CASE("enum values are the lower-case names and parse back", "[models]") {
  using omniq::EventType;
  const std::vector<std::pair<EventType, std::string>> events = {
      {EventType::enqueued, "enqueued"},
      {EventType::dequeued, "dequeued"},
      {EventType::executing, "executing"},
      {EventType::completed, "completed"},
      {EventType::failed, "failed"},
      {EventType::retry, "retry"},
      {EventType::cancelled, "cancelled"},
      {EventType::expired, "expired"},
      {EventType::schedule_paused, "schedule_paused"},
      {EventType::schedule_resumed, "schedule_resumed"},
  };
  check_names<EventType>(events, omniq::parse_event_type);
  for (const auto& [type, name] : events) CHECK(omniq::is_valid_token(name));  // they are subject tokens

  check_names<omniq::TaskStatus>({{omniq::TaskStatus::pending, "pending"},
                                  {omniq::TaskStatus::running, "running"},
                                  {omniq::TaskStatus::completed, "completed"},
                                  {omniq::TaskStatus::failed, "failed"},
                                  {omniq::TaskStatus::cancelled, "cancelled"},
                                  {omniq::TaskStatus::expired, "expired"},
                                  {omniq::TaskStatus::delayed, "delayed"},
                                  {omniq::TaskStatus::dead_lettered, "dead_lettered"}},
                                 omniq::parse_task_status);
  check_names<omniq::ResultStatus>({{omniq::ResultStatus::pending, "pending"},
                                    {omniq::ResultStatus::success, "success"},
                                    {omniq::ResultStatus::error, "error"},
                                    {omniq::ResultStatus::cancelled, "cancelled"},
                                    {omniq::ResultStatus::expired, "expired"}},
                                   omniq::parse_result_status);
  check_names<omniq::ScheduleType>({{omniq::ScheduleType::cron, "cron"},
                                    {omniq::ScheduleType::interval, "interval"},
                                    {omniq::ScheduleType::timestamp, "timestamp"}},
                                   omniq::parse_schedule_type);
  check_names<omniq::ScheduleStatus>({{omniq::ScheduleStatus::active, "active"},
                                      {omniq::ScheduleStatus::paused, "paused"},
                                      {omniq::ScheduleStatus::completed, "completed"},
                                      {omniq::ScheduleStatus::cancelled, "cancelled"}},
                                     omniq::parse_schedule_status);
}

TEST_CASE("an unknown enum name is a decode error listing the valid values", "[models]") {
  const auto e = error_of([] { (void)omniq::parse_task_status("Running"); });
  CHECK(e.kind == errc::decode_error);
  CHECK(e.message == std::string("unknown task status \"Running\" "
                                 "(valid: pending, running, completed, failed, cancelled, expired, delayed, dead_lettered)"));
  CHECK_THAT(error_of([] { (void)omniq::parse_event_type("EventType.ENQUEUED"); }).message,
             Catch::Contains("schedule_paused, schedule_resumed"));
}

TEST_CASE("enums convert to JSON as names, not integers", "[models]") {
  CHECK(json(omniq::TaskStatus::failed) == "failed");
  CHECK(json(omniq::EventType::schedule_resumed) == "schedule_resumed");
  CHECK(json("paused").get<omniq::ScheduleStatus>() == omniq::ScheduleStatus::paused);
}

// ---------------------------------------------------------------------------------------
// Task

TEST_CASE("a task has the documented defaults", "[models]") {
  const auto before = omniq::now();
  const omniq::Task t{.func = "add", .args = {1, 2}};
  CHECK(omniq::is_valid_token(t.id));
  CHECK(t.func == "add");
  CHECK(t.args == json::array({1, 2}));
  CHECK(t.kwargs == json::object());
  CHECK(t.queue_name == "default");
  CHECK(t.priority == 0);
  CHECK(t.created_at >= before);
  CHECK(t.created_at <= omniq::now());
  CHECK_FALSE(t.run_at);
  CHECK_FALSE(t.ttl);
  CHECK_FALSE(t.expires_at);
  CHECK(t.status == omniq::TaskStatus::pending);
  CHECK(t.retry_count == 0);
  CHECK(t.max_retries == 3);
  CHECK(t.retry_delay == 1s);
  CHECK(t.dependencies.empty());
  CHECK(t.callbacks.empty());
  CHECK(t.metadata == json::object());
  CHECK_NOTHROW(t.validate());
  CHECK(omniq::Task{.func = "f"}.id != omniq::Task{.func = "f"}.id);
}

TEST_CASE("a task with every field set survives encode and decode", "[models]") {
  const omniq::Task t{
      .id = "task-1",
      .func = "reports.build",
      .args = {1, "two", 3.5, nested, json::array()},
      .kwargs = {{"nested", nested}, {"flag", true}},
      .queue_name = "high_priority",
      .priority = -7,
      .created_at = at("2026-03-01T12:34:56.123456Z"),
      .run_at = at("2026-03-01T13:00:00.000001Z"),
      .ttl = 90s + 250us,
      .expires_at = at("2026-03-02T00:00:00Z"),
      .status = omniq::TaskStatus::running,
      .retry_count = 2,
      .max_retries = 5,
      .retry_delay = 1500ms,
      .timeout = 42s,
      .dependencies = {"dep-a", "dep-b"},
      .callbacks = {"notify"},
      .metadata = {{"trace", "abc"}, {"nested", nested}},
  };
  const std::string text = omniq::encode(t);
  const omniq::Task d = omniq::decode_task(text);
  CHECK(d.id == t.id);
  CHECK(d.func == t.func);
  CHECK(d.args == t.args);
  CHECK(d.kwargs == t.kwargs);
  CHECK(d.queue_name == t.queue_name);
  CHECK(d.priority == t.priority);
  CHECK(d.created_at == t.created_at);
  CHECK(d.run_at == t.run_at);
  CHECK(d.ttl == t.ttl);
  CHECK(d.expires_at == t.expires_at);
  CHECK(d.status == t.status);
  CHECK(d.retry_count == t.retry_count);
  CHECK(d.max_retries == t.max_retries);
  CHECK(d.retry_delay == t.retry_delay);
  CHECK(d.timeout == t.timeout);
  CHECK(d.dependencies == t.dependencies);
  CHECK(d.callbacks == t.callbacks);
  CHECK(d.metadata == t.metadata);

  // The wire form: versioned, ISO-8601 timestamps, durations in seconds, enum names.
  const json j = json::parse(text);
  CHECK(j["schema_version"] == 1);
  CHECK(j["created_at"] == "2026-03-01T12:34:56.123456Z");
  CHECK(j["run_at"] == "2026-03-01T13:00:00.000001Z");
  CHECK(j["retry_delay"].is_number_float());
  CHECK(j["retry_delay"].get<double>() == 1.5);
  CHECK(j["ttl"].get<double>() == Approx(90.00025).epsilon(1e-12));
  CHECK(j["status"] == "running");
  CHECK(j["timeout"].get<double>() == 42.0);
  CHECK(text.find('\n') == std::string::npos);  // compact
}

TEST_CASE("a task with no optionals round-trips with them absent", "[models]") {
  const omniq::Task t{.func = "noop"};
  const std::string text = omniq::encode(t);
  const json j = json::parse(text);
  for (const char* absent : {"run_at", "ttl", "expires_at"}) {
    INFO(absent);
    CHECK_FALSE(j.contains(absent));
  }
  const auto d = omniq::decode_task(text);
  CHECK(d.id == t.id);
  CHECK(d.created_at == t.created_at);
  CHECK_FALSE(d.run_at);
  CHECK_FALSE(d.ttl);
  CHECK_FALSE(d.expires_at);
  CHECK(d.args == json::array());
  CHECK(d.kwargs == json::object());
}

TEST_CASE("decoding accepts null optionals, a missing schema_version, and ignores unknown fields",
          "[models]") {
  json j = json::parse(omniq::encode(omniq::Task{.id = "t1", .func = "f", .priority = 5}));
  j["run_at"] = nullptr;
  j["ttl"] = nullptr;
  j["expires_at"] = nullptr;
  j.erase("schema_version");
  j["added_in_a_later_version"] = {{"x", 1}};
  const auto d = omniq::decode_task(j.dump());
  CHECK(d.id == "t1");
  CHECK(d.priority == 5);
  CHECK_FALSE(d.run_at);
  CHECK_FALSE(d.ttl);
  CHECK_FALSE(d.expires_at);
}

TEST_CASE("decoding a minimal task fills in the defaults", "[models]") {
  const auto d = omniq::decode_task(R"({"id":"t9","func":"f","created_at":"2026-01-01T00:00:00Z"})");
  CHECK(d.queue_name == "default");
  CHECK(d.max_retries == 3);
  CHECK(d.retry_delay == 1s);
  CHECK(d.status == omniq::TaskStatus::pending);
  CHECK(d.created_at == at("2026-01-01T00:00:00Z"));
}

TEST_CASE("task decode errors name the model and the field at fault", "[models]") {
  CHECK_THAT(decode_error_of("{\"id\": "), Catch::StartsWith("task: not JSON: "));
  CHECK(decode_error_of("[1, 2]") == "task: not a JSON object (got array)");
  CHECK(decode_error_of("\"task\"") == "task: not a JSON object (got string)");
  CHECK(decode_error_of(task_json_with("func", json(json::value_t::discarded))) ==
        "task: missing field \"func\"");
  CHECK(decode_error_of(task_json_with("func", nullptr)) == "task: missing field \"func\"");
  CHECK(decode_error_of(task_json_with("id", json(json::value_t::discarded))) ==
        "task: missing field \"id\"");
  CHECK(decode_error_of(task_json_with("priority", "high")) == "task: field \"priority\" must be an integer");
  CHECK(decode_error_of(task_json_with("priority", 1.5)) == "task: field \"priority\" must be an integer");
  CHECK(decode_error_of(task_json_with("priority", 1LL << 40)) ==
        "task: field \"priority\" must be an integer that fits in 32 bits");
  CHECK(decode_error_of(task_json_with("func", 7)) == "task: field \"func\" must be a string");
  CHECK(decode_error_of(task_json_with("args", {{"a", 1}})) == "task: field \"args\" must be an array");
  CHECK(decode_error_of(task_json_with("kwargs", json::array())) ==
        "task: field \"kwargs\" must be an object");
  CHECK(decode_error_of(task_json_with("dependencies", {"a", 1})) ==
        "task: field \"dependencies\" must be an array of strings");
  CHECK(decode_error_of(task_json_with("retry_delay", "1s")) ==
        "task: field \"retry_delay\" must be a number of seconds (at most 9e12)");
  CHECK_THAT(decode_error_of(task_json_with("created_at", "yesterday")),
             Catch::StartsWith("task: field \"created_at\" must be an ISO-8601 timestamp"));
  CHECK(decode_error_of(task_json_with("status", "done")) ==
        "task: field \"status\": unknown task status \"done\" "
        "(valid: pending, running, completed, failed, cancelled, expired, delayed, dead_lettered)");
}

TEST_CASE("a task written by a newer schema version is rejected, not misread", "[models]") {
  CHECK(decode_error_of(task_json_with("schema_version", 2)) ==
        "task: schema_version 2 is newer than this version of omniq reads (1); upgrade omniq");
  CHECK(decode_error_of(task_json_with("schema_version", "1")) ==
        "task: field \"schema_version\" must be a positive integer");
}

TEST_CASE("encoding a string that is not UTF-8 is an invalid_argument error", "[models]") {
  const auto e = error_of([] { (void)omniq::encode(omniq::Task{.func = "f", .args = {"\xFF"}}); });
  CHECK(e.kind == errc::invalid_argument);
  CHECK_THAT(e.message, Catch::StartsWith("task: cannot encode as JSON"));
}

TEST_CASE("a task expires at expires_at or created_at + ttl, whichever is earlier", "[models]") {
  const Timestamp t0 = at("2026-01-01T00:00:00Z");
  const omniq::Task never{.func = "f", .created_at = t0};
  CHECK_FALSE(never.expiry());
  CHECK_FALSE(never.is_expired(t0 + std::chrono::years(100)));

  const omniq::Task by_ttl{.func = "f", .created_at = t0, .ttl = 60s};
  CHECK(by_ttl.expiry() == t0 + 60s);
  CHECK_FALSE(by_ttl.is_expired(t0 + 59s));
  CHECK(by_ttl.is_expired(t0 + 60s));

  const omniq::Task by_time{.func = "f", .created_at = t0, .expires_at = t0 + 10s};
  CHECK_FALSE(by_time.is_expired(t0 + 9s));
  CHECK(by_time.is_expired(t0 + 10s));

  const omniq::Task both{.func = "f", .created_at = t0, .ttl = 30s, .expires_at = t0 + 1h};
  CHECK(both.expiry() == t0 + 30s);

  // A huge ttl saturates instead of overflowing into the past.
  const omniq::Task huge{.func = "f", .created_at = t0, .ttl = Duration::max()};
  CHECK_FALSE(huge.is_expired(t0 + std::chrono::years(1000)));
}

TEST_CASE("a task is ready when it has no run_at or run_at has come", "[models]") {
  const Timestamp t0 = at("2026-01-01T00:00:00Z");
  CHECK(omniq::Task{.func = "f"}.is_ready(t0));
  const omniq::Task later{.func = "f", .run_at = t0 + 5min};
  CHECK_FALSE(later.is_ready(t0));
  CHECK(later.is_ready(t0 + 5min));
}

TEST_CASE("retries back off exponentially from retry_delay, capped", "[models]") {
  omniq::Task t{.func = "f", .max_retries = 3};
  std::vector<Duration> delays;
  while (t.can_retry()) {
    delays.push_back(t.retry_backoff());
    ++t.retry_count;
  }
  CHECK(delays == std::vector<Duration>{1s, 2s, 4s});
  CHECK(t.retry_count == 3);
  CHECK_FALSE(t.can_retry());

  t.retry_count = 1000;  // would overflow without the cap
  CHECK(t.retry_backoff() == omniq::Task::max_retry_backoff);
  t.retry_delay = 2h;  // a delay above the cap is used as is, never shortened
  CHECK(t.retry_backoff() == 2h);
  t.retry_delay = 0s;
  CHECK(t.retry_backoff() == 0s);
  CHECK_FALSE(omniq::Task{.func = "f", .max_retries = 0}.can_retry());
}

TEST_CASE("task validation names the field and the fault", "[models]") {
  const auto check = [](const omniq::Task& t, errc kind, const std::string& message) {
    const auto e = error_of([&] { t.validate(); });
    CHECK(e.kind == kind);
    CHECK_THAT(e.message, Catch::Contains(message));
  };
  check({.func = "f", .queue_name = "emails.high"}, errc::invalid_name,
        "task.queue_name \"emails.high\" is invalid: '.' at position 6");
  check({.func = "f", .queue_name = "a>"}, errc::invalid_name, "'>' at position 1");
  check({.id = "id with space", .func = "f"}, errc::invalid_name,
        "task.id \"id with space\" is invalid: ' '");
  check({.func = "f", .dependencies = {"ok", "bad*"}}, errc::invalid_name, "task.dependencies[1] \"bad*\"");
  check({.func = ""}, errc::invalid_argument, "task.func must not be empty");
  check({.func = std::string(257, 'f')}, errc::invalid_argument,
        "task.func is too long: 257 characters (at most 256)");
  check({.func = "f", .args = {{"a", 1}}}, errc::invalid_argument,
        "task.args must be a JSON array, got object");
  check({.func = "f", .kwargs = json::array()}, errc::invalid_argument,
        "task.kwargs must be a JSON object, got array");
  check({.func = "f", .priority = 1001}, errc::invalid_argument,
        "task.priority 1001 is out of range (-1000 to 1000)");
  check({.func = "f", .priority = -1001}, errc::invalid_argument, "out of range");
  check({.func = "f", .max_retries = -1}, errc::invalid_argument, "task.max_retries must be >= 0, got -1");
  check({.func = "f", .retry_delay = -1s}, errc::invalid_argument, "task.retry_delay must be >= 0");
  check({.func = "f", .ttl = 0s}, errc::invalid_argument, "task.ttl must be positive");
  check({.func = "f", .timeout = -1s}, errc::invalid_argument, "task.timeout must be positive");
  CHECK_NOTHROW(omniq::Task{.func = "f", .priority = 1000, .dependencies = {omniq::new_uuid()}}.validate());
  CHECK_NOTHROW(omniq::Task{.func = "f", .priority = -1000}.validate());
}

// ---------------------------------------------------------------------------------------
// TaskResult

TEST_CASE("a result with every field set survives encode and decode", "[models]") {
  const omniq::TaskResult r{
      .task_id = "task-1",
      .status = omniq::ResultStatus::error,
      .result = nested,
      .error = "division by zero",
      .error_type = "ZeroDivisionError",
      .created_at = at("2026-03-01T12:00:00.000001Z"),
      .started_at = at("2026-03-01T12:00:01.5Z"),
      .completed_at = at("2026-03-01T12:00:02.999999Z"),
      .ttl = 7 * 24h,
      .expires_at = at("2026-03-08T12:00:00Z"),
      .worker_id = "worker-3",
      .execution_time = 1499999us,
      .queue_name = "images",
      .func = "resize",
      .progress = 0.375,
      .progress_message = "3 of 8",
      .metadata = {{"attempt", 2}},
  };
  const auto d = omniq::decode_result(omniq::encode(r));
  CHECK(d.queue_name == r.queue_name);
  CHECK(d.func == r.func);
  CHECK(d.progress == r.progress);  // a fraction, not truncated to an integer
  CHECK(d.progress_message == r.progress_message);
  CHECK(d.task_id == r.task_id);
  CHECK(d.status == r.status);
  CHECK(d.result == r.result);
  CHECK(d.error == r.error);
  CHECK(d.error_type == r.error_type);
  CHECK(d.created_at == r.created_at);
  CHECK(d.started_at == r.started_at);
  CHECK(d.completed_at == r.completed_at);
  CHECK(d.ttl == r.ttl);
  CHECK(d.expires_at == r.expires_at);
  CHECK(d.worker_id == r.worker_id);
  CHECK(d.execution_time == r.execution_time);
  CHECK(d.metadata == r.metadata);
}

TEST_CASE("a minimal result round-trips with optionals absent", "[models]") {
  const omniq::TaskResult r{.task_id = "t"};
  const std::string text = omniq::encode(r);
  CHECK(json::parse(text)["result"].is_null());
  CHECK_FALSE(json::parse(text).contains("error"));
  const auto d = omniq::decode_result(text);
  CHECK(d.status == omniq::ResultStatus::pending);
  CHECK(d.result.is_null());
  CHECK_FALSE(d.error);
  CHECK_FALSE(d.error_type);
  CHECK_FALSE(d.started_at);
  CHECK_FALSE(d.completed_at);
  CHECK_FALSE(d.ttl);
  CHECK_FALSE(d.worker_id);
  CHECK_FALSE(d.execution_time);
  CHECK_FALSE(d.progress);
  CHECK_FALSE(d.queue_name);
}

TEST_CASE("result decode errors name the model and field", "[models]") {
  const auto e =
      error_of([] { (void)omniq::decode_result(R"({"task_id":"t","created_at":"2026-01-01T00:00:00Z"})"); });
  CHECK(e.kind == errc::decode_error);
  CHECK(e.message == std::string("result: missing field \"status\""));
  CHECK(error_of([] {
          (void)omniq::decode_result(R"({"task_id":"t","status":"ok","created_at":"2026-01-01T00:00:00Z"})");
        }).message == std::string("result: field \"status\": unknown result status \"ok\" "
                                  "(valid: pending, success, error, cancelled, expired)"));
  CHECK(
      error_of([] {
        (void)omniq::decode_result(
            R"({"task_id":"t","status":"success","created_at":"2026-01-01T00:00:00Z","execution_time":"fast"})");
      }).message ==
      std::string("result: field \"execution_time\" must be a number of seconds (at most 9e12)"));
  CHECK_THAT(error_of([] { (void)omniq::decode_result("{\"schema_version\": 3}"); }).message,
             Catch::StartsWith("result: schema_version 3 is newer"));
}

TEST_CASE("success and failure results carry the outcome", "[models]") {
  const auto ok = omniq::TaskResult::success("t1", json{{"sum", 3}});
  CHECK(ok.task_id == "t1");
  CHECK(ok.status == omniq::ResultStatus::success);
  CHECK(ok.result == json{{"sum", 3}});
  CHECK(ok.completed_at);
  CHECK_FALSE(ok.error);

  const auto bad = omniq::TaskResult::failure("t2", "ValueError", "bad input");
  CHECK(bad.status == omniq::ResultStatus::error);
  CHECK(bad.error == "bad input");
  CHECK(bad.error_type == "ValueError");
  CHECK(bad.result.is_null());
  CHECK(bad.completed_at);

  CHECK(error_of([] { omniq::TaskResult::success("a.b", 1).validate(); }).kind == errc::invalid_name);
}

TEST_CASE("a result expires by ttl or expires_at", "[models]") {
  const Timestamp t0 = at("2026-01-01T00:00:00Z");
  const omniq::TaskResult r{.task_id = "t", .created_at = t0, .ttl = 24h};
  CHECK_FALSE(r.is_expired(t0 + 23h));
  CHECK(r.is_expired(t0 + 24h));
  CHECK(omniq::TaskResult{.task_id = "t", .expires_at = t0}.is_expired(t0));
  CHECK_FALSE(omniq::TaskResult{.task_id = "t"}.is_expired(t0 + std::chrono::years(50)));
}

// ---------------------------------------------------------------------------------------
// TaskEvent

TEST_CASE("an event with every field set survives encode and decode", "[models]") {
  const omniq::TaskEvent e{
      .id = "ev-1",
      .task_id = "task-1",
      .event_type = omniq::EventType::schedule_resumed,
      .timestamp = at("2026-03-01T12:00:00.654321Z"),
      .message = "resumed by operator",
      .details = {{"nested", nested}},
      .worker_id = "w1",
      .queue_name = "q1",
      .schedule_id = "sched/daily.report",
      .error_type = "Timeout",
      .error_message = "took too long",
      .execution_time = 2500ms,
      .metadata = {{"k", "v"}},
  };
  const std::string text = omniq::encode(e);
  CHECK(json::parse(text)["event_type"] == "schedule_resumed");
  const auto d = omniq::decode_event(text);
  CHECK(d.id == e.id);
  CHECK(d.task_id == e.task_id);
  CHECK(d.event_type == e.event_type);
  CHECK(d.timestamp == e.timestamp);
  CHECK(d.message == e.message);
  CHECK(d.details == e.details);
  CHECK(d.worker_id == e.worker_id);
  CHECK(d.queue_name == e.queue_name);
  CHECK(d.schedule_id == e.schedule_id);
  CHECK(d.error_type == e.error_type);
  CHECK(d.error_message == e.error_message);
  CHECK(d.execution_time == e.execution_time);
  CHECK(d.metadata == e.metadata);
}

TEST_CASE("a minimal event round-trips with optionals absent", "[models]") {
  const auto e = omniq::TaskEvent::make(omniq::EventType::enqueued, "t1");
  CHECK(omniq::is_valid_token(e.id));
  CHECK(e.task_id == "t1");
  CHECK(e.event_type == omniq::EventType::enqueued);
  const auto d = omniq::decode_event(omniq::encode(e));
  CHECK(d.id == e.id);
  CHECK(d.timestamp == e.timestamp);
  CHECK_FALSE(d.message);
  CHECK_FALSE(d.worker_id);
  CHECK_FALSE(d.queue_name);
  CHECK_FALSE(d.schedule_id);
  CHECK_FALSE(d.error_type);
  CHECK_FALSE(d.error_message);
  CHECK_FALSE(d.execution_time);
  CHECK(d.details == json::object());
}

TEST_CASE("an event's task id must be a subject token", "[models]") {
  CHECK_NOTHROW(omniq::TaskEvent::make(omniq::EventType::failed, omniq::new_uuid()).validate());
  const auto e = error_of([] { omniq::TaskEvent::make(omniq::EventType::failed, "a.b").validate(); });
  CHECK(e.kind == errc::invalid_name);
  CHECK_THAT(e.message, Catch::StartsWith("event.task_id \"a.b\" is invalid: '.' at position 1"));
  CHECK_THAT(error_of([] {
               (void)omniq::decode_event(R"({"id":"e","task_id":"t","event_type":"ENQUEUED",)"
                                         R"("timestamp":"2026-01-01T00:00:00Z"})");
             }).message,
             Catch::StartsWith("event: field \"event_type\": unknown event type \"ENQUEUED\""));
}

// ---------------------------------------------------------------------------------------
// Schedule

TEST_CASE("a schedule with every field set survives encode and decode", "[models]") {
  const omniq::Schedule s{
      .id = "reports/daily.summary",
      .type = omniq::ScheduleType::interval,
      .func = "reports.summary",
      .cron_expression = "0 9 * * 1-5",
      .time_zone = "Europe/Berlin",
      .interval = 15min + 1us,
      .timestamp = at("2026-06-01T00:00:00.5Z"),
      .args = {nested},
      .kwargs = {{"nested", nested}},
      .queue_name = "scheduled",
      .status = omniq::ScheduleStatus::paused,
      .created_at = at("2026-03-01T12:00:00.000007Z"),
      .last_run = at("2026-03-01T12:15:00Z"),
      .next_run = at("2026-03-01T12:30:00Z"),
      .max_runs = 10,
      .run_count = 1,
      .ttl = 30 * 24h,
      .expires_at = at("2026-04-01T00:00:00Z"),
      .metadata = {{"owner", "ops"}},
  };
  const std::string text = omniq::encode(s);
  const json j = json::parse(text);
  CHECK(j["type"] == "interval");
  CHECK(j["status"] == "paused");
  CHECK(j["interval"].get<double>() == Approx(900.000001).epsilon(1e-15));
  const auto d = omniq::decode_schedule(text);
  CHECK(d.id == s.id);
  CHECK(d.type == s.type);
  CHECK(d.func == s.func);
  CHECK(d.cron_expression == s.cron_expression);
  CHECK(d.time_zone == s.time_zone);
  CHECK(d.interval == s.interval);
  CHECK(d.timestamp == s.timestamp);
  CHECK(d.args == s.args);
  CHECK(d.kwargs == s.kwargs);
  CHECK(d.queue_name == s.queue_name);
  CHECK(d.status == s.status);
  CHECK(d.created_at == s.created_at);
  CHECK(d.last_run == s.last_run);
  CHECK(d.next_run == s.next_run);
  CHECK(d.max_runs == s.max_runs);
  CHECK(d.run_count == s.run_count);
  CHECK(d.ttl == s.ttl);
  CHECK(d.expires_at == s.expires_at);
  CHECK(d.metadata == s.metadata);
}

TEST_CASE("a minimal schedule round-trips with optionals absent", "[models]") {
  const omniq::Schedule s{.type = omniq::ScheduleType::timestamp, .func = "f"};
  const auto d = omniq::decode_schedule(omniq::encode(s));
  CHECK(d.id == s.id);
  CHECK(d.type == omniq::ScheduleType::timestamp);
  CHECK(d.time_zone == "UTC");
  CHECK_FALSE(d.cron_expression);
  CHECK_FALSE(d.interval);
  CHECK_FALSE(d.timestamp);
  CHECK_FALSE(d.last_run);
  CHECK_FALSE(d.next_run);
  CHECK_FALSE(d.max_runs);
  CHECK_FALSE(d.ttl);
  CHECK_FALSE(d.expires_at);
  CHECK(d.status == omniq::ScheduleStatus::active);
  CHECK(d.run_count == 0);
}

TEST_CASE("schedule decode errors name the model and field", "[models]") {
  const auto e = error_of([] { (void)omniq::decode_schedule(R"({"id":"s","type":"weekly","func":"f"})"); });
  CHECK(e.kind == errc::decode_error);
  CHECK(e.message == std::string("schedule: field \"type\": unknown schedule type \"weekly\" "
                                 "(valid: cron, interval, timestamp)"));
  CHECK(error_of([] {
          (void)omniq::decode_schedule(
              R"({"id":"s","type":"cron","func":"f","created_at":"2026-01-01T00:00:00Z","max_runs":"3"})");
        }).message == std::string("schedule: field \"max_runs\" must be an integer"));
}

TEST_CASE("from_cron parses at once and sets next_run to the next occurrence", "[models]") {
  const auto before = omniq::now();
  // "0 */5 * * *" is minute 0 of every fifth hour (00:00, 05:00, ... 20:00), not every 5 minutes.
  const auto s = omniq::Schedule::from_cron("0 */5 * * *", "report", {1}, {{"k", 2}}, "scheduled");
  CHECK(s.type == omniq::ScheduleType::cron);
  CHECK(s.cron_expression == "0 */5 * * *");
  CHECK(s.time_zone == "UTC");
  CHECK(s.func == "report");
  CHECK(s.args == json::array({1}));
  CHECK(s.kwargs == json{{"k", 2}});
  CHECK(s.queue_name == "scheduled");
  CHECK(s.status == omniq::ScheduleStatus::active);
  REQUIRE(s.next_run);
  CHECK(*s.next_run > before);
  CHECK(*s.next_run <= before + 5h);
  const auto since_midnight = *s.next_run - std::chrono::floor<std::chrono::days>(*s.next_run);
  CHECK(since_midnight % 5h == Duration::zero());

  // Its next occurrence comes from the expression, after the one that ran.
  auto ran = s;
  ran.mark_run(*s.next_run);
  CHECK(ran.last_run == s.next_run);
  REQUIRE(ran.next_run);
  CHECK(*ran.next_run > *s.next_run);
  CHECK(*ran.next_run <= *s.next_run + 5h);
  CHECK((*ran.next_run - std::chrono::floor<std::chrono::days>(*ran.next_run)) % 5h == Duration::zero());
}

TEST_CASE("from_cron reads the expression in the given time zone", "[models]") {
  const auto s =
      omniq::Schedule::from_cron("0 9 * * *", "f", json::array(), json::object(), "default", "Europe/Berlin");
  REQUIRE(s.next_run);
  const auto utc_hour = std::chrono::duration_cast<std::chrono::hours>(
      *s.next_run - std::chrono::floor<std::chrono::days>(*s.next_run));
  CHECK((utc_hour == 7h || utc_hour == 8h));  // 09:00 in Berlin is 08:00 or 07:00 UTC
}

TEST_CASE("from_cron rejects an invalid expression or zone with invalid_cron", "[models]") {
  CHECK(error_of([] { (void)omniq::Schedule::from_cron("not a cron", "f"); }).kind == errc::invalid_cron);
  CHECK(error_of([] { (void)omniq::Schedule::from_cron("61 * * * *", "f"); }).kind == errc::invalid_cron);
  CHECK(error_of([] {
          (void)omniq::Schedule::from_cron("0 * * * *", "f", json::array(), json::object(), "default",
                                           "Mars/Olympus");
        }).kind == errc::invalid_cron);
  CHECK(error_of([] {
          (void)omniq::Schedule::from_cron("0 * * * *", "f", json::array(), json::object(), "bad queue");
        }).kind == errc::invalid_name);
}

TEST_CASE("from_interval runs every interval, anchored to the occurrence", "[models]") {
  const auto s = omniq::Schedule::from_interval(10min, "tick");
  CHECK(s.type == omniq::ScheduleType::interval);
  CHECK(s.interval == 10min);
  CHECK(s.next_run == s.created_at + 10min);

  // The next slot counts from the occurrence that fired, not from when mark_run is called,
  // so a scheduler that fires late does not shift every later run.
  const Timestamp occurrence = *s.next_run;
  auto anchored = s;
  anchored.mark_run(occurrence);
  CHECK(anchored.run_count == 1);
  CHECK(anchored.last_run == occurrence);
  CHECK(anchored.next_run == occurrence + 10min);
  anchored.mark_run(*anchored.next_run);
  CHECK(anchored.next_run == occurrence + 20min);
  CHECK(anchored.run_count == 2);

  CHECK(error_of([] { (void)omniq::Schedule::from_interval(0s, "tick"); }).kind == errc::invalid_argument);
  CHECK_THAT(error_of([] { (void)omniq::Schedule::from_interval(-5s, "tick"); }).message,
             Catch::Contains("schedule.interval must be at least 1 s, got -5000000 us"));
}

TEST_CASE("an interval under one second is refused, naming the value, the minimum and why",
          "[models][schedule]") {
  // Occurrence task ids have one-second resolution: two occurrences in one second would share
  // an id and the tasks stream would drop the second while run_count still counted it.
  for (const Duration every : {Duration(999ms), Duration(1us), Duration(0s), Duration(-5s)}) {
    INFO("interval " << every.count() << " us");
    const std::string expected =
        "schedule.interval must be at least 1 s, got " + std::to_string(every.count()) + " us";
    const auto made = error_of([every] { (void)omniq::Schedule::from_interval(every, "tick"); });
    CHECK(made.kind == errc::invalid_argument);
    CHECK_THAT(made.message, Catch::StartsWith(expected) && Catch::Contains("one-second resolution"));
    const omniq::Schedule s{.type = omniq::ScheduleType::interval, .func = "tick", .interval = every};
    const auto validated = error_of([&] { s.validate(); });
    CHECK(validated.kind == errc::invalid_argument);
    CHECK(validated.message == made.message);
  }
  for (const Duration every : {Duration(1s), Duration(1500ms), omniq::Schedule::min_interval}) {
    INFO("interval " << every.count() << " us");
    CHECK_NOTHROW(omniq::Schedule::from_interval(every, "tick").validate());
  }
}

TEST_CASE("50 consecutive occurrences 1 s or 1.5 s apart get 50 distinct task ids", "[models][schedule]") {
  for (const Duration every : {Duration(1s), Duration(1500ms)}) {
    INFO("interval " << every.count() << " us");
    auto s = omniq::Schedule::from_interval(every, "tick");
    // The first occurrence just before a second boundary: the tightest case for whole seconds.
    s.next_run = at("2031-05-05T10:45:00.999999Z");
    std::set<std::string> ids;
    for (int i = 0; i < 50; ++i) {
      REQUIRE(s.next_run);
      ids.insert(omniq::occurrence_task_id(s.id, *s.next_run));
      s.mark_run(*s.next_run);
    }
    CHECK(s.run_count == 50);
    CHECK(ids.size() == 50);
  }
}

TEST_CASE("cron occurrences are whole seconds at least 1 s apart, so their task ids never collide",
          "[models][schedule]") {
  // A 6-field expression (with seconds) is refused; every occurrence is a whole second, even
  // on local mean time (New York, UTC-4:56:02 until 1883-11-18, when its clocks went back
  // 3 min 58 s at noon: the minutes around that are the nearest two occurrences can come).
  CHECK(error_of([] { (void)omniq::Schedule::from_cron("* * * * * *", "f"); }).kind == errc::invalid_cron);
  auto s = omniq::Schedule::from_cron("* * * * *", "f", {}, {}, "default", "America/New_York");
  s.next_run = s.compute_next_after(at("1883-11-18T16:40:00Z"));
  std::set<std::string> ids;
  std::optional<Timestamp> previous;
  for (int i = 0; i < 50; ++i) {
    REQUIRE(s.next_run);
    const Timestamp occurrence = *s.next_run;
    INFO(omniq::format_timestamp(occurrence));
    CHECK(occurrence.time_since_epoch() % 1s == 0us);
    if (previous) CHECK(occurrence - *previous >= 1s);
    ids.insert(omniq::occurrence_task_id(s.id, occurrence));
    previous = occurrence;
    s.mark_run(occurrence);
  }
  CHECK(ids.size() == 50);
}

TEST_CASE("a timestamp schedule runs once and then completes", "[models]") {
  const Timestamp when = at("2030-01-01T00:00:00Z");
  auto s = omniq::Schedule::from_timestamp(when, "once");
  CHECK(s.type == omniq::ScheduleType::timestamp);
  CHECK(s.timestamp == when);
  CHECK(s.next_run == when);
  CHECK_FALSE(s.is_ready(when - 1us));
  CHECK(s.is_ready(when));
  s.mark_run(when);
  CHECK(s.run_count == 1);
  CHECK(s.last_run == when);
  CHECK_FALSE(s.next_run);
  CHECK(s.status == omniq::ScheduleStatus::completed);
  CHECK_FALSE(s.is_ready(when + 1h));
}

TEST_CASE("a schedule completes after max_runs", "[models]") {
  auto s = omniq::Schedule::from_interval(1min, "tick");
  s.max_runs = 2;
  s.mark_run(*s.next_run);
  CHECK(s.status == omniq::ScheduleStatus::active);
  CHECK(s.next_run);
  s.mark_run(*s.next_run);
  CHECK(s.run_count == 2);
  CHECK(s.status == omniq::ScheduleStatus::completed);
  CHECK_FALSE(s.next_run);
}

TEST_CASE("a schedule completes when its next run would be past its expiry", "[models]") {
  auto s = omniq::Schedule::from_interval(1h, "tick");
  s.expires_at = *s.next_run + 30min;
  CHECK(s.is_ready(*s.next_run));
  s.mark_run(*s.next_run);
  CHECK(s.status == omniq::ScheduleStatus::completed);
  CHECK_FALSE(s.next_run);
}

TEST_CASE("pause, resume and cancel move a schedule through its states", "[models]") {
  const Timestamp t0 = at("2026-01-01T00:00:00Z");
  omniq::Schedule s{.type = omniq::ScheduleType::interval,
                    .func = "tick",
                    .interval = 10min,
                    .created_at = t0,
                    .next_run = t0 + 10min};
  CHECK(s.is_ready(t0 + 10min));

  s.pause();
  CHECK(s.status == omniq::ScheduleStatus::paused);
  CHECK_FALSE(s.is_ready(t0 + 10min));

  s.resume(t0 + 2h);  // runs missed while paused are skipped
  CHECK(s.status == omniq::ScheduleStatus::active);
  CHECK(s.next_run == t0 + 2h + 10min);

  s.resume(t0 + 5h);  // resuming an active schedule changes nothing
  CHECK(s.next_run == t0 + 2h + 10min);

  s.cancel();
  CHECK(s.status == omniq::ScheduleStatus::cancelled);
  CHECK_FALSE(s.next_run);
  s.resume(t0 + 3h);  // a cancelled schedule stays cancelled
  s.pause();
  CHECK(s.status == omniq::ScheduleStatus::cancelled);
  CHECK_FALSE(s.is_ready(t0 + 10h));
}

TEST_CASE("resuming a cron schedule recomputes next_run from the resume time", "[models]") {
  auto s = omniq::Schedule::from_cron("30 * * * *", "f");
  s.pause();
  const Timestamp resumed = at("2031-05-05T10:45:00Z");
  s.resume(resumed);
  CHECK(s.next_run == at("2031-05-05T11:30:00Z"));

  auto once = omniq::Schedule::from_timestamp(at("2031-01-01T00:00:00Z"), "f");
  once.pause();
  once.resume(at("2031-06-01T00:00:00Z"));
  CHECK(once.next_run == at("2031-01-01T00:00:00Z"));  // a one-off keeps its time
}

TEST_CASE("compute_next_after follows the schedule type", "[models]") {
  const Timestamp t = at("2031-05-05T10:45:00Z");
  CHECK(omniq::Schedule::from_cron("0 12 * * *", "f").compute_next_after(t) == at("2031-05-05T12:00:00Z"));
  CHECK(omniq::Schedule::from_interval(90s, "f").compute_next_after(t) == t + 90s);
  const auto once = omniq::Schedule::from_timestamp(t, "f");
  CHECK(once.compute_next_after(t - 1s) == t);
  CHECK_FALSE(once.compute_next_after(t));
}

TEST_CASE("schedule validation checks the key, queue, func and the type's field", "[models]") {
  const auto check = [](const omniq::Schedule& s, errc kind, const std::string& message) {
    const auto e = error_of([&] { s.validate(); });
    CHECK(e.kind == kind);
    CHECK_THAT(e.message, Catch::Contains(message));
  };
  using omniq::ScheduleType;
  CHECK_NOTHROW(omniq::Schedule{
      .id = "reports/daily.summary", .type = ScheduleType::interval, .func = "f", .interval = 1s}
                    .validate());
  check({.id = "a b", .type = ScheduleType::interval, .func = "f", .interval = 1s}, errc::invalid_name,
        "schedule.id \"a b\" is invalid: ' ' at position 1");
  check({.id = "a..b", .type = ScheduleType::interval, .func = "f", .interval = 1s}, errc::invalid_name,
        "makes an empty token");
  check({.type = ScheduleType::interval, .func = "f", .interval = 1s, .queue_name = "q.1"},
        errc::invalid_name, "schedule.queue_name \"q.1\"");
  check({.type = ScheduleType::interval, .func = "", .interval = 1s}, errc::invalid_argument,
        "schedule.func must not be empty");
  check({.type = ScheduleType::cron, .func = "f"}, errc::invalid_argument,
        "schedule.cron_expression is missing");
  check({.type = ScheduleType::cron, .func = "f", .cron_expression = "* * *"}, errc::invalid_cron, "");
  check({.type = ScheduleType::interval, .func = "f"}, errc::invalid_argument,
        "schedule.interval is missing");
  check({.type = ScheduleType::timestamp, .func = "f"}, errc::invalid_argument,
        "schedule.timestamp is missing");
  check({.type = ScheduleType::interval, .func = "f", .interval = 1s, .max_runs = 0}, errc::invalid_argument,
        "schedule.max_runs must be >= 1");
}

// ---------------------------------------------------------------------------------------
// uuid

TEST_CASE("uuids are RFC 4122 version 4, lower-case, and valid tokens", "[models]") {
  const std::regex v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 1000; ++i) {
    const auto id = omniq::new_uuid();
    INFO(id);
    REQUIRE(std::regex_match(id, v4));
    REQUIRE(omniq::is_valid_token(id));
  }
}

TEST_CASE("uuids do not repeat, across threads either", "[models]") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(omniq::new_uuid());
  CHECK(seen.size() == 10000);

  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& ids : per_thread)
    threads.emplace_back([&ids] {
      for (int i = 0; i < 2500; ++i) ids.push_back(omniq::new_uuid());
    });
  for (auto& t : threads) t.join();
  for (const auto& ids : per_thread) seen.insert(ids.begin(), ids.end());
  CHECK(seen.size() == 20000);
}

TEST_CASE("schedule factories read {} for args and kwargs as none", "[models][schedule]") {
  const omniq::Schedule s = omniq::Schedule::from_interval(std::chrono::seconds(1), "f", {}, {});
  CHECK(s.args == nlohmann::json::array());
  CHECK(s.kwargs == nlohmann::json::object());
  const omniq::Schedule c = omniq::Schedule::from_cron("0 * * * *", "f", {}, {});
  CHECK(c.args.is_array());
  CHECK(c.kwargs.is_object());
}

TEST_CASE("an interval schedule whose next run passes year 9999 still stores, then completes", "[models]") {
  // Found by fuzzing: next_run saturated at Timestamp::max (year 294247), which encodes as
  // text that decode_schedule rejects, so the stored schedule could not be read again.
  auto s = omniq::decode_schedule(
      R"({"id":"s","type":"interval","func":"f","interval":9e12,"created_at":"2026-01-01T00:00:00Z"})");
  s.mark_run(s.created_at);
  REQUIRE(s.next_run);
  CHECK(*s.next_run == omniq::max_timestamp);
  CHECK(omniq::decode_schedule(omniq::encode(s)).next_run == omniq::max_timestamp);
  s.mark_run(*s.next_run);  // nothing is left after the end of year 9999
  CHECK(s.status == omniq::ScheduleStatus::completed);
  CHECK_FALSE(s.next_run);
  CHECK(omniq::decode_schedule(omniq::encode(s)).status == omniq::ScheduleStatus::completed);
}

TEST_CASE("encode refuses a timestamp outside years 0000-9999 instead of storing unreadable text",
          "[models]") {
  const auto e = error_of([] { (void)omniq::encode(omniq::Task{.func = "f", .run_at = Timestamp::max()}); });
  CHECK(e.kind == errc::invalid_argument);
  CHECK_THAT(e.message, Catch::StartsWith("task: field \"run_at\"") && Catch::Contains("outside years 0000-9999"));
}
