// Models: name validation, uuids, the lifecycle methods, and the one JSON codec per model.
// JSON field names appear only in the Codec<Model> field lists below; each lists a model's
// fields once and serves both encoding (Writer) and decoding (Reader).
#include "omniq/models.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>

#include "omniq/cron.hpp"
#include "omniq/error.hpp"
#include "omniq/uuid.hpp"
#include "json_limits.hpp"

namespace omniq {

using nlohmann::json;

// ---------------------------------------------------------------------------------------
// Validation

namespace {

bool is_token_char(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool is_kv_key_char(unsigned char c) noexcept { return is_token_char(c) || c == '=' || c == '/' || c == '.'; }

// One byte as it should read in a message: printable ASCII as is, anything else as \xNN.
std::string show_char(unsigned char c) {
  if (c >= 0x20 && c < 0x7F) return std::string(1, static_cast<char>(c));
  static constexpr char hex[] = "0123456789ABCDEF";
  return {'\\', 'x', hex[c >> 4], hex[c & 0xF]};
}

// A value quoted for a message; long values are cut so one bad name cannot flood a log.
std::string quote(std::string_view value) {
  constexpr std::size_t shown = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size() && i < shown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') out += '\\';
    out += show_char(c);
  }
  if (value.size() > shown) out += "...";
  return out + "\"";
}

// Shared by both name rules: empty, a character outside the set, too long.
template <class IsAllowed>
void check_name(std::string_view field, std::string_view value, IsAllowed allowed, std::size_t max_length,
                std::string_view allowed_text) {
  const std::string rule =
      " (use " + std::string(allowed_text) + ", 1 to " + std::to_string(max_length) + " characters)";
  if (value.empty()) throw_error(errc::invalid_name, std::string(field) + " must not be empty");
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (!allowed(c))
      throw_error(errc::invalid_name, std::string(field) + " " + quote(value) + " is invalid: '" +
                                          show_char(c) + "' at position " + std::to_string(i) +
                                          " is not allowed" + rule);
  }
  if (value.size() > max_length)
    throw_error(errc::invalid_name, std::string(field) + " " + quote(value) +
                                        " is too long: " + std::to_string(value.size()) +
                                        " characters (at most " + std::to_string(max_length) + ")");
}

}  // namespace

bool is_valid_token(std::string_view value) noexcept {
  return !value.empty() && value.size() <= max_token_length &&
         std::all_of(value.begin(), value.end(),
                     [](char c) { return is_token_char(static_cast<unsigned char>(c)); });
}

void validate_token(std::string_view field, std::string_view value) {
  check_name(field, value, is_token_char, max_token_length, "A-Z a-z 0-9 _ -");
}

void validate_kv_key(std::string_view field, std::string_view key) {
  check_name(field, key, is_kv_key_char, max_kv_key_length, "A-Z a-z 0-9 _ - = / .");
  const auto invalid = [&](const std::string& why) {
    throw_error(errc::invalid_name, std::string(field) + " " + quote(key) + " is invalid: " + why);
  };
  if (key.front() == '.') invalid("it must not start with '.'");
  if (key.back() == '.') invalid("it must not end with '.'");
  if (const auto pos = key.find(".."); pos != std::string_view::npos)
    invalid("\"..\" at position " + std::to_string(pos) + " makes an empty token");
  if (key.starts_with("_kv")) invalid("the prefix \"_kv\" is reserved by NATS KV");
}

// ---------------------------------------------------------------------------------------
// uuid

std::string new_uuid() {
  struct Generator {
    pid_t pid = -1;
    std::mt19937_64 engine;
  };
  thread_local Generator gen;
  // A forked child inherits the parent's engine state and would repeat its ids (and task ids
  // double as dedup ids), so reseed whenever the process id changes.
  if (const pid_t pid = ::getpid(); pid != gen.pid) {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
    gen.engine.seed(seed);
    gen.pid = pid;
  }
  std::uint64_t hi = gen.engine();
  std::uint64_t lo = gen.engine();
  hi = (hi & ~std::uint64_t{0xF000}) | 0x4000;                           // version 4
  lo = (lo & ~(std::uint64_t{0xC} << 60)) | (std::uint64_t{0x8} << 60);  // variant 10xx

  static constexpr char hex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t pos = 0;
  const auto put = [&](std::uint64_t bits, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;  // keep the dashes
      out[pos++] = hex[(bits >> (4 * i)) & 0xF];
    }
  };
  put(hi, 16);
  put(lo, 16);
  return out;
}

