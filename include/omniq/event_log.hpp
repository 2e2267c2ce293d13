// The event log: task lifecycle events in a JetStream stream (OMNIQ_EVENTS, limits retention),
// one subject per event type and task: {events_subject}.{event_type}.{task_id}. Events are
// logged durably and pipelined, queried by the server (subject filters, start time), followed
// live across reconnects, and cleaned up by age. Asynchronous API on EventLog; its blocking twin
// SyncEventLog runs the same operations from plain threads over the backend's one connection.
// docs/event-log.md has the layout, the ordering and the follow semantics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "omniq/async.hpp"
#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/models/event.hpp"
#include "omniq/reports.hpp"

namespace omniq {

class TaskContext;

class TaskQueue;
class Worker;
class Scheduler;
class ScheduleStore;

/// What a follower receives; every field is optional and they combine.
struct EventFilter {
  std::optional<std::string> task_id{};     // a subject token: exactly this task
  std::optional<EventType> event_type{};
  std::optional<Timestamp> start_time{};    // replay from here (stored time); unset: only new events
};

/// A live sequence of the events matching a filter, in stream order. Backed by an ephemeral
/// pull consumer read in batches; it remembers the stream sequence of the last event it
/// received and, when its consumer is lost (server restart, reconnect, consumer expired),
/// recreates it from the next sequence: no gap, no duplicate. Move-only; use it from one
/// coroutine at a time.
class EventFollower {
 public:
  EventFollower() noexcept;  // follows nothing, like a moved-from follower: next fails with closed
  EventFollower(EventFollower&&) noexcept;
  EventFollower& operator=(EventFollower&&) noexcept;
  /// Does not block or wait for the server: the consumer is removed by the server after its
  /// inactivity threshold (30 s) unless close() removed it first.
  ~EventFollower();

  /// The next event, waiting up to `timeout` for one; nullopt when none came in time (also while
  /// the server cannot be reached: the follower keeps retrying until the timeout, then resumes
  /// on the next call): void(error_code, std::optional<TaskEvent>). A timeout <= 0 only asks the
  /// server once. Errors: closed after close(), not_connected when the backend is closed,
  /// permission_denied. Cancelled: operation_aborted at once; a pull still in flight stays for the
  /// next call, so no event is lost or repeated.
  template <class CompletionToken = default_token>
  auto async_next(Duration timeout, CompletionToken&& token = {}) {
    return detail::initiate<std::optional<TaskEvent>>(token, executor(), [this, timeout]() { return next(timeout); });
  }
  /// Removes the consumer on the server; next then fails with closed. Idempotent: void(error_code).
  template <class CompletionToken = default_token>
  auto async_close(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this]() { return close(); });
  }

  /// Stream sequence of the last event received from the server (0 before the first).
  std::uint64_t last_sequence() const noexcept;
  /// The subject filter it reads, e.g. "omniq.events.*.task-1".
  const std::string& filter_subject() const noexcept;

 private:
  friend class EventLog;
  struct State;
  explicit EventFollower(std::unique_ptr<State> state);
  asio::any_io_executor executor() const;
  asio::awaitable<std::optional<TaskEvent>> next(Duration timeout);
  asio::awaitable<void> close();
  std::unique_ptr<State> state_;
};

/// Each operation is an initiating function (omniq/async.hpp) completing with
/// void(error_code, T); a cancelled one completes with asio::error::operation_aborted.
class EventLog {
 public:
  /// Shares the backend's connection; creates nothing until first used.
  explicit EventLog(NatsBackend& backend) : backend_(backend) {}

