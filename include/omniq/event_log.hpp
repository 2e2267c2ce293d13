// The event log: task lifecycle events in a JetStream stream (OMNIQ_EVENTS, limits retention),
// one subject per event type and task: {events_subject}.{event_type}.{task_id}. Events are
// logged durably and pipelined, queried by the server (subject filters, start time), followed
// live across reconnects, and cleaned up by age. Coroutine API on EventLog; its blocking twin
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

#include "omniq/backend.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/sync.hpp"
#include "omniq/models/event.hpp"
#include "omniq/reports.hpp"

namespace omniq {

// What a follower receives; every field is optional and they combine.
struct EventFilter {
  std::optional<std::string> task_id{};     // a subject token: exactly this task
  std::optional<EventType> event_type{};
  std::optional<Timestamp> start_time{};    // replay from here (stored time); unset: only new events
};

// A live sequence of the events matching a filter, in stream order. Backed by an ephemeral
// pull consumer read in batches; it remembers the stream sequence of the last event it
// received and, when its consumer is lost (server restart, reconnect, consumer expired),
// recreates it from the next sequence: no gap, no duplicate. Move-only; use it from one
// coroutine at a time.
class EventFollower {
 public:
  EventFollower() noexcept;  // follows nothing, like a moved-from follower: next() throws closed
  EventFollower(EventFollower&&) noexcept;
  EventFollower& operator=(EventFollower&&) noexcept;
  // Does not block or wait for the server: the consumer is removed by the server after its
  // inactivity threshold (30 s) unless close() removed it first.
  ~EventFollower();

  // The next event, waiting up to `timeout` for one; nullopt when none came in time (also while
  // the server cannot be reached: the follower keeps retrying until the timeout, then resumes
  // on the next call). A timeout <= 0 only asks the server once. Throws omniq::Error(closed)
  // after close(), not_connected when the backend is closed, permission_denied.
  asio::awaitable<std::optional<TaskEvent>> next(Duration timeout);
  // Removes the consumer on the server; next() then throws. Idempotent.
  asio::awaitable<void> close();

  // Stream sequence of the last event received from the server (0 before the first).
  std::uint64_t last_sequence() const noexcept;
  // The subject filter it reads, e.g. "omniq.events.*.task-1".
  const std::string& filter_subject() const noexcept;

 private:
  friend class EventLog;
  struct State;
  explicit EventFollower(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class EventLog {
 public:
  // Shares the backend's connection; creates nothing until first used.
  explicit EventLog(NatsBackend& backend) : backend_(backend) {}

  // Creates or checks its stream with the configured settings (done once; every operation does it).
  asio::awaitable<void> ensure();
  // The server's view of its stream: settings as stored and current state.
  asio::awaitable<StreamReport> info();

  // Stores the event and returns once the stream acknowledged it. With a `dedup_id` (sent as
  // Nats-Msg-Id), logging again with the same id within the stream's duplicate_window stores
  // the event once (the repeat is acknowledged as a duplicate). Throws omniq::Error:
  // invalid_name / invalid_argument (task id or event type not a subject token, a dedup_id
  // with control characters; before any network call), payload_too_large, timeout,
  // not_connected.
  asio::awaitable<void> log_event(TaskEvent event, std::string dedup_id = {});
  // Stores many events with up to 4096 publishes in flight; every event is validated before any
  // is sent. On a failure the error says how many were stored (logging them again would store
  // those twice: events are not deduplicated).
  asio::awaitable<void> log_events(std::vector<TaskEvent> events);

  // Events matching every filter given, in the order they were stored (time order). The time
  // window [start_time, end_time) is on the time the stream stored each event. The server
  // filters by subject and start time; reading stops at end_time or once offset + limit events
  // were found. Events that cannot be decoded are skipped with a logged warning.
  asio::awaitable<std::vector<TaskEvent>> get_events(std::optional<std::string> task_id = std::nullopt,
                                                     std::optional<EventType> event_type = std::nullopt,
                                                     std::optional<Timestamp> start_time = std::nullopt,
                                                     std::optional<Timestamp> end_time = std::nullopt,
                                                     std::size_t limit = 100, std::size_t offset = 0);

  // A live sequence of events matching `filter`: from filter.start_time if set, else every
  // event stored after follow() returned.
  asio::awaitable<EventFollower> follow(EventFilter filter = {});

  // Removes every event stored before `older_than`; returns how many were removed.
  asio::awaitable<std::uint64_t> cleanup_old_events(Timestamp older_than);

  NatsBackend& backend() noexcept { return backend_; }

 private:
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
// Schedule events carry the schedule id in schedule_id; their task_id (the subject token) is
// schedule_token(schedule_id).
TaskEvent schedule_paused(std::string schedule_id);
TaskEvent schedule_resumed(std::string schedule_id);

// The subject token of a schedule's events: the id itself when it is a safe token
// ([A-Za-z0-9_-]{1,128}); otherwise each byte outside [A-Za-z0-9-] is written as _XX (hex),
// e.g. "reports.daily" -> "reports_2Edaily", and an encoding over 128 characters is cut and
// ends with "_h" and a 64-bit hash of the id. Query a schedule's events with
// get_events(schedule_token(id)); the schedule_id field tells the rare colliding ids apart.
std::string schedule_token(std::string_view schedule_id);
}  // namespace events

class SyncEventFollower {
 public:
  SyncEventFollower(EventFollower follower, asio::any_io_executor ex)
      : follower_(std::move(follower)), ex_(std::move(ex)) {}
  std::optional<TaskEvent> next(Duration timeout) { return run(follower_.next(timeout), "EventFollower::next"); }
  void close() { run(follower_.close(), "EventFollower::close"); }
  std::uint64_t last_sequence() const noexcept { return follower_.last_sequence(); }
  const std::string& filter_subject() const noexcept { return follower_.filter_subject(); }

 private:
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(ex_, std::move(op), what);
  }
  EventFollower follower_;
  asio::any_io_executor ex_;
};

class SyncEventLog {
 public:
  explicit SyncEventLog(EventLog& part) : part_(part) {}
  void ensure() { run(part_.ensure(), "event_log.ensure"); }
  StreamReport info() { return run(part_.info(), "event_log.info"); }
  void log_event(TaskEvent event, std::string dedup_id = {}) {
    run(part_.log_event(std::move(event), std::move(dedup_id)), "event_log.log_event");
  }
  void log_events(std::vector<TaskEvent> events) { run(part_.log_events(std::move(events)), "event_log.log_events"); }
  std::vector<TaskEvent> get_events(std::optional<std::string> task_id = std::nullopt,
                                    std::optional<EventType> event_type = std::nullopt,
                                    std::optional<Timestamp> start_time = std::nullopt,
                                    std::optional<Timestamp> end_time = std::nullopt, std::size_t limit = 100,
                                    std::size_t offset = 0) {
    return run(part_.get_events(std::move(task_id), event_type, start_time, end_time, limit, offset),
               "event_log.get_events");
  }
  SyncEventFollower follow(EventFilter filter = {}) {
    return SyncEventFollower(run(part_.follow(std::move(filter)), "event_log.follow"), executor());
  }
  std::uint64_t cleanup_old_events(Timestamp older_than) {
    return run(part_.cleanup_old_events(older_than), "event_log.cleanup_old_events");
  }

 private:
  asio::any_io_executor executor() { return part_.backend().get_executor(); }
  template <class T>
  T run(asio::awaitable<T> op, const char* what) {
    return detail::run_blocking(executor(), std::move(op), what);
  }
  EventLog& part_;
};

}  // namespace omniq