// ---------------------------------------------------------------------------------------
// Enums: one name table each, in declaration order (the enum value is the index);
// to_string, parse_* and the JSON forms all read it.

namespace {

template <class E>
struct EnumNames;

template <>
struct EnumNames<TaskStatus> {
  static constexpr std::string_view what = "task status";
  static constexpr std::array<std::string_view, 8> names{"pending",   "running", "completed", "failed",
                                                         "cancelled", "expired", "delayed",   "dead_lettered"};
};
template <>
struct EnumNames<ResultStatus> {
  static constexpr std::string_view what = "result status";
  static constexpr std::array<std::string_view, 5> names{"pending", "success", "error", "cancelled",
                                                         "expired"};
};
template <>
struct EnumNames<EventType> {
  static constexpr std::string_view what = "event type";
  static constexpr std::array<std::string_view, 10> names{
      "enqueued", "dequeued",  "executing", "completed",       "failed",
      "retry",    "cancelled", "expired",   "schedule_paused", "schedule_resumed"};
};
template <>
struct EnumNames<ScheduleType> {
  static constexpr std::string_view what = "schedule type";
  static constexpr std::array<std::string_view, 3> names{"cron", "interval", "timestamp"};
};
template <>
struct EnumNames<ScheduleStatus> {
  static constexpr std::string_view what = "schedule status";
  static constexpr std::array<std::string_view, 4> names{"active", "paused", "completed", "cancelled"};
};

template <class E>
std::string_view enum_name(E value) noexcept {
  const auto i = static_cast<std::size_t>(value);
  return i < EnumNames<E>::names.size() ? EnumNames<E>::names[i] : std::string_view("unknown");
}

template <class E>
E parse_enum(std::string_view text) {
  const auto& names = EnumNames<E>::names;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) return static_cast<E>(i);
  std::string valid;
  for (const auto name : names) valid += (valid.empty() ? "" : ", ") + std::string(name);
  throw_error(errc::decode_error,
              "unknown " + std::string(EnumNames<E>::what) + " " + quote(text) + " (valid: " + valid + ")");
}

template <class E>
void enum_from_json(const json& j, E& value) {
  if (!j.is_string())
    throw_error(errc::decode_error,
                std::string(EnumNames<E>::what) + " must be a string, got " + j.type_name());
  value = parse_enum<E>(j.get_ref<const std::string&>());
}

}  // namespace

std::string_view to_string(TaskStatus v) noexcept { return enum_name(v); }
std::string_view to_string(ResultStatus v) noexcept { return enum_name(v); }
std::string_view to_string(EventType v) noexcept { return enum_name(v); }
std::string_view to_string(ScheduleType v) noexcept { return enum_name(v); }
std::string_view to_string(ScheduleStatus v) noexcept { return enum_name(v); }

TaskStatus parse_task_status(std::string_view text) { return parse_enum<TaskStatus>(text); }
ResultStatus parse_result_status(std::string_view text) { return parse_enum<ResultStatus>(text); }
EventType parse_event_type(std::string_view text) { return parse_enum<EventType>(text); }
ScheduleType parse_schedule_type(std::string_view text) { return parse_enum<ScheduleType>(text); }
ScheduleStatus parse_schedule_status(std::string_view text) { return parse_enum<ScheduleStatus>(text); }

