// The event log: task lifecycle events in a JetStream stream with limits retention, one subject
// per event type and task. Queries and followers read through ephemeral consumers (readers)
// whose subject filter and start position the server applies. docs/event-log.md explains it.
#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/ensure.hpp"
#include "omniq/event_log.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <mutex>

#include <boost/asio/system_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/jetstream.hpp"
#include "omniq/detail/layout.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

using asio::use_awaitable;
using detail::JsMessage;
using Steady = std::chrono::steady_clock;

namespace {

// Publishes in flight at once in log_events.
constexpr std::size_t kPublishWindow = 4096;
// Messages asked for at once by a query and by a follower draining a backlog.
constexpr std::uint64_t kQueryBatch = 1000;
constexpr int kFollowBatch = 256;
// A follower long-polls for the next event at most this long per pull, so a pull lost with
// its server or consumer is noticed within this plus the lost-pull margin below.
constexpr auto kLongestPoll = std::chrono::milliseconds(1000);
constexpr auto kShortestPoll = std::chrono::milliseconds(10);
// Retries after a failed pull or consumer creation wait this long, doubling up to the longest.
constexpr auto kRetryFirst = std::chrono::milliseconds(50);
constexpr auto kRetryLongest = std::chrono::milliseconds(1000);
// Never wait less than this for the server to create a follower's consumer.
constexpr auto kShortestCreate = std::chrono::milliseconds(100);
// A pull with no answer this long after it expired is taken as lost (with its server or its
// consumer, which 2.9 servers do not report): half the request timeout, within these bounds.
constexpr auto kLostPullMarginMin = std::chrono::milliseconds(250);
constexpr auto kLostPullMarginMax = std::chrono::milliseconds(2000);

// ---- subjects ------------------------------------------------------------------------------
// {events_subject}.{event_type}.{task_id}; a query or follower filters with '*' for what it
// leaves open.

std::string event_subject(const Config& c, std::string_view type, std::string_view task) {
  std::string s = c.events_subject;
  s.append(".").append(type).append(".").append(task);
  return s;
}

std::string event_filter(const Config& c, const std::optional<EventType>& type,
                         const std::optional<std::string>& task_id) {
  return event_subject(c, type ? to_string(*type) : std::string_view("*"), task_id ? *task_id : "*");
}

void validate_type(std::string_view field, EventType type) {
  constexpr auto last = static_cast<std::size_t>(EventType::schedule_resumed);
  if (static_cast<std::size_t>(type) > last)
    throw_error(errc::invalid_name, std::string(field) + " " + std::to_string(static_cast<std::size_t>(type)) +
                                        " is not an EventType value, so it cannot name a subject (valid: "
                                        "enqueued, dequeued, executing, completed, failed, retry, cancelled, "
                                        "expired, schedule_paused, schedule_resumed)");
}

std::int64_t to_ns(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The event's bytes once it is known to fit its subject and the server's max_payload.
std::string encode_checked(const TaskEvent& event, std::int64_t max_payload) {
  event.validate();
  validate_type("event.event_type", event.event_type);
  std::string data = encode(event);
  if (max_payload > 0 && static_cast<std::int64_t>(data.size()) > max_payload)
    throw_error(errc::payload_too_large, "event " + event.id + " of task " + event.task_id + " is " +
                                             std::to_string(data.size()) +
                                             " bytes encoded, over the server's max_payload of " +
                                             std::to_string(max_payload) + " bytes");
  return data;
}

// A stored event, or nullopt with a warning when another client put something else on an
// event subject: bytes that are not an event, or an event that does not belong on its subject
// (which would leak it into other tasks' queries).
std::optional<TaskEvent> decode_stored(NatsBackend& backend, const JsMessage& m) {
  std::string problem;
  try {
    TaskEvent event = decode_event(m.data);
    if (event_subject(backend.config(), to_string(event.event_type), event.task_id) == m.subject) return event;
    problem = "it is a " + std::string(to_string(event.event_type)) + " event of task " + event.task_id +
              ", which does not belong on this subject";
  } catch (const std::exception& e) {
    problem = e.what();
  }
  backend.log().warn("omniq: skipping the message at sequence {} on {} in {}: {}", m.stream_sequence, m.subject,
                     m.stream, problem);
  return std::nullopt;
}

}  // namespace

// ---- EventLog --------------------------------------------------------------------------------

asio::awaitable<void> EventLog::ensure() {
  auto make = [&c = backend_.config()] {
    return [spec = detail::events_stream_spec(c)](natsConnection*, jsCtx* js) { detail::ensure_stream(js, spec); };
  };
  co_await detail::ensure_once(provisioned_, backend_.connection(), std::move(make));
}

asio::awaitable<StreamReport> EventLog::info() {
  co_await ensure();
  co_return co_await detail::stream_report(backend_.connection(), backend_.config().events_stream.name);
}

asio::awaitable<void> EventLog::log_event(TaskEvent event, std::string dedup_id) {
  auto& connection = backend_.connection();
  std::string data = encode_checked(event, connection.max_payload());
  for (const unsigned char ch : dedup_id)
    if (ch < 0x20 || ch == 0x7f)
      throw_error(errc::invalid_argument, "log_event: dedup_id \"" + dedup_id +
                                              "\" holds a control character (it is sent as a header)");
  co_await ensure();
  std::string subject = event_subject(backend_.config(), to_string(event.event_type), event.task_id);
  std::string what = "logging " + std::string(to_string(event.event_type)) + " event " + event.id + " of task " +
                     event.task_id;
  detail::Headers headers;
  if (!dedup_id.empty()) headers.push_back({"Nats-Msg-Id", std::move(dedup_id)});
  co_await detail::js_publish(connection, std::move(subject), std::move(data), std::move(headers), std::move(what));
}

asio::awaitable<void> EventLog::log_events(std::vector<TaskEvent> events) {
  auto& connection = backend_.connection();
  const Config& c = backend_.config();
  // Every event is checked before anything is sent: a bad event stops the batch, not half of it.
  std::vector<detail::Request> requests;
  requests.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    try {
      requests.push_back(detail::Request{
          .subject = event_subject(c, to_string(events[i].event_type), events[i].task_id),
          .data = encode_checked(events[i], connection.max_payload())});
    } catch (const Error& e) {
      throw_error(e.kind(), "log_events: event " + std::to_string(i) + " of " + std::to_string(events.size()) +
                                ": " + e.what() + "; nothing was logged");
    }
  }
  if (events.empty()) co_return;
  co_await ensure();
  const detail::BatchFailures failures = co_await detail::publish_batch(
      connection, std::move(requests), kPublishWindow, [&](std::size_t i) { return "logging event " + events[i].id; });
  if (failures.failed.empty()) co_return;
  const std::size_t at = failures.failed.front();
  try {
    std::rethrow_exception(failures.first);
  } catch (const Error& e) {  // with how far the batch got
    throw_error(e.kind(), "log_events: " + std::to_string(events.size() - failures.failed.size()) + " of " +
                              std::to_string(events.size()) + " events stored; event " + std::to_string(at) + " (" +
                              events[at].id + ", task " + events[at].task_id + ") failed: " + e.what());
  }
}