  /// Creates or checks its stream with the configured settings (done once; every operation does
  /// it): void(error_code).
  template <class CompletionToken = default_token>
  auto async_ensure(CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this]() { return ensure(); });
  }
  /// The server's view of its stream: settings as stored and current state:
  /// void(error_code, StreamReport).
  template <class CompletionToken = default_token>
  auto async_info(CompletionToken&& token = {}) {
    return detail::initiate<StreamReport>(token, executor(), [this]() { return info(); });
  }
  /// Stores the event and completes once the stream acknowledged it: void(error_code). With a
  /// `dedup_id` (sent as Nats-Msg-Id), logging again with the same id within the stream's
  /// duplicate_window stores the event once (the repeat is acknowledged as a duplicate). Errors:
  /// invalid_name / invalid_argument (task id or event type not a subject token, a dedup_id with
  /// control characters; before any network call), payload_too_large, timeout, not_connected.
  template <class CompletionToken = default_token>
  auto async_log_event(TaskEvent event, std::string dedup_id = {}, CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this, event = std::move(event), dedup_id = std::move(dedup_id)]() mutable { return log_event(std::move(event), std::move(dedup_id)); });
  }
  /// Stores many events with up to 4096 publishes in flight; every event is validated before any
  /// is sent: void(error_code). On a failure the diagnostics say how many were stored (logging
  /// them again would store those twice: events are not deduplicated).
  template <class CompletionToken = default_token>
  auto async_log_events(std::vector<TaskEvent> events, CompletionToken&& token = {}) {
    return detail::initiate<void>(token, executor(), [this, events = std::move(events)]() mutable { return log_events(std::move(events)); });
  }
  /// Events matching every filter given, in the order they were stored (time order):
  /// void(error_code, std::vector<TaskEvent>). The time window [start_time, end_time) is on the
  /// time the stream stored each event. The server filters by subject and start time; reading
  /// stops at end_time or once offset + limit events were found. Events that cannot be decoded
  /// are skipped with a logged warning.
  template <class CompletionToken = default_token>
  auto async_get_events(std::optional<std::string> task_id = std::nullopt, std::optional<EventType> event_type = std::nullopt, std::optional<Timestamp> start_time = std::nullopt, std::optional<Timestamp> end_time = std::nullopt, std::size_t limit = 100, std::size_t offset = 0, CompletionToken&& token = {}) {
    return detail::initiate<std::vector<TaskEvent>>(token, executor(), [this, task_id = std::move(task_id), event_type = std::move(event_type), start_time = std::move(start_time), end_time = std::move(end_time), limit, offset]() mutable { return get_events(std::move(task_id), std::move(event_type), std::move(start_time), std::move(end_time), limit, offset); });
  }
  /// A live sequence of events matching `filter`: from filter.start_time if set, else every
  /// event stored after follow completed: void(error_code, EventFollower).
  template <class CompletionToken = default_token>
  auto async_follow(EventFilter filter = {}, CompletionToken&& token = {}) {
    return detail::initiate<EventFollower>(token, executor(), [this, filter = std::move(filter)]() mutable { return follow(std::move(filter)); });
  }
  /// Removes every event stored before `older_than`; completes with how many were removed:
  /// void(error_code, std::uint64_t).
  template <class CompletionToken = default_token>
  auto async_cleanup_old_events(Timestamp older_than, CompletionToken&& token = {}) {
    return detail::initiate<std::uint64_t>(token, executor(), [this, older_than]() { return cleanup_old_events(older_than); });
  }

  NatsBackend& backend() noexcept { return backend_; }

 private:
  friend class ResultStore;
  friend class TaskContext;
  friend class NatsBackend;
  friend class TaskQueue;
  friend class Worker;
  friend class Scheduler;
  friend class ScheduleStore;
  asio::any_io_executor executor() const noexcept { return backend_.get_executor(); }

  asio::awaitable<void> ensure();
  asio::awaitable<StreamReport> info();
  asio::awaitable<void> log_event(TaskEvent event, std::string dedup_id = {});
  asio::awaitable<void> log_events(std::vector<TaskEvent> events);
  asio::awaitable<std::vector<TaskEvent>> get_events(std::optional<std::string> task_id = std::nullopt, std::optional<EventType> event_type = std::nullopt, std::optional<Timestamp> start_time = std::nullopt, std::optional<Timestamp> end_time = std::nullopt, std::size_t limit = 100, std::size_t offset = 0);
  asio::awaitable<EventFollower> follow(EventFilter filter = {});
  asio::awaitable<std::uint64_t> cleanup_old_events(Timestamp older_than);

  NatsBackend& backend_;
  detail::Provisioned provisioned_;
};

// Factories for each event type, filling the fields that event carries.
namespace events {
TaskEvent enqueued(std::string task_id, std::string queue);
TaskEvent dequeued(std::string task_id, std::string queue, std::string worker_id);
TaskEvent executing(std::string task_id, std::string worker_id);
TaskEvent completed(std::string task_id, Duration execution_time, std::string worker_id);
TaskEvent failed(std::string task_id, std::string error_type, std::string error_message);
TaskEvent retry(std::string task_id, int attempt, Duration delay);  // details: attempt, delay (seconds)
TaskEvent cancelled(std::string task_id);
TaskEvent expired(std::string task_id);
/// Schedule events carry the schedule id in schedule_id; their task_id (the subject token) is
/// schedule_token(schedule_id).
TaskEvent schedule_paused(std::string schedule_id);
TaskEvent schedule_resumed(std::string schedule_id);

/// The subject token of a schedule's events: the id itself when it is a safe token
/// ([A-Za-z0-9_-]{1,128}); otherwise each byte outside [A-Za-z0-9-] is written as _XX (hex),
/// e.g. "reports.daily" -> "reports_2Edaily", and an encoding over 128 characters is cut and
/// ends with "_h" and a 64-bit hash of the id. Query a schedule's events with
/// get_events(schedule_token(id)); the schedule_id field tells the rare colliding ids apart.
std::string schedule_token(std::string_view schedule_id);
}  // namespace events