// Without these nlohmann would silently encode the enums as integers.
void to_json(json& j, TaskStatus v) { j = std::string(enum_name(v)); }
void to_json(json& j, ResultStatus v) { j = std::string(enum_name(v)); }
void to_json(json& j, EventType v) { j = std::string(enum_name(v)); }
void to_json(json& j, ScheduleType v) { j = std::string(enum_name(v)); }
void to_json(json& j, ScheduleStatus v) { j = std::string(enum_name(v)); }
void from_json(const json& j, TaskStatus& v) { enum_from_json(j, v); }
void from_json(const json& j, ResultStatus& v) { enum_from_json(j, v); }
void from_json(const json& j, EventType& v) { enum_from_json(j, v); }
void from_json(const json& j, ScheduleType& v) { enum_from_json(j, v); }
void from_json(const json& j, ScheduleStatus& v) { enum_from_json(j, v); }

// ---------------------------------------------------------------------------------------
// Shared rules of the models

namespace {

// t + d without signed overflow, saturating at min_timestamp / max_timestamp (years 0000 and
// 9999), so a computed next_run still encodes as a timestamp that decodes again.
Timestamp add_saturated(Timestamp t, Duration d) {
  using rep = Duration::rep;
  const rep base = t.time_since_epoch().count();
  rep sum = 0;
  if (__builtin_add_overflow(base, d.count(), &sum))
    return d.count() > 0 ? max_timestamp : min_timestamp;
  return std::clamp(Timestamp(Duration(sum)), min_timestamp, max_timestamp);
}

std::optional<Timestamp> expiry_of(Timestamp created_at, const std::optional<Duration>& ttl,
                                   const std::optional<Timestamp>& expires_at) {
  std::optional<Timestamp> result = expires_at;
  if (ttl) {
    const Timestamp by_ttl = add_saturated(created_at, *ttl);
    if (!result || by_ttl < *result) result = by_ttl;
  }
  return result;
}

// Expired from the expiry instant on.
bool past(const std::optional<Timestamp>& expiry, Timestamp at) { return expiry && at >= *expiry; }

[[noreturn]] void invalid(const std::string& what) { throw_error(errc::invalid_argument, what); }

// The call a task or schedule makes: a function name and its JSON arguments.
void check_call(std::string_view model, const std::string& func, const json& args, const json& kwargs) {
  const std::string m(model);
  if (func.empty()) invalid(m + ".func must not be empty");
  if (func.size() > max_func_length)
    invalid(m + ".func is too long: " + std::to_string(func.size()) + " characters (at most " +
            std::to_string(max_func_length) + ")");
  if (!args.is_array()) invalid(m + ".args must be a JSON array, got " + args.type_name());
  if (!kwargs.is_object()) invalid(m + ".kwargs must be a JSON object, got " + kwargs.type_name());
}

void check_ttl(std::string_view model, const std::optional<Duration>& ttl) {
  if (ttl && *ttl <= Duration::zero())
    invalid(std::string(model) + ".ttl must be positive, got " + std::to_string(ttl->count()) + " us");
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Task

void Task::validate() const {
  validate_token("task.id", id);
  validate_token("task.queue_name", queue_name);
  for (std::size_t i = 0; i < dependencies.size(); ++i) {
    validate_token("task.dependencies[" + std::to_string(i) + "]", dependencies[i]);
    if (dependencies[i] == id)
      invalid("task.dependencies[" + std::to_string(i) + "] is the task itself (" + id + "): it could never run");
  }
  check_call("task", func, args, kwargs);
  if (priority < min_priority || priority > max_priority)
    invalid("task.priority " + std::to_string(priority) + " is out of range (" +
            std::to_string(min_priority) + " to " + std::to_string(max_priority) + ")");
  if (retry_count < 0) invalid("task.retry_count must be >= 0, got " + std::to_string(retry_count));
  if (max_retries < 0) invalid("task.max_retries must be >= 0, got " + std::to_string(max_retries));
  if (retry_delay < Duration::zero())
    invalid("task.retry_delay must be >= 0, got " + std::to_string(retry_delay.count()) + " us");
  check_ttl("task", ttl);
  if (timeout && *timeout <= Duration::zero())
    invalid("task.timeout must be positive, got " + std::to_string(timeout->count()) + " us");
  if (!metadata.is_object())
    invalid(std::string("task.metadata must be a JSON object, got ") + metadata.type_name());
}

std::optional<Timestamp> Task::expiry() const { return expiry_of(created_at, ttl, expires_at); }

bool Task::is_expired(Timestamp at) const { return past(expiry(), at); }

bool Task::is_ready(Timestamp at) const { return !run_at || *run_at <= at; }

Duration Task::retry_backoff() const {
  if (retry_delay <= Duration::zero()) return Duration::zero();
  const Duration cap = std::max(retry_delay, max_retry_backoff);
  Duration delay = retry_delay;
  // Doubling stops at the cap, so this runs at most ~40 times and never overflows.
  for (int i = 0; i < retry_count && delay < cap; ++i) delay = delay > cap / 2 ? cap : delay * 2;
  return delay;
}

// ---------------------------------------------------------------------------------------
// TaskResult

TaskResult TaskResult::success(std::string task_id, json value) {
  TaskResult r{.task_id = std::move(task_id), .status = ResultStatus::success, .result = std::move(value)};
  r.completed_at = r.created_at;
  return r;
}

TaskResult TaskResult::failure(std::string task_id, std::string error_type, std::string message) {
  TaskResult r{.task_id = std::move(task_id),
               .status = ResultStatus::error,
               .error = std::move(message),
               .error_type = std::move(error_type)};
  r.completed_at = r.created_at;
  return r;
}

void TaskResult::validate() const {
  validate_token("result.task_id", task_id);
  check_ttl("result", ttl);
}

std::optional<Timestamp> TaskResult::expiry() const { return expiry_of(created_at, ttl, expires_at); }

bool TaskResult::is_expired(Timestamp at) const { return past(expiry(), at); }

// ---------------------------------------------------------------------------------------
// TaskEvent

TaskEvent TaskEvent::make(EventType type, std::string task_id) {
  return TaskEvent{.task_id = std::move(task_id), .event_type = type};
}

void TaskEvent::validate() const { validate_token("event.task_id", task_id); }

// ---------------------------------------------------------------------------------------
// Schedule

namespace {
// `{}` passed for args or kwargs arrives as JSON null: read it as "none".
json or_empty_array(json j) { return j.is_null() ? json::array() : j; }
json or_empty_object(json j) { return j.is_null() ? json::object() : j; }
}  // namespace

Schedule Schedule::from_cron(std::string expression, std::string func, json args, json kwargs,
                             std::string queue_name, std::string time_zone) {
  const auto cron = CronExpression::parse(expression, time_zone);  // throws invalid_cron
  Schedule s{.type = ScheduleType::cron,
             .func = std::move(func),
             .cron_expression = std::move(expression),
             .time_zone = std::move(time_zone),
             .args = or_empty_array(std::move(args)),
             .kwargs = or_empty_object(std::move(kwargs)),
             .queue_name = std::move(queue_name)};
  s.next_run = cron.next_after(s.created_at);
  s.validate();
  return s;
}

Schedule Schedule::from_interval(Duration every, std::string func, json args, json kwargs,
                                 std::string queue_name) {
  Schedule s{.type = ScheduleType::interval,
             .func = std::move(func),
             .interval = every,
             .args = or_empty_array(std::move(args)),
             .kwargs = or_empty_object(std::move(kwargs)),
             .queue_name = std::move(queue_name)};
  s.validate();  // rejects every < min_interval
  s.next_run = add_saturated(s.created_at, every);
  return s;
}

Schedule Schedule::from_timestamp(Timestamp at, std::string func, json args, json kwargs,
                                  std::string queue_name) {
  Schedule s{.type = ScheduleType::timestamp,
             .func = std::move(func),
             .timestamp = at,
             .args = or_empty_array(std::move(args)),
             .kwargs = or_empty_object(std::move(kwargs)),
             .queue_name = std::move(queue_name),
             .next_run = at};
  s.validate();
  return s;
}

void Schedule::pause() {
  if (status == ScheduleStatus::active) status = ScheduleStatus::paused;
}

void Schedule::resume(Timestamp at) {
  if (status != ScheduleStatus::paused) return;
  status = ScheduleStatus::active;
  if (type == ScheduleType::timestamp) return;  // a one-off keeps its time, even if past
  next_run = compute_next_after(at);
  if (!next_run) status = ScheduleStatus::completed;
}

void Schedule::cancel() {
  if (status != ScheduleStatus::active && status != ScheduleStatus::paused) return;
  status = ScheduleStatus::cancelled;
  next_run.reset();
}

void Schedule::mark_run(Timestamp occurrence) {
  ++run_count;
  last_run = occurrence;
  next_run = compute_next_after(occurrence);
  const auto end = expiry();
  if (!next_run || (max_runs && run_count >= *max_runs) || (end && *next_run >= *end)) {
    status = ScheduleStatus::completed;
    next_run.reset();
  }
}

std::optional<Timestamp> Schedule::compute_next_after(Timestamp t) const {
  switch (type) {
    case ScheduleType::cron:
      if (!cron_expression) invalid("schedule.cron_expression is missing for a cron schedule");
      return CronExpression::parse(*cron_expression, time_zone).next_after(t);
    case ScheduleType::interval:
      if (!interval || *interval <= Duration::zero()) invalid("schedule.interval must be set and positive");
      // None once the sum saturates at max_timestamp: "strictly after t" cannot be held.
      if (const Timestamp next = add_saturated(t, *interval); next > t) return next;
      return std::nullopt;
    case ScheduleType::timestamp:
      if (!timestamp) invalid("schedule.timestamp is missing for a timestamp schedule");
      return *timestamp > t ? timestamp : std::nullopt;
  }
  return std::nullopt;
}

bool Schedule::is_ready(Timestamp at) const {
  return status == ScheduleStatus::active && next_run && *next_run <= at && !is_expired(at);
}

std::optional<Timestamp> Schedule::expiry() const { return expiry_of(created_at, ttl, expires_at); }

bool Schedule::is_expired(Timestamp at) const { return past(expiry(), at); }

void Schedule::validate() const {
  validate_kv_key("schedule.id", id);
  validate_token("schedule.queue_name", queue_name);
  check_call("schedule", func, args, kwargs);
  switch (type) {
    case ScheduleType::cron:
      if (!cron_expression) invalid("schedule.cron_expression is missing for a cron schedule");
      (void)CronExpression::parse(*cron_expression, time_zone);  // throws invalid_cron
      break;
    case ScheduleType::interval:
      if (!interval) invalid("schedule.interval is missing for an interval schedule");
      if (*interval < min_interval)
        invalid("schedule.interval must be at least 1 s, got " + std::to_string(interval->count()) +
                " us: occurrence task ids have one-second resolution (<schedule id>-<unix seconds>), so "
                "two occurrences within one second would share an id and the second would be dropped as "
                "a duplicate");
      break;
    case ScheduleType::timestamp:
      if (!timestamp) invalid("schedule.timestamp is missing for a timestamp schedule");
      break;
  }
  if (max_runs && *max_runs < 1) invalid("schedule.max_runs must be >= 1, got " + std::to_string(*max_runs));
  if (run_count < 0) invalid("schedule.run_count must be >= 0, got " + std::to_string(run_count));
  check_ttl("schedule", ttl);
}

std::string occurrence_task_id(const std::string& schedule_id, Timestamp occurrence) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(occurrence.time_since_epoch()).count();
  if (is_valid_token(schedule_id) && schedule_id.size() <= 100) return schedule_id + "-" + std::to_string(seconds);
  // Schedule ids may hold '.', '/', '=' (KV keys); a task id must be a subject token.
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : schedule_id) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("s") + hex + "-" + std::to_string(seconds);
}