asio::awaitable<std::vector<TaskEvent>> EventLog::get_events(std::optional<std::string> task_id,
                                                             std::optional<EventType> event_type,
                                                             std::optional<Timestamp> start_time,
                                                             std::optional<Timestamp> end_time, std::size_t limit,
                                                             std::size_t offset) {
  if (task_id) validate_token("task_id", *task_id);
  if (event_type) validate_type("event_type", *event_type);
  std::vector<TaskEvent> out;
  if (limit == 0 || (start_time && end_time && *start_time >= *end_time)) co_return out;
  co_await ensure();
  auto& connection = backend_.connection();
  const Config& c = backend_.config();
  detail::ReaderOptions options{.stream = c.events_stream.name, .filter = event_filter(c, event_type, task_id)};
  if (start_time) {
    options.from = detail::ReadFrom::start_time;
    options.start_time = *start_time;
  }
  const detail::Reader reader = co_await detail::create_reader(connection, std::move(options));

  const std::uint64_t wanted = offset > std::numeric_limits<std::size_t>::max() - limit
                                   ? std::numeric_limits<std::uint64_t>::max()
                                   : static_cast<std::uint64_t>(offset + limit);
  const std::optional<std::int64_t> end_ns = end_time ? std::optional(to_ns(*end_time)) : std::nullopt;
  std::uint64_t matched = 0;
  std::uint64_t remaining = reader.num_pending;
  std::exception_ptr failure;
  try {
    bool done = false;
    while (!done && remaining > 0 && matched < wanted) {
      const std::uint64_t batch = std::min({remaining, wanted - matched, kQueryBatch});
      detail::FetchRequest pull{.stream = reader.stream, .consumer = reader.name,
                                .batch = static_cast<int>(batch), .no_wait = true};
      std::vector<JsMessage> got = co_await connection.async_fetch(std::move(pull), use_awaitable);
      if (got.empty()) break;
      remaining = got.back().pending;
      for (auto& m : got) {
        if (end_ns && m.timestamp_ns >= *end_ns) {  // stream order is time order: nothing later fits
          done = true;
          break;
        }
        auto event = decode_stored(backend_, m);
        if (!event) continue;
        if (matched++ >= offset) out.push_back(std::move(*event));
        if (matched >= wanted) {
          done = true;
          break;
        }
      }
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await detail::delete_reader(connection, reader.stream, reader.name);  // else it expires by itself
  if (failure) std::rethrow_exception(failure);
  co_return out;
}

asio::awaitable<std::uint64_t> EventLog::cleanup_old_events(Timestamp older_than) {
  co_await ensure();
  auto& connection = backend_.connection();
  const std::string& stream = backend_.config().events_stream.name;
  // A reader starting at `older_than` is positioned by the server at the first event stored at
  // or after it; everything before that position goes, in one purge.
  detail::ReaderOptions options{.stream = stream, .from = detail::ReadFrom::start_time, .start_time = older_than};
  const detail::Reader reader = co_await detail::create_reader(connection, std::move(options));
  co_await detail::delete_reader(connection, reader.stream, reader.name);
  co_return co_await detail::purge_below(connection, stream, reader.start_after + 1);
}

// ---- EventFollower ---------------------------------------------------------------------------

namespace {
// The outcome of a follower's pull, handed over from its completion.
struct PullOutcome {
  std::exception_ptr error{};
  std::vector<JsMessage> messages{};
  std::string consumer{};
};
// One pull of a follower, shared with the pull's completion, which may run after the follower
// gave the pull up or is gone. `signal` only wakes the follower; the outcome itself waits in
// `outcome`, so a wake-up lost to a timeout loses nothing.
struct Pull {
  Pull(const asio::any_io_executor& ex, std::string c, Steady::time_point d)
      : signal(ex, 1), consumer(std::move(c)), due(d) {}
  std::mutex mu;
  std::optional<PullOutcome> outcome;  // guarded by mu
  asio::experimental::concurrent_channel<void(boost::system::error_code)> signal;
  const std::string consumer;
  // A live server answers by then (a message, or 408 when the pull expires); silence means the
  // pull was lost with its server or its consumer.
  const Steady::time_point due;
};
}  // namespace

struct EventFollower::State {
  NatsBackend& backend;
  std::string stream;
  std::string filter;
  std::string consumer{};      // empty: to be (re)created from last_sseq + 1
  std::uint64_t last_sseq = 0;  // stream sequence of the last message received
  std::uint64_t last_cseq = 0;  // its consumer sequence: deliveries are numbered 1, 2, 3...
  std::uint64_t pending = 0;    // messages the server said were left after the last one
  std::deque<TaskEvent> buffer{};
  std::shared_ptr<Pull> pull{};  // the pull in flight, if any
  bool closed = false;
  std::chrono::milliseconds backoff = kRetryFirst;

  State(NatsBackend& b, std::string s, std::string f) : backend(b), stream(std::move(s)), filter(std::move(f)) {}

  std::chrono::milliseconds lost_pull_margin() const {
    return std::clamp(backend.config().request_timeout / 2, kLostPullMarginMin, kLostPullMarginMax);
  }

  // Gives up the consumer: the next pull recreates it after the last sequence received. The
  // old one is deleted without waiting (it also expires by itself).
  void abandon_consumer() {
    pull.reset();
    if (consumer.empty()) return;
    detail::Request req{.subject = "$JS.API.CONSUMER.DELETE." + stream + "." + consumer};
    backend.connection().async_request(std::move(req), asio::detached);
    consumer.clear();
  }

  asio::awaitable<void> recreate(Steady::duration left) {
    const auto timeout = std::min(std::max(std::chrono::duration_cast<std::chrono::milliseconds>(left), kShortestCreate),
                                  backend.config().request_timeout);
    detail::ReaderOptions options{.stream = stream, .filter = filter, .from = detail::ReadFrom::start_sequence,
                                  .start_sequence = last_sseq + 1, .timeout = timeout};
    const detail::Reader reader = co_await detail::create_reader(backend.connection(), std::move(options));
    consumer = reader.name;
    last_cseq = 0;
    pending = 0;
    backend.log().info("omniq: event follower on {} resumed after stream sequence {}", filter, last_sseq);
  }

  // Starts a pull whose outcome lands in `pull`: a short drain when the server said more is
  // waiting, else a long poll for the next event, which returns as soon as one arrives.
  void start_pull(bool poll, Steady::duration left) {
    detail::FetchRequest req{.stream = stream, .consumer = consumer};
    if (poll || pending > 0) {
      req.batch = kFollowBatch;
      req.no_wait = true;
    } else {
      req.batch = 1;
      req.no_wait = false;
      req.expires = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(left), kShortestPoll,
                               kLongestPoll);
    }
    pull = std::make_shared<Pull>(backend.get_executor(), consumer, Steady::now() + req.expires + lost_pull_margin());
    auto done = [pull = pull](std::exception_ptr error, std::vector<JsMessage> got) mutable {
      {
        std::lock_guard lock(pull->mu);
        pull->outcome = PullOutcome{std::move(error), std::move(got), pull->consumer};
      }
      pull->signal.try_send(boost::system::error_code{});
    };
    backend.connection().async_fetch(std::move(req), std::move(done));
  }

  // The outcome of the pull in flight; an error when it is overdue (lost); nullopt at `until`,
  // when the pull stays in flight for a later call.
  asio::awaitable<std::optional<PullOutcome>> wait_outcome(Steady::time_point until) {
    using namespace asio::experimental::awaitable_operators;
    const std::shared_ptr<Pull> current = pull;
    for (;;) {
      {
        std::lock_guard lock(current->mu);
        if (current->outcome) {
          std::optional<PullOutcome> got = std::move(current->outcome);
          pull.reset();
          co_return got;
        }
      }
      const auto now = Steady::now();
      if (now >= current->due) {
        pull.reset();
        co_return PullOutcome{std::make_exception_ptr(Error(errc::timeout, "pull from consumer " + current->consumer +
                                                                              " got no answer by its expiry")),
                              {}, current->consumer};
      }
      if (now >= until) co_return std::nullopt;
      asio::steady_timer timer(co_await asio::this_coro::executor, std::min(until, current->due));
      auto woken = current->signal.async_receive(asio::as_tuple(use_awaitable));
      auto timed_out = timer.async_wait(asio::as_tuple(use_awaitable));
      co_await (std::move(woken) || std::move(timed_out));
    }
  }

  // Takes delivered messages into the buffer. Deliveries of a consumer without acks are
  // numbered 1, 2, 3...: a hole in that numbering (deliveries lost with a connection), or the
  // server finding nothing after it said more was waiting, means the consumer moved past
  // events this follower never saw, so it is recreated after the last one received.
  void take(PullOutcome outcome) {
    if (outcome.consumer != consumer) return;  // from a consumer already given up
    bool lost = outcome.messages.empty() && pending > 0;
    for (auto& m : outcome.messages) {
      if (m.consumer_sequence != last_cseq + 1) {
        lost = true;
        break;
      }
      last_cseq = m.consumer_sequence;
      pending = m.pending;
      if (m.stream_sequence <= last_sseq) continue;  // already received
      last_sseq = m.stream_sequence;
      if (auto event = decode_stored(backend, m)) buffer.push_back(std::move(*event));
    }
    if (lost) {
      backend.log().info("omniq: event follower on {} missed deliveries; resuming after stream sequence {}", filter,
                         last_sseq);
      abandon_consumer();
    }
  }
};

EventFollower::EventFollower() noexcept = default;
EventFollower::EventFollower(std::unique_ptr<State> state) : state_(std::move(state)) {}
EventFollower::EventFollower(EventFollower&&) noexcept = default;
EventFollower& EventFollower::operator=(EventFollower&&) noexcept = default;
EventFollower::~EventFollower() = default;

asio::any_io_executor EventFollower::executor() const {
  // A follower that follows nothing still completes its operations (with errc::closed).
  if (!state_) return asio::system_executor();
  return state_->backend.get_executor();
}

std::uint64_t EventFollower::last_sequence() const noexcept { return state_ ? state_->last_sseq : 0; }

const std::string& EventFollower::filter_subject() const noexcept {
  static const std::string none;
  return state_ ? state_->filter : none;
}

asio::awaitable<std::optional<TaskEvent>> EventFollower::next(Duration timeout) {
  if (!state_ || state_->closed) throw_error(errc::closed, "EventFollower::next: the follower was closed");
  State& s = *state_;
  const bool poll = timeout <= Duration::zero();
  const Steady::time_point deadline = poll ? Steady::now() : Steady::now() + timeout;
  bool asked = false;  // a poll asks the server once
  for (;;) {
    if (!s.buffer.empty()) {
      std::optional<TaskEvent> event = std::move(s.buffer.front());
      s.buffer.pop_front();
      co_return event;
    }
    std::exception_ptr failure;
    if (!s.pull) {
      if (poll ? asked : Steady::now() >= deadline) co_return std::nullopt;
      s.backend.connection().ensure_open();  // the backend closed: no retry helps
      if (s.consumer.empty()) {
        try {
          co_await s.recreate(deadline - Steady::now());
        } catch (...) {
          failure = std::current_exception();
        }
      }
      if (!failure) {
        s.start_pull(poll, deadline - Steady::now());
        asked = true;
      }
    }
    if (!failure) {
      // A poll waits for the answer to its own no-wait pull, not for a long poll still in flight.
      const auto until = !poll ? deadline : asked ? Steady::now() + s.backend.config().request_timeout : Steady::now();
      std::optional<PullOutcome> outcome = co_await s.wait_outcome(until);
      if (!outcome) co_return std::nullopt;  // its pull stays in flight for the next call
      if (outcome->error && outcome->consumer == s.consumer) {
        failure = outcome->error;
      } else {
        s.take(std::move(*outcome));
        s.backoff = kRetryFirst;
        continue;
      }
    }
    // The consumer or the server is gone (restart, reconnect, expiry), or the server did not
    // answer: recreate the consumer after the last event received, backing off meanwhile.
    if (!detail::is_transient(failure)) std::rethrow_exception(failure);
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      s.backend.log().debug("omniq: event follower on {}: {}; retrying", s.filter, e.what());
    }
    s.abandon_consumer();
    if (poll) co_return std::nullopt;
    const auto wake = std::min(Steady::now() + s.backoff, deadline);
    s.backoff = std::min(s.backoff * 2, kRetryLongest);
    asio::steady_timer timer(co_await asio::this_coro::executor, wake);
    co_await timer.async_wait(use_awaitable);
  }
}