/// The blocking forms: each in a throwing form and an error-code form (see SyncTaskQueue).
class SyncEventFollower : detail::Blocking {
 public:
  SyncEventFollower(EventFollower follower, asio::any_io_executor ex)
      : Blocking(std::move(ex)), follower_(std::move(follower)) {}
  std::optional<TaskEvent> next(Duration timeout) { return wait<std::optional<TaskEvent>>("EventFollower.next", [&](auto t) { return follower_.async_next(timeout, t); }); }
  std::optional<TaskEvent> next(Duration timeout, error_code& ec, Diagnostics& diag) {
    return wait<std::optional<TaskEvent>>("EventFollower.next", [&](auto t) { return follower_.async_next(timeout, t); }, ec, diag);
  }
  void close() { wait<void>("EventFollower.close", [&](auto t) { return follower_.async_close(t); }); }
  void close(error_code& ec, Diagnostics& diag) {
    wait<void>("EventFollower.close", [&](auto t) { return follower_.async_close(t); }, ec, diag);
  }
  std::uint64_t last_sequence() const noexcept { return follower_.last_sequence(); }
  const std::string& filter_subject() const noexcept { return follower_.filter_subject(); }

 private:
  EventFollower follower_;
};

class SyncEventLog : detail::Blocking {
 public:
  explicit SyncEventLog(EventLog& part) : Blocking(part.backend().get_executor()), part_(part) {}
  void ensure() { wait<void>("event_log.ensure", [&](auto t) { return part_.async_ensure(t); }); }
  void ensure(error_code& ec, Diagnostics& diag) {
    wait<void>("event_log.ensure", [&](auto t) { return part_.async_ensure(t); }, ec, diag);
  }
  StreamReport info() { return wait<StreamReport>("event_log.info", [&](auto t) { return part_.async_info(t); }); }
  StreamReport info(error_code& ec, Diagnostics& diag) {
    return wait<StreamReport>("event_log.info", [&](auto t) { return part_.async_info(t); }, ec, diag);
  }
  void log_event(TaskEvent event, std::string dedup_id = {}) { wait<void>("event_log.log_event", [&](auto t) { return part_.async_log_event(std::move(event), std::move(dedup_id), t); }); }
  void log_event(TaskEvent event, std::string dedup_id, error_code& ec, Diagnostics& diag) {
    wait<void>("event_log.log_event", [&](auto t) { return part_.async_log_event(std::move(event), std::move(dedup_id), t); }, ec, diag);
  }
  void log_events(std::vector<TaskEvent> events) { wait<void>("event_log.log_events", [&](auto t) { return part_.async_log_events(std::move(events), t); }); }
  void log_events(std::vector<TaskEvent> events, error_code& ec, Diagnostics& diag) {
    wait<void>("event_log.log_events", [&](auto t) { return part_.async_log_events(std::move(events), t); }, ec, diag);
  }
  std::vector<TaskEvent> get_events(std::optional<std::string> task_id = std::nullopt, std::optional<EventType> event_type = std::nullopt, std::optional<Timestamp> start_time = std::nullopt, std::optional<Timestamp> end_time = std::nullopt, std::size_t limit = 100, std::size_t offset = 0) { return wait<std::vector<TaskEvent>>("event_log.get_events", [&](auto t) { return part_.async_get_events(std::move(task_id), std::move(event_type), std::move(start_time), std::move(end_time), limit, offset, t); }); }
  std::vector<TaskEvent> get_events(std::optional<std::string> task_id, std::optional<EventType> event_type, std::optional<Timestamp> start_time, std::optional<Timestamp> end_time, std::size_t limit, std::size_t offset, error_code& ec, Diagnostics& diag) {
    return wait<std::vector<TaskEvent>>("event_log.get_events", [&](auto t) { return part_.async_get_events(std::move(task_id), std::move(event_type), std::move(start_time), std::move(end_time), limit, offset, t); }, ec, diag);
  }
  std::uint64_t cleanup_old_events(Timestamp older_than) { return wait<std::uint64_t>("event_log.cleanup_old_events", [&](auto t) { return part_.async_cleanup_old_events(older_than, t); }); }
  std::uint64_t cleanup_old_events(Timestamp older_than, error_code& ec, Diagnostics& diag) {
    return wait<std::uint64_t>("event_log.cleanup_old_events", [&](auto t) { return part_.async_cleanup_old_events(older_than, t); }, ec, diag);
  }
  SyncEventFollower follow(EventFilter filter = {}) {
    return SyncEventFollower(wait<EventFollower>("event_log.follow", [&](auto t) { return part_.async_follow(std::move(filter), t); }),
                             executor());
  }
  SyncEventFollower follow(EventFilter filter, error_code& ec, Diagnostics& diag) {
    return SyncEventFollower(
        wait<EventFollower>("event_log.follow", [&](auto t) { return part_.async_follow(std::move(filter), t); }, ec, diag),
        executor());
  }

 private:
  EventLog& part_;
};

}  // namespace omniq