// ---------------------------------------------------------------------------------------
// JSON codec

namespace {

constexpr int schema_version = 1;
constexpr const char* schema_version_field = "schema_version";

// Durations travel as seconds; beyond this a microsecond count would not fit in 64 bits.
constexpr double max_duration_seconds = 9.0e12;

// A JSON member that must have one shape (args is an array, kwargs an object).
template <class J>
struct Shaped {
  J& value;
  json::value_t kind;
};
template <class J>
Shaped<J> array_member(J& j) {
  return {j, json::value_t::array};
}
template <class J>
Shaped<J> object_member(J& j) {
  return {j, json::value_t::object};
}

// Encoding: one put() per C++ type.
void put(json& out, const std::string& v) { out = v; }
void put(json& out, int v) { out = v; }
void put(json& out, double v) { out = v; }
void put(json& out, const std::vector<std::string>& v) { out = v; }
void put(json& out, const json& v) { out = v; }
void put(json& out, Timestamp v) { out = format_timestamp(v); }
void put(json& out, Duration v) { out = std::chrono::duration<double>(v).count(); }
template <class E>
requires std::is_enum_v<E>
void put(json& out, E v) { out = std::string(to_string(v)); }
template <class J>
void put(json& out, Shaped<J> v) {
  out = v.value;
}

class Writer {
 public:
  Writer(json& out, const char* model) : out_(out), model_(model) {
    out_ = json::object();
    out_[schema_version_field] = schema_version;
  }
  template <class T>
  void required(const char* name, const T& value) {
    write(name, value);
  }
  template <class T>
  void optional(const char* name, const T& value) {
    write(name, value);
  }
  template <class T>
  void optional(const char* name, const std::optional<T>& value) {
    if (value) write(name, *value);  // an empty optional is left out
  }