asio::awaitable<void> EventFollower::close() {
  if (!state_ || state_->closed) co_return;
  State& s = *state_;
  s.closed = true;
  if (s.pull) s.pull->signal.close();
  s.pull.reset();
  if (!s.consumer.empty()) co_await detail::delete_reader(s.backend.connection(), s.stream, s.consumer);
  s.consumer.clear();
}

asio::awaitable<EventFollower> EventLog::follow(EventFilter filter) {
  if (filter.task_id) validate_token("task_id", *filter.task_id);
  if (filter.event_type) validate_type("event_type", *filter.event_type);
  co_await ensure();
  const Config& c = backend_.config();
  auto state = std::make_unique<EventFollower::State>(backend_, c.events_stream.name,
                                                      event_filter(c, filter.event_type, filter.task_id));
  detail::ReaderOptions options{.stream = state->stream, .filter = state->filter};
  if (filter.start_time) {
    options.from = detail::ReadFrom::start_time;
    options.start_time = *filter.start_time;
  } else {
    options.from = detail::ReadFrom::new_only;
  }
  const detail::Reader reader = co_await detail::create_reader(backend_.connection(), std::move(options));
  state->consumer = reader.name;
  // Where the server placed it: a recreated consumer resumes from here even if nothing came yet.
  state->last_sseq = reader.start_after;
  co_return EventFollower(std::move(state));
}