 private:
  template <class T>
  void write(const char* name, const T& value) {
    // Refused here rather than stored as text that decode rejects (a task would be dead-lettered).
    if constexpr (std::is_same_v<T, Timestamp>)
      if (value < min_timestamp || value > max_timestamp)
        throw_error(errc::invalid_argument, model_ + (": field \"" + std::string(name) + "\" (" +
                                                      format_timestamp(value) + ") is outside years 0000-9999"));
    put(out_[name], value);
  }

  json& out_;
  std::string model_;
};

class Reader {
 public:
  Reader(const json& in, const char* model) : in_(in), model_(model) {
    if (!in.is_object()) fail(std::string("not a JSON object (got ") + in.type_name() + ")");
    const auto it = in.find(schema_version_field);
    if (it == in.end() || it->is_null()) return;  // written before versioning: version 1
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1)
      fail("field \"" + std::string(schema_version_field) + "\" must be a positive integer");
    if (it->get<std::int64_t>() > schema_version)
      fail(std::string(schema_version_field) + " " + std::to_string(it->get<std::int64_t>()) +
           " is newer than this version of omniq reads (" + std::to_string(schema_version) +
           "); upgrade omniq");
  }

  template <class T>
  void required(const char* name, T&& dst) {
    const json* v = find(name);
    if (!v) fail("missing field \"" + std::string(name) + "\"");
    get(*v, dst, name);
  }
  // Absent or null keeps the default.
  template <class T>
  void optional(const char* name, T&& dst) {
    if (const json* v = find(name)) get(*v, dst, name);
  }
  template <class T>
  void optional(const char* name, std::optional<T>& dst) {
    dst.reset();
    if (const json* v = find(name)) get(*v, dst.emplace(), name);
  }

 private:
  const json* find(const char* name) const {
    const auto it = in_.find(name);
    return it == in_.end() || it->is_null() ? nullptr : &*it;
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw_error(errc::decode_error, model_ + (": " + why));
  }
  [[noreturn]] void wrong(const char* name, const std::string& need) const {
    fail("field \"" + std::string(name) + "\" must be " + need);
  }

  void get(const json& v, std::string& dst, const char* name) const {
    if (!v.is_string()) wrong(name, "a string");
    dst = v.get_ref<const std::string&>();
  }
  void get(const json& v, int& dst, const char* name) const {
    if (!v.is_number_integer()) wrong(name, "an integer");
    const bool fits = v.is_number_unsigned()
                          ? v.get<std::uint64_t>() <= INT_MAX
                          : v.get<std::int64_t>() >= INT_MIN && v.get<std::int64_t>() <= INT_MAX;
    if (!fits) wrong(name, "an integer that fits in 32 bits");
    dst = v.get<int>();
  }
  void get(const json& v, std::vector<std::string>& dst, const char* name) const {
    if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); }))
      wrong(name, "an array of strings");
    dst = v.get<std::vector<std::string>>();
  }
  void get(const json& v, json& dst, const char*) const { dst = v; }
  void get(const json& v, Shaped<json> dst, const char* name) const {
    if (v.type() != dst.kind) wrong(name, dst.kind == json::value_t::array ? "an array" : "an object");
    dst.value = v;
  }
  void get(const json& v, Timestamp& dst, const char* name) const {
    if (!v.is_string()) wrong(name, "an ISO-8601 timestamp string");
    try {
      dst = parse_timestamp(v.get_ref<const std::string&>());
    } catch (const Error& e) {
      wrong(name, std::string("an ISO-8601 timestamp: ") + e.what());
    }
  }
  void get(const json& v, double& dst, const char* name) const {
    if (!v.is_number()) wrong(name, "a number");
    dst = v.get<double>();
  }
  void get(const json& v, Duration& dst, const char* name) const {
    if (!v.is_number() || std::abs(v.get<double>()) > max_duration_seconds)
      wrong(name, "a number of seconds (at most 9e12)");
    dst = Duration(std::llround(v.get<double>() * 1e6));
  }
  template <class E>
  requires std::is_enum_v<E>
  void get(const json& v, E& dst, const char* name) const {
    if (!v.is_string()) wrong(name, "a string");
    try {
      dst = parse_enum<E>(v.get_ref<const std::string&>());
    } catch (const Error& e) {
      fail("field \"" + std::string(name) + "\": " + e.what());
    }
  }

  const json& in_;
  std::string model_;
};