// ---- factories -------------------------------------------------------------------------------

namespace events {

namespace {
std::string seconds_text(Duration d) {
  std::string s = std::to_string(std::chrono::duration<double>(d).count());
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s + " s";
}
TaskEvent make(EventType type, std::string task_id, std::string message) {
  TaskEvent e = TaskEvent::make(type, std::move(task_id));
  e.message = std::move(message);
  return e;
}
TaskEvent schedule_event(EventType type, std::string schedule_id, std::string_view what) {
  TaskEvent e = make(type, schedule_token(schedule_id), "schedule " + schedule_id + " " + std::string(what));
  e.schedule_id = std::move(schedule_id);
  return e;
}
}  // namespace

TaskEvent enqueued(std::string task_id, std::string queue) {
  TaskEvent e = make(EventType::enqueued, std::move(task_id), "enqueued on queue " + queue);
  e.queue_name = std::move(queue);
  return e;
}

TaskEvent dequeued(std::string task_id, std::string queue, std::string worker_id) {
  TaskEvent e = make(EventType::dequeued, std::move(task_id), "dequeued from queue " + queue + " by " + worker_id);
  e.queue_name = std::move(queue);
  e.worker_id = std::move(worker_id);
  return e;
}

TaskEvent executing(std::string task_id, std::string worker_id) {
  TaskEvent e = make(EventType::executing, std::move(task_id), "executing on " + worker_id);
  e.worker_id = std::move(worker_id);
  return e;
}

TaskEvent completed(std::string task_id, Duration execution_time, std::string worker_id) {
  TaskEvent e = make(EventType::completed, std::move(task_id), "completed in " + seconds_text(execution_time));
  e.execution_time = execution_time;
  e.worker_id = std::move(worker_id);
  return e;
}

TaskEvent failed(std::string task_id, std::string error_type, std::string error_message) {
  TaskEvent e = make(EventType::failed, std::move(task_id), "failed: " + error_type + ": " + error_message);
  e.error_type = std::move(error_type);
  e.error_message = std::move(error_message);
  return e;
}

TaskEvent retry(std::string task_id, int attempt, Duration delay) {
  TaskEvent e = make(EventType::retry, std::move(task_id),
                     "retry " + std::to_string(attempt) + " in " + seconds_text(delay));
  e.details["attempt"] = attempt;
  e.details["delay"] = std::chrono::duration<double>(delay).count();
  return e;
}

TaskEvent cancelled(std::string task_id) { return make(EventType::cancelled, std::move(task_id), "cancelled"); }

TaskEvent expired(std::string task_id) { return make(EventType::expired, std::move(task_id), "expired"); }

TaskEvent schedule_paused(std::string schedule_id) {
  return schedule_event(EventType::schedule_paused, std::move(schedule_id), "paused");
}

TaskEvent schedule_resumed(std::string schedule_id) {
  return schedule_event(EventType::schedule_resumed, std::move(schedule_id), "resumed");
}

std::string schedule_token(std::string_view schedule_id) {
  if (is_valid_token(schedule_id)) return std::string(schedule_id);
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : schedule_id) {
    const bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
    if (plain) {
      out += static_cast<char>(ch);
    } else {
      out += '_';
      out += hex[ch >> 4];
      out += hex[ch & 0xF];
    }
  }
  if (out.size() > max_token_length) {
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a over the whole id
    for (unsigned char ch : schedule_id) h = (h ^ ch) * 1099511628211ull;
    out.resize(max_token_length - 18);
    out += "_h";
    for (int shift = 60; shift >= 0; shift -= 4) out += hex[(h >> shift) & 0xF];
  }
  return out;
}

}  // namespace events

}  // namespace omniq