// One codec per model: its name in messages and its JSON field list, written once for both
// directions (M is the model, const when encoding; Io is Writer or Reader).
template <class Model>
struct Codec;

template <>
struct Codec<Task> {
  static constexpr const char* name = "task";
  template <class Io, class M>
  static void fields(Io& io, M& t) {
    io.required("id", t.id);
    io.required("func", t.func);
    io.optional("args", array_member(t.args));
    io.optional("kwargs", object_member(t.kwargs));
    io.optional("queue_name", t.queue_name);
    io.optional("priority", t.priority);
    io.required("created_at", t.created_at);
    io.optional("run_at", t.run_at);
    io.optional("ttl", t.ttl);
    io.optional("expires_at", t.expires_at);
    io.optional("status", t.status);
    io.optional("retry_count", t.retry_count);
    io.optional("max_retries", t.max_retries);
    io.optional("retry_delay", t.retry_delay);
    io.optional("timeout", t.timeout);
    io.optional("dependencies", t.dependencies);
    io.optional("callbacks", t.callbacks);
    io.optional("metadata", object_member(t.metadata));
  }
};

template <>
struct Codec<TaskResult> {
  static constexpr const char* name = "result";
  template <class Io, class M>
  static void fields(Io& io, M& r) {
    io.required("task_id", r.task_id);
    io.required("status", r.status);
    io.optional("result", r.result);
    io.optional("error", r.error);
    io.optional("error_type", r.error_type);
    io.required("created_at", r.created_at);
    io.optional("started_at", r.started_at);
    io.optional("completed_at", r.completed_at);
    io.optional("ttl", r.ttl);
    io.optional("expires_at", r.expires_at);
    io.optional("worker_id", r.worker_id);
    io.optional("execution_time", r.execution_time);
    io.optional("queue_name", r.queue_name);
    io.optional("func", r.func);
    io.optional("progress", r.progress);
    io.optional("progress_message", r.progress_message);
    io.optional("metadata", object_member(r.metadata));
  }
};

template <>
struct Codec<TaskEvent> {
  static constexpr const char* name = "event";
  template <class Io, class M>
  static void fields(Io& io, M& e) {
    io.required("id", e.id);
    io.required("task_id", e.task_id);
    io.required("event_type", e.event_type);
    io.required("timestamp", e.timestamp);
    io.optional("message", e.message);
    io.optional("details", object_member(e.details));
    io.optional("worker_id", e.worker_id);
    io.optional("queue_name", e.queue_name);
    io.optional("schedule_id", e.schedule_id);
    io.optional("error_type", e.error_type);
    io.optional("error_message", e.error_message);
    io.optional("execution_time", e.execution_time);
    io.optional("metadata", object_member(e.metadata));
  }
};

template <>
struct Codec<Schedule> {
  static constexpr const char* name = "schedule";
  template <class Io, class M>
  static void fields(Io& io, M& s) {
    io.required("id", s.id);
    io.required("type", s.type);
    io.required("func", s.func);
    io.optional("cron_expression", s.cron_expression);
    io.optional("time_zone", s.time_zone);
    io.optional("interval", s.interval);
    io.optional("timestamp", s.timestamp);
    io.optional("args", array_member(s.args));
    io.optional("kwargs", object_member(s.kwargs));
    io.optional("queue_name", s.queue_name);
    io.optional("status", s.status);
    io.required("created_at", s.created_at);
    io.optional("last_run", s.last_run);
    io.optional("next_run", s.next_run);
    io.optional("max_runs", s.max_runs);
    io.optional("run_count", s.run_count);
    io.optional("ttl", s.ttl);
    io.optional("expires_at", s.expires_at);
    io.optional("metadata", object_member(s.metadata));
  }
};

template <class M>
void write_model(json& j, const M& model) {
  Writer writer(j, Codec<M>::name);
  Codec<M>::fields(writer, model);
}

template <class M>
void read_model(const json& j, M& model) {
  Reader reader(j, Codec<M>::name);
  Codec<M>::fields(reader, model);
}

template <class M>
std::string encode_model(const M& model) {
  std::string text;
  try {
    // Not json(model): when to_json throws inside that constructor (a timestamp out of range),
    // the half-built object's members are never destroyed and leak (found by ASan).
    json j;
    to_json(j, model);
    text = j.dump();
  } catch (const json::exception& e) {  // e.g. a string that is not valid UTF-8
    throw_error(errc::invalid_argument, std::string(Codec<M>::name) + ": cannot encode as JSON: " + e.what());
  }
  // Refused here rather than stored as bytes every decoder refuses.
  if (detail::json_nested_deeper_than(text))
    throw_error(errc::invalid_argument, std::string(Codec<M>::name) + ": JSON nested deeper than " +
                                            std::to_string(detail::max_json_depth) + " levels");
  return text;
}

template <class M>
M decode_model(std::string_view text) {
  if (detail::json_nested_deeper_than(text))
    throw_error(errc::decode_error, std::string(Codec<M>::name) + ": JSON nested deeper than " +
                                        std::to_string(detail::max_json_depth) + " levels");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_error(errc::decode_error, std::string(Codec<M>::name) + ": not JSON: " + e.what());
  }
  return j.get<M>();
}

}  // namespace

void to_json(json& j, const Task& v) { write_model(j, v); }
void to_json(json& j, const TaskResult& v) { write_model(j, v); }
void to_json(json& j, const TaskEvent& v) { write_model(j, v); }
void to_json(json& j, const Schedule& v) { write_model(j, v); }
void from_json(const json& j, Task& v) { read_model(j, v); }
void from_json(const json& j, TaskResult& v) { read_model(j, v); }
void from_json(const json& j, TaskEvent& v) { read_model(j, v); }
void from_json(const json& j, Schedule& v) { read_model(j, v); }

std::string encode(const Task& v) { return encode_model(v); }
std::string encode(const TaskResult& v) { return encode_model(v); }
std::string encode(const TaskEvent& v) { return encode_model(v); }
std::string encode(const Schedule& v) { return encode_model(v); }

Task decode_task(std::string_view text) { return decode_model<Task>(text); }
TaskResult decode_result(std::string_view text) { return decode_model<TaskResult>(text); }
TaskEvent decode_event(std::string_view text) { return decode_model<TaskEvent>(text); }
Schedule decode_schedule(std::string_view text) { return decode_model<Schedule>(text); }

}  // namespace omniq
