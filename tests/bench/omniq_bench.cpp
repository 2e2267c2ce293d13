// omniq's benchmark: each scenario does the same JetStream work through omniq's
// task queue and through raw nats.c calls, in one run on one local nats-server, and prints one
// JSON line with both medians and their ratio. A program, not a test: speed is measured, never asserted.
//
// Usage: omniq_bench [enqueue_batch] [enqueue_single] [dequeue_ack] [result_set] [result_get]
//                    [schedule_update] [event_log] [worker_noop] [worker_noop_c1]
//                    [worker_memory]   (none given: all)
// Environment: OMNIQ_BENCH_N scales every scenario (50000 gives the default sizes);
// OMNIQ_BENCH_MEMORY_N sets the tasks worker_memory drains (default 1000000, 0 skips it).
// Scenarios with a context figure (raw nats.c on 8 threads, omniq in chunks) print it as an
// extra "<name>_per_s" / "<name>_rounds" pair, measured in the same rounds; "ratio" is always
// omniq_per_s / raw_per_s.
// Exit status: 0 when every scenario was measured, 1 when one printed an error line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <nats/nats.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "omniq/backend.hpp"
#include "omniq/detail/layout.hpp"
#include "omniq/event_log.hpp"
#include "omniq/local_server.hpp"
#include "omniq/models/event.hpp"
#include "omniq/models/result.hpp"
#include "omniq/models/schedule.hpp"
#include "omniq/models/task.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/task_queue.hpp"
#include "omniq/uuid.hpp"
#include "omniq/worker.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using omniq::Task;

constexpr int kRounds = 3;
constexpr std::size_t kTaskBytes = 256;  // target size of an encoded task (both sides send the same bytes)
constexpr int kFetchBatch = 256;
constexpr std::int64_t kRawMaxPending = 4096;  // as omniq's enqueue_batch window
constexpr std::size_t kBaseN = 50'000;
constexpr std::size_t kBaseSingleN = 3'000;
constexpr std::size_t kBaseWorkerN = 20'000;   // worker_noop, 64 in flight
constexpr std::size_t kBaseWorkerC1N = 2'000;  // worker_noop_c1, one at a time
constexpr std::size_t kBaseMemoryN = 1'000'000;  // one round trip each: ~0.5 s per round
// Per scenario at the base N (setup and every round); scaled up with OMNIQ_BENCH_N.
constexpr auto kScenarioLimit = 120s;
const std::string kQueue = "default";

// A scenario that could not be measured; it becomes the scenario's error line.
struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void require(bool ok, const std::string& what) {
  if (!ok) throw BenchError(what);
}

void check_deadline(Clock::time_point deadline, const std::string& what) {
  if (Clock::now() >= deadline) throw BenchError(what + ": over the scenario's time limit");
}

std::int64_t ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return std::max<std::int64_t>(left, 1);
}

template <class F>
double seconds(F&& f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- tasks ---------------------------------------------------------------------------------

Task bench_task(const std::string& pad) {
  Task t;
  t.func = "bench.noop";
  t.args = nlohmann::json::array({pad});
  return t;
}

// Fresh tasks (new ids: enqueues are deduplicated by id), padded up to kTaskBytes encoded. A
// task with every field at its default already encodes to ~300 bytes, so the pad may be empty;
// each JSON line reports the real size as "bytes".
std::vector<Task> make_tasks(std::size_t n) {
  const std::size_t base = omniq::encode(bench_task("")).size();
  const std::string pad(base < kTaskBytes ? kTaskBytes - base : 0, 'x');
  std::vector<Task> tasks;
  tasks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) tasks.push_back(bench_task(pad));
  return tasks;
}

// A message as omniq would publish it, for the raw side, with the same headers: tasks carry
// their id as Nats-Msg-Id and Nats-Expected-Stream; the worker's outcome events a Nats-Msg-Id;
// KV creates and compare-and-set updates Nats-Expected-Last-Subject-Sequence; other KV puts and
// events none.
struct RawMessage {
  std::string subject;
  std::string id;  // empty: no Nats-Msg-Id
  std::string data;
  std::string expected_last_subject_sequence{};  // empty: no such header
  bool expect_stream = false;                    // Nats-Expected-Stream: the client's stream
};

std::vector<RawMessage> as_raw(const omniq::Config& c, const std::vector<Task>& tasks) {
  std::vector<RawMessage> out;
  out.reserve(tasks.size());
  for (const auto& t : tasks)
    out.push_back({omniq::detail::task_subject(c, t.queue_name, omniq::detail::band_for(t.priority), t.id), t.id,
                   omniq::encode(t), "", true});
  return out;
}

// ---- raw nats.c ----------------------------------------------------------------------------

void check(natsStatus s, const std::string& what, jsErrCode code = static_cast<jsErrCode>(0)) {
  if (s == NATS_OK) return;
  std::string text = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last && *last) text += std::string(" (") + last + ")";
  if (code != 0) text += ", JetStream error " + std::to_string(static_cast<int>(code));
  throw BenchError("raw: " + what + ": " + text);
}

template <class T, void (*Destroy)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept {
    if (p) Destroy(p);
  }
};
using ConnectionPtr = std::unique_ptr<natsConnection, Deleter<natsConnection, natsConnection_Destroy>>;
using JsPtr = std::unique_ptr<jsCtx, Deleter<jsCtx, jsCtx_Destroy>>;
using SubscriptionPtr = std::unique_ptr<natsSubscription, Deleter<natsSubscription, natsSubscription_Destroy>>;
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, Deleter<jsStreamInfo, jsStreamInfo_Destroy>>;
using KvPtr = std::unique_ptr<kvStore, Deleter<kvStore, kvStore_Destroy>>;
using KvEntryPtr = std::unique_ptr<kvEntry, Deleter<kvEntry, kvEntry_Destroy>>;

struct MsgList {
  natsMsgList list{};
  ~MsgList() { natsMsgList_Destroy(&list); }
};

// The baseline: a connection of its own with nats.c's default options, doing by hand what
// omniq does for the same scenario.
class RawClient {
 public:
  // send_asap: nats.c writes each publish at once instead of coalescing for up to 1 ms, as
  // omniq does by default; the worker scenarios use it so a one-at-a-time raw loop is not held
  // back. record_sequences: keep the stream sequence of each async publish, by subject
  // (sequence_of), for compare-and-set updates after a create.
  RawClient(const std::string& url, std::string stream, bool send_asap = false, bool record_sequences = false)
      : stream_(std::move(stream)) {
    natsOptions* opts = nullptr;
    check(natsOptions_Create(&opts), "connection options");
    std::unique_ptr<natsOptions, Deleter<natsOptions, natsOptions_Destroy>> options(opts);
    check(natsOptions_SetURL(opts, url.c_str()), "server URL");
    check(natsOptions_SetSendAsap(opts, send_asap), "send_asap");
    natsConnection* nc = nullptr;
    check(natsConnection_Connect(&nc, opts), "connecting to " + url);
    nc_.reset(nc);
    jsOptions o;
    check(jsOptions_Init(&o), "JetStream options");
    o.PublishAsync.MaxPending = kRawMaxPending;
    o.PublishAsync.StallWait = 10'000;  // a full window waits for acks rather than failing
    if (record_sequences) {
      o.PublishAsync.AckHandler = &RawClient::on_publish_ack;
      o.PublishAsync.AckHandlerClosure = this;
    } else {
      o.PublishAsync.ErrHandler = &RawClient::on_publish_error;
      o.PublishAsync.ErrHandlerClosure = this;
    }
    jsCtx* js = nullptr;
    check(natsConnection_JetStream(&js, nc_.get(), &o), "creating the JetStream context");
    js_.reset(js);
  }

  natsConnection* connection() { return nc_.get(); }
  jsCtx* js() { return js_.get(); }

  void purge() {
    jsErrCode code{};
    check(js_PurgeStream(js_.get(), stream_.c_str(), nullptr, &code), "purging " + stream_, code);
  }

  std::uint64_t message_count() {
    jsStreamInfo* si = nullptr;
    jsErrCode code{};
    check(js_GetStreamInfo(&si, js_.get(), stream_.c_str(), nullptr, &code), "reading " + stream_, code);
    StreamInfoPtr info(si);
    return info->State.Msgs;
  }

  // Every message in flight at once (up to MaxPending), then wait for all acks.
  void publish_async(const std::vector<RawMessage>& messages, Clock::time_point deadline) {
    for (const auto& m : messages) {
      check_deadline(deadline, "raw async publish");
      jsPubOptions po = pub_options(m);
      if (m.expected_last_subject_sequence.empty()) {
        check(js_PublishAsync(js_.get(), m.subject.c_str(), m.data.data(), static_cast<int>(m.data.size()), &po),
              "async publish on " + m.subject);
        continue;
      }
      natsMsg* msg = nullptr;
      check(natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.data.data(), static_cast<int>(m.data.size())),
            "message for " + m.subject);
      natsStatus st = natsMsgHeader_Set(msg, "Nats-Expected-Last-Subject-Sequence",
                                        m.expected_last_subject_sequence.c_str());
      if (st == NATS_OK) st = js_PublishMsgAsync(js_.get(), &msg, &po);  // takes the message on success
      natsMsg_Destroy(msg);
      check(st, "async publish on " + m.subject);
    }
    jsPubOptions wait;
    check(jsPubOptions_Init(&wait), "publish options");
    wait.MaxWait = ms_left(deadline);
    check(js_PublishAsyncComplete(js_.get(), &wait), "waiting for async publish acks");
    std::lock_guard lock(mu_);
    require(publish_errors_ == 0, "raw: " + std::to_string(publish_errors_) + " async publishes failed, first: " +
                                      first_publish_error_);
  }

  // The stream sequence of the last acknowledged async publish on `subject` (record_sequences).
  std::uint64_t sequence_of(const std::string& subject) {
    std::lock_guard lock(mu_);
    const auto it = sequences_.find(subject);
    require(it != sequences_.end(), "raw: no publish acknowledged on " + subject);
    return it->second;
  }

  // One publish at a time, each waiting for its ack.
  void publish_each(const std::vector<RawMessage>& messages, Clock::time_point deadline) {
    for (const auto& m : messages) {
      check_deadline(deadline, "raw publish");
      jsPubOptions po = pub_options(m);
      jsPubAck* ack = nullptr;
      jsErrCode code{};
      check(js_Publish(&ack, js_.get(), m.subject.c_str(), m.data.data(), static_cast<int>(m.data.size()), &po,
                       &code),
            "publish on " + m.subject, code);
      jsPubAck_Destroy(ack);
    }
  }

  // A handle on an existing bucket (each thread of a multi-threaded raw round opens its own).
  KvPtr open_kv(const std::string& bucket) {
    kvStore* kv = nullptr;
    check(js_KeyValue(&kv, js_.get(), bucket.c_str()), "opening bucket " + bucket);
    return KvPtr(kv);
  }

  // A pull subscription bound to an existing durable consumer.
  SubscriptionPtr bind(const std::string& consumer, const std::string& filter) {
    jsSubOptions so;
    check(jsSubOptions_Init(&so), "subscribe options");
    so.Stream = stream_.c_str();
    so.Consumer = consumer.c_str();
    natsSubscription* sub = nullptr;
    jsErrCode code{};
    check(js_PullSubscribe(&sub, js_.get(), filter.c_str(), consumer.c_str(), nullptr, &so, &code),
          "binding to consumer " + consumer, code);
    return SubscriptionPtr(sub);
  }

  // Fetch batches and ack each message until n were acked; the final flush makes the server
  // hold every ack (they are plain publishes) before the clock stops.
  std::size_t drain(natsSubscription* sub, std::size_t n, Clock::time_point deadline) {
    std::size_t done = 0;
    while (done < n) {
      check_deadline(deadline, "raw drain (" + std::to_string(done) + " of " + std::to_string(n) + " acked)");
      MsgList got;
      jsErrCode code{};
      const natsStatus s =
          natsSubscription_Fetch(&got.list, sub, kFetchBatch, std::min<std::int64_t>(1000, ms_left(deadline)), &code);
      if (s == NATS_TIMEOUT) continue;
      check(s, "fetch", code);
      for (int i = 0; i < got.list.Count; ++i) check(natsMsg_Ack(got.list.Msgs[i], nullptr), "ack");
      done += static_cast<std::size_t>(got.list.Count);
    }
    check(natsConnection_FlushTimeout(nc_.get(), ms_left(deadline)), "flushing acks");
    return done;
  }

 private:
  jsPubOptions pub_options(const RawMessage& m) const {
    // The headers of RawMessage (the Nats-Expected-Last-Subject-Sequence header is set on
    // the message itself, see publish_async).
    jsPubOptions po;
    check(jsPubOptions_Init(&po), "publish options");
    if (!m.id.empty()) po.MsgId = m.id.c_str();
    if (m.expect_stream) po.ExpectStream = stream_.c_str();
    return po;
  }

  static void on_publish_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<RawClient*>(closure);
    if (pae) on_publish_error(js, pae, closure);
    if (pa) {
      std::lock_guard lock(self->mu_);
      self->sequences_[natsMsg_GetSubject(msg)] = pa->Sequence;
    }
    natsMsg_Destroy(msg);
  }

  static void on_publish_error(jsCtx*, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<RawClient*>(closure);
    std::lock_guard lock(self->mu_);
    if (self->publish_errors_++ == 0) self->first_publish_error_ = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
  }

  std::string stream_;
  ConnectionPtr nc_;
  JsPtr js_;
  std::mutex mu_;  // the ack and error handlers run on a nats.c thread
  std::size_t publish_errors_ = 0;
  std::string first_publish_error_;
  std::unordered_map<std::string, std::uint64_t> sequences_;
};

// ---- omniq ---------------------------------------------------------------------------------

asio::awaitable<void> enqueue_each(omniq::TaskQueue& queue, std::vector<Task> tasks, Clock::time_point deadline) {
  for (auto& task : tasks) {
    check_deadline(deadline, "omniq enqueue");
    co_await queue.async_enqueue(std::move(task));
  }
}

// A batch of leases, then all their acks in flight together (each awaits the server's
// confirmation), then the next batch.
asio::awaitable<std::size_t> dequeue_and_ack(omniq::TaskQueue& queue, std::size_t n, Clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  // Built outside the co_await: g++ 12 rejects a braced list there ("array used as initializer").
  const std::vector<std::string> queues{kQueue};
  std::size_t done = 0;
  while (done < n) {
    check_deadline(deadline, "omniq drain (" + std::to_string(done) + " of " + std::to_string(n) + " acked)");
    std::vector<omniq::Lease> leases = co_await queue.async_dequeue_batch(queues, kFetchBatch, 1s);
    if (leases.empty()) continue;
    using AckOp = decltype(asio::co_spawn(ex, leases.front().async_ack(), asio::deferred));
    std::vector<AckOp> acks;
    acks.reserve(leases.size());
    for (auto& lease : leases) acks.push_back(asio::co_spawn(ex, lease.async_ack(), asio::deferred));
    auto [order, errors] = co_await asio::experimental::make_parallel_group(std::move(acks))
                               .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
    done += leases.size();
  }
  co_return done;
}

std::shared_ptr<spdlog::logger> quiet_logger() {
  // stdout carries only the JSON lines; omniq's warnings go to stderr.
  auto logger = std::make_shared<spdlog::logger>("omniq", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(spdlog::level::warn);
  return logger;
}

omniq::Config config_for(const std::string& url) {
  omniq::Config c;  // defaults otherwise: what a user gets
  c.servers = {url};
  // OMNIQ_BENCH_SEND_ASAP=0 measures the throughput setting (nats.c coalesces writes).
  if (const char* v = std::getenv("OMNIQ_BENCH_SEND_ASAP"); v && std::string(v) == "0") c.send_asap = false;
  return c;
}

// omniq's side: a backend on its own io thread; the benchmark thread waits for each coroutine
// as a synchronous caller would.
class OmniqClient {
 public:
  explicit OmniqClient(const std::string& url) : backend_(config_for(url), quiet_logger()) {
    backend_.connect_sync();
  }

  omniq::TaskQueue& queue() { return backend_.task_queue(); }
  omniq::ResultStore& results() { return backend_.result_store(); }
  omniq::ScheduleStore& schedules() { return backend_.schedule_store(); }
  omniq::EventLog& events() { return backend_.event_log(); }
  omniq::NatsBackend& backend() { return backend_; }
  const omniq::Config& config() const { return backend_.config(); }

  template <class T>
  T run(asio::awaitable<T> op, Clock::time_point deadline, const std::string& what) {
    auto result = asio::co_spawn(backend_.get_executor(), std::move(op), asio::use_future);
    if (result.wait_until(deadline) == std::future_status::timeout) {
      // Closing fails every pending request, which ends the coroutine.
      backend_.close_sync();
      result.wait_for(10s);
      throw BenchError("omniq: " + what + " did not finish within the scenario's time limit");
    }
    return result.get();
  }

 private:
  omniq::NatsBackend backend_;
};

// ---- scenarios -----------------------------------------------------------------------------

// The omniq part a scenario exercises, and so the stream both sides use.
enum class Part { tasks, results, schedules, events };

std::string stream_of(const omniq::Config& c, Part part) {
  switch (part) {
    case Part::tasks: return c.tasks_stream.name;
    case Part::results: return "KV_" + c.results_bucket.name;
    case Part::schedules: return "KV_" + c.schedules_bucket.name;
    case Part::events: return c.events_stream.name;
  }
  return {};
}

// One server per scenario, shared by both sides. omniq creates the stream or bucket (and, for
// dequeue_ack, the queue's consumers); raw uses the same ones, so both see the same settings.
struct Bench {
  omniq::LocalServer server;
  OmniqClient omniq;
  RawClient raw;
  Clock::time_point deadline;

  Bench(Clock::time_point deadline_, Part part)
      : omniq(server.url()), raw(server.url(), stream_of(omniq.config(), part)), deadline(deadline_) {
    switch (part) {
      case Part::tasks: omniq.run(omniq.queue().async_ensure(), deadline, "ensure"); break;
      case Part::results: omniq.run(omniq.results().async_ensure(), deadline, "ensure"); break;
      case Part::schedules: omniq.run(omniq.schedules().async_ensure(), deadline, "ensure"); break;
      case Part::events: omniq.run(omniq.events().async_ensure(), deadline, "ensure"); break;
    }
  }

  // Every round starts from an empty stream.
  void reset() {
    raw.purge();
    expect_stored(0, "purge");
  }

  // Publishes are acked once stored, acks processed in order; allow a moment regardless.
  void expect_stored(std::uint64_t expected, const std::string& after) {
    std::uint64_t got = raw.message_count();
    for (int i = 0; i < 100 && got != expected; ++i) {
      std::this_thread::sleep_for(20ms);
      got = raw.message_count();
    }
    require(got == expected, "stream holds " + std::to_string(got) + " messages after " + after + ", expected " +
                                 std::to_string(expected));
  }

  std::vector<RawMessage> raw_messages(std::size_t n) { return as_raw(omniq.config(), make_tasks(n)); }
};

// Seconds for one round of n operations; preparation and checks are outside the clock.
using Round = std::function<double(Bench&, std::size_t n)>;

// A context figure measured in the same rounds, printed as "<name>_per_s" and "<name>_rounds".
struct Extra {
  std::string name;
  Round round;
};

std::size_t task_bytes() { return omniq::encode(make_tasks(1).front()).size(); }

struct Scenario {
  std::string name;
  std::size_t n;
  Round omniq_round;
  Round raw_round;
  std::function<void(Bench&)> setup = [](Bench&) {};
  Part part = Part::tasks;
  std::function<std::size_t()> bytes = task_bytes;  // size of one encoded value, for the line
  std::vector<Extra> extras{};
};

double enqueue_batch_omniq(Bench& b, std::size_t n) {
  b.reset();
  auto tasks = make_tasks(n);
  const double s = seconds([&] {
    auto ids = b.omniq.run(b.omniq.queue().async_enqueue_batch(std::move(tasks)), b.deadline, "enqueue_batch");
    require(ids.size() == n, "omniq: enqueue_batch returned " + std::to_string(ids.size()) + " ids");
  });
  b.expect_stored(n, "omniq enqueue_batch");
  return s;
}

double enqueue_batch_raw(Bench& b, std::size_t n) {
  b.reset();
  auto messages = b.raw_messages(n);
  const double s = seconds([&] { b.raw.publish_async(messages, b.deadline); });
  b.expect_stored(n, "raw async publish");
  return s;
}

double enqueue_single_omniq(Bench& b, std::size_t n) {
  b.reset();
  auto tasks = make_tasks(n);
  const double s = seconds(
      [&] { b.omniq.run(enqueue_each(b.omniq.queue(), std::move(tasks), b.deadline), b.deadline, "enqueue"); });
  b.expect_stored(n, "omniq enqueue");
  return s;
}

double enqueue_single_raw(Bench& b, std::size_t n) {
  b.reset();
  auto messages = b.raw_messages(n);
  const double s = seconds([&] { b.raw.publish_each(messages, b.deadline); });
  b.expect_stored(n, "raw publish");
  return s;
}

double dequeue_ack_omniq(Bench& b, std::size_t n) {
  b.reset();
  b.omniq.run(b.omniq.queue().async_enqueue_batch(make_tasks(n)), b.deadline, "prefill");
  b.expect_stored(n, "omniq prefill");
  std::size_t acked = 0;
  double s = 0;
  {
    // A worker of its own for this round: its lane watchers keep pulls open and prefetch on
    // the queue's consumer, which the raw rounds also use, so they must end with the round.
    OmniqClient worker(b.server.url());
    s = seconds([&] { acked = worker.run(dequeue_and_ack(worker.queue(), n, b.deadline), b.deadline, "drain"); });
  }
  require(acked == n, "omniq: drained " + std::to_string(acked) + " of " + std::to_string(n));
  b.expect_stored(0, "omniq drain");
  return s;
}

double dequeue_ack_raw(Bench& b, std::size_t n) {
  b.reset();
  b.raw.publish_async(b.raw_messages(n), b.deadline);  // the same bytes omniq enqueues
  b.expect_stored(n, "raw prefill");
  const auto& c = b.omniq.config();
  const std::string band(omniq::detail::band_for(0));
  auto sub = b.raw.bind(omniq::detail::consumer_name(c, kQueue, band), omniq::detail::lane_filter(c, kQueue, band));
  std::size_t acked = 0;
  const double s = seconds([&] { acked = b.raw.drain(sub.get(), n, b.deadline); });
  require(acked == n, "raw: drained " + std::to_string(acked) + " of " + std::to_string(n));
  b.expect_stored(0, "raw drain");
  return s;
}

// A work-queue stream allows no overlapping consumers, so raw binds to the durable consumer
// omniq creates for the queue's normal band (explicit ack, filter omniq.tasks.default.normal.*).
void create_consumers(Bench& b) {
  b.omniq.run(b.omniq.queue().async_get_queue_size(kQueue), b.deadline, "creating the queue's consumers");
}

// ---- results, schedules, events --------------------------------------------------------------

constexpr std::size_t kValueBytes = 256;     // target size of an encoded result, schedule or event
constexpr std::size_t kSetWindow = 4096;     // omniq result sets in flight (as raw's MaxPending)
constexpr std::size_t kGetCoroutines = 64;   // omniq gets in flight (issue 4)
constexpr std::size_t kBaseGetKeys = 10'000; // results prefilled before the gets
constexpr std::size_t kScheduleWriters = 32; // schedules, one per omniq writer coroutine
constexpr std::size_t kBaseScheduleN = 20'000;
constexpr std::size_t kBaseEventN = 100'000;
constexpr std::size_t kEventChunk = 4096;    // the chunked omniq variant of event_log
constexpr std::size_t kRawThreads = 8;       // the multi-threaded raw context figures
const std::string kWorker = "bench-worker";

// n split over `parts` workers: the share of worker i.
std::size_t share(std::size_t n, std::size_t parts, std::size_t i) { return n / parts + (i < n % parts ? 1 : 0); }

// Runs make(i) for every i in [0, count) as coroutines at once and waits for all of them; the
// first failure is rethrown once every one has ended.
template <class MakeWorker>
asio::awaitable<void> in_parallel(std::size_t count, MakeWorker make) {
  auto ex = co_await asio::this_coro::executor;
  using Op = decltype(asio::co_spawn(ex, make(std::size_t{0}), asio::deferred));
  std::vector<Op> ops;
  ops.reserve(count);
  for (std::size_t i = 0; i < count; ++i) ops.push_back(asio::co_spawn(ex, make(i), asio::deferred));
  auto [order, errors] = co_await asio::experimental::make_parallel_group(std::move(ops))
                             .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Runs body(i) for every i in [0, count) on threads of its own; the first failure is rethrown
// once every thread has ended.
void on_threads(std::size_t count, const std::function<void(std::size_t)>& body) {
  std::vector<std::exception_ptr> errors(count);
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    threads.emplace_back([&, i] {
      try {
        body(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// -- results

omniq::TaskResult bench_result(const std::string& pad) {
  return omniq::TaskResult::success(omniq::new_uuid(), nlohmann::json(pad));
}

// Fresh results (new task ids), padded up to kValueBytes encoded.
std::vector<omniq::TaskResult> make_results(std::size_t n) {
  const std::size_t base = omniq::encode(bench_result("")).size();
  const std::string pad(base < kValueBytes ? kValueBytes - base : 0, 'x');
  std::vector<omniq::TaskResult> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(bench_result(pad));
  return out;
}

// A result as ResultStore::set puts it: the encoded result on $KV.<bucket>.<task id>, no headers.
std::vector<RawMessage> as_raw(const omniq::Config& c, const std::vector<omniq::TaskResult>& results) {
  std::vector<RawMessage> out;
  out.reserve(results.size());
  for (const auto& r : results) out.push_back({"$KV." + c.results_bucket.name + "." + r.task_id, "", omniq::encode(r)});
  return out;
}

// Sets results[next++] until none is left: kSetWindow of these keep that many sets in flight.
asio::awaitable<void> set_worker(omniq::ResultStore& store, std::vector<omniq::TaskResult>& results,
                                 std::atomic<std::size_t>& next, Clock::time_point deadline) {
  for (std::size_t i = next++; i < results.size(); i = next++) {
    check_deadline(deadline, "omniq result set");
    co_await store.async_set(std::move(results[i]));
  }
}

asio::awaitable<void> set_all(omniq::ResultStore& store, std::vector<omniq::TaskResult> results,
                              Clock::time_point deadline) {
  std::atomic<std::size_t> next{0};
  const std::size_t window = std::min(kSetWindow, results.size());
  co_await in_parallel(window, [&](std::size_t) { return set_worker(store, results, next, deadline); });
}

double result_set_omniq(Bench& b, std::size_t n) {
  b.reset();
  auto results = make_results(n);
  const double s = seconds(
      [&] { b.omniq.run(set_all(b.omniq.results(), std::move(results), b.deadline), b.deadline, "result set"); });
  b.expect_stored(n, "omniq result set");
  return s;
}

double result_set_raw(Bench& b, std::size_t n) {
  b.reset();
  auto messages = as_raw(b.omniq.config(), make_results(n));
  const double s = seconds([&] { b.raw.publish_async(messages, b.deadline); });
  b.expect_stored(n, "raw async put");
  return s;
}

// The gets of a result_get round: `keys` prefilled (untimed) and the random order of the n
// gets, the same sequence for every round and both sides.
struct GetPlan {
  std::vector<std::string> keys;
  std::vector<std::uint32_t> order;
};

GetPlan prefill_results(Bench& b, std::size_t n, std::size_t keys) {
  b.reset();
  auto results = make_results(keys);
  GetPlan plan;
  plan.keys.reserve(keys);
  for (const auto& r : results) plan.keys.push_back(r.task_id);
  b.raw.publish_async(as_raw(b.omniq.config(), results), b.deadline);
  b.expect_stored(keys, "prefilling " + std::to_string(keys) + " results");
  std::mt19937 rng(20'240'501);
  std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(keys - 1));
  plan.order.resize(n);
  for (auto& i : plan.order) i = pick(rng);
  return plan;
}

// Gets plan.order[begin, end) one after another, each awaited.
asio::awaitable<void> get_worker(omniq::ResultStore& store, const GetPlan& plan, std::size_t begin, std::size_t end,
                                 Clock::time_point deadline) {
  for (std::size_t i = begin; i < end; ++i) {
    check_deadline(deadline, "omniq result get");
    std::string key = plan.keys[plan.order[i]];
    auto result = co_await store.async_get(std::move(key));
    if (!result) throw BenchError("omniq: no result for " + plan.keys[plan.order[i]]);
  }
}

asio::awaitable<void> get_all(omniq::ResultStore& store, const GetPlan& plan, Clock::time_point deadline) {
  const std::size_t n = plan.order.size();
  const std::size_t workers = std::min(kGetCoroutines, n);
  co_await in_parallel(workers, [&](std::size_t w) {
    const std::size_t begin = w * (n / workers) + std::min(w, n % workers);
    return get_worker(store, plan, begin, begin + share(n, workers, w), deadline);
  });
}

double result_get_omniq(Bench& b, std::size_t n, std::size_t keys) {
  const GetPlan plan = prefill_results(b, n, keys);
  return seconds([&] { b.omniq.run(get_all(b.omniq.results(), plan, b.deadline), b.deadline, "result get"); });
}

// kvStore_Get of plan.order[begin, end), blocking, one after another.
void raw_gets(kvStore* kv, const GetPlan& plan, std::size_t begin, std::size_t end, Clock::time_point deadline) {
  for (std::size_t i = begin; i < end; ++i) {
    check_deadline(deadline, "raw kvStore_Get");
    const std::string& key = plan.keys[plan.order[i]];
    kvEntry* e = nullptr;
    const natsStatus s = kvStore_Get(&e, kv, key.c_str());
    if (s != NATS_OK) check(s, "kvStore_Get of " + key);
    KvEntryPtr entry(e);
    require(kvEntry_ValueLen(e) > 0, "raw: empty value for " + key);
  }
}

double result_get_raw(Bench& b, std::size_t n, std::size_t keys) {
  const GetPlan plan = prefill_results(b, n, keys);
  KvPtr kv = b.raw.open_kv(b.omniq.config().results_bucket.name);
  return seconds([&] { raw_gets(kv.get(), plan, 0, n, b.deadline); });
}

// kRawThreads threads, each with its own kvStore handle on the raw connection.
double result_get_raw_threads(Bench& b, std::size_t n, std::size_t keys) {
  const GetPlan plan = prefill_results(b, n, keys);
  std::vector<KvPtr> kvs;
  for (std::size_t t = 0; t < kRawThreads; ++t) kvs.push_back(b.raw.open_kv(b.omniq.config().results_bucket.name));
  return seconds([&] {
    on_threads(kRawThreads, [&](std::size_t t) {
      const std::size_t begin = t * (n / kRawThreads) + std::min(t, n % kRawThreads);
      raw_gets(kvs[t].get(), plan, begin, begin + share(n, kRawThreads, t), b.deadline);
    });
  });
}

std::size_t result_bytes() { return omniq::encode(make_results(1).front()).size(); }

// -- schedules

omniq::Schedule bench_schedule(const std::string& pad) {
  return omniq::Schedule::from_interval(std::chrono::minutes(1), "bench.noop", nlohmann::json::array({pad}));
}

// Fresh schedules (new ids), padded up to kValueBytes encoded.
std::vector<omniq::Schedule> make_schedules(std::size_t n) {
  const std::size_t base = omniq::encode(bench_schedule("")).size();
  const std::string pad(base < kValueBytes ? kValueBytes - base : 0, 'x');
  std::vector<omniq::Schedule> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(bench_schedule(pad));
  return out;
}

std::size_t schedule_bytes() { return omniq::encode(make_schedules(1).front()).size(); }

asio::awaitable<std::vector<omniq::ScheduleRecord>> create_all(omniq::ScheduleStore& store,
                                                               std::vector<omniq::Schedule> schedules) {
  std::vector<omniq::ScheduleRecord> out;
  for (auto& s : schedules) {
    omniq::Schedule copy = s;
    const std::uint64_t revision = co_await store.async_create_schedule(std::move(copy));
    out.push_back({std::move(s), revision});
  }
  co_return out;
}

// `count` compare-and-swap updates of one schedule, each from the revision the last returned.
asio::awaitable<void> update_worker(omniq::ScheduleStore& store, omniq::Schedule schedule, std::uint64_t revision,
                                    std::size_t count, Clock::time_point deadline) {
  for (std::size_t i = 0; i < count; ++i) {
    check_deadline(deadline, "omniq schedule update");
    omniq::Schedule copy = schedule;
    const auto next = co_await store.async_update_schedule(std::move(copy), revision);
    if (!next)
      throw BenchError("omniq: update_schedule of " + schedule.id + " at revision " + std::to_string(revision) +
                       " lost a race it cannot have had");
    revision = *next;
  }
}

asio::awaitable<void> update_all(omniq::ScheduleStore& store, const std::vector<omniq::ScheduleRecord>& records,
                                 std::size_t n, Clock::time_point deadline) {
  co_await in_parallel(records.size(), [&](std::size_t w) {
    return update_worker(store, records[w].schedule, records[w].revision, share(n, records.size(), w), deadline);
  });
}

double schedule_update_omniq(Bench& b, std::size_t n) {
  b.reset();
  auto& store = b.omniq.schedules();
  const auto records = b.omniq.run(create_all(store, make_schedules(kScheduleWriters)), b.deadline, "create_schedule");
  const double s = seconds([&] { b.omniq.run(update_all(store, records, n, b.deadline), b.deadline, "update_schedule"); });
  b.expect_stored(kScheduleWriters, "omniq schedule updates");  // history 1: the latest of each
  return s;
}

// A schedule as the raw side keeps it: key, encoded value (the bytes omniq stores), revision.
struct RawSchedule {
  std::string key;
  std::string data;
  std::uint64_t revision = 0;
};

std::vector<RawSchedule> create_raw_schedules(Bench& b, kvStore* kv) {
  b.reset();
  std::vector<RawSchedule> out;
  for (const auto& s : make_schedules(kScheduleWriters)) {
    RawSchedule r{s.id, omniq::encode(s)};
    check(kvStore_Create(&r.revision, kv, r.key.c_str(), r.data.data(), static_cast<int>(r.data.size())),
          "kvStore_Create of " + r.key);
    out.push_back(std::move(r));
  }
  return out;
}

// `count` kvStore_Update calls, round-robin over `mine`, each from the revision the last returned.
void raw_updates(kvStore* kv, std::vector<RawSchedule*> mine, std::size_t count, Clock::time_point deadline) {
  for (std::size_t i = 0; i < count; ++i) {
    check_deadline(deadline, "raw kvStore_Update");
    RawSchedule& r = *mine[i % mine.size()];
    std::uint64_t revision = 0;
    const natsStatus s =
        kvStore_Update(&revision, kv, r.key.c_str(), r.data.data(), static_cast<int>(r.data.size()), r.revision);
    if (s != NATS_OK) check(s, "kvStore_Update of " + r.key + " at revision " + std::to_string(r.revision));
    r.revision = revision;
  }
}

double schedule_update_raw(Bench& b, std::size_t n) {
  KvPtr kv = b.raw.open_kv(b.omniq.config().schedules_bucket.name);
  auto schedules = create_raw_schedules(b, kv.get());
  std::vector<RawSchedule*> all;
  for (auto& r : schedules) all.push_back(&r);
  const double s = seconds([&] { raw_updates(kv.get(), all, n, b.deadline); });
  b.expect_stored(kScheduleWriters, "raw schedule updates");
  return s;
}

// kRawThreads threads, each with its own kvStore handle and its own share of the schedules.
double schedule_update_raw_threads(Bench& b, std::size_t n) {
  std::vector<KvPtr> kvs;
  for (std::size_t t = 0; t < kRawThreads; ++t) kvs.push_back(b.raw.open_kv(b.omniq.config().schedules_bucket.name));
  auto schedules = create_raw_schedules(b, kvs.front().get());
  const std::size_t threads = std::min(kRawThreads, schedules.size());
  std::vector<std::vector<RawSchedule*>> mine(threads);
  for (std::size_t i = 0; i < schedules.size(); ++i) mine[i % threads].push_back(&schedules[i]);
  const double s = seconds([&] {
    on_threads(threads, [&](std::size_t t) { raw_updates(kvs[t].get(), mine[t], share(n, threads, t), b.deadline); });
  });
  b.expect_stored(kScheduleWriters, "raw schedule updates on threads");
  return s;
}

// -- events

// The events of n/4 tasks' lifecycles (enqueued, dequeued, executing, completed), each message
// padded so the event encodes to kValueBytes.
std::vector<omniq::TaskEvent> make_events(std::size_t n) {
  std::vector<omniq::TaskEvent> out;
  out.reserve(n);
  std::string task;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 4 == 0) task = omniq::new_uuid();
    omniq::TaskEvent e;
    switch (i % 4) {
      case 0: e = omniq::events::enqueued(task, kQueue); break;
      case 1: e = omniq::events::dequeued(task, kQueue, kWorker); break;
      case 2: e = omniq::events::executing(task, kWorker); break;
      default: e = omniq::events::completed(task, std::chrono::microseconds(1500), kWorker); break;
    }
    e.message = e.message.value_or("");
    const std::size_t base = omniq::encode(e).size();
    if (base < kValueBytes) e.message->append(kValueBytes - base, 'x');
    out.push_back(std::move(e));
  }
  return out;
}

std::size_t event_bytes() { return omniq::encode(make_events(1).front()).size(); }

// An event as EventLog publishes it: on {events_subject}.{type}.{task id}, no headers.
std::vector<RawMessage> as_raw(const omniq::Config& c, const std::vector<omniq::TaskEvent>& events) {
  std::vector<RawMessage> out;
  out.reserve(events.size());
  for (const auto& e : events)
    out.push_back({c.events_subject + "." + std::string(omniq::to_string(e.event_type)) + "." + e.task_id, "",
                   omniq::encode(e)});
  return out;
}

double event_log_omniq(Bench& b, std::size_t n) {
  b.reset();
  auto events = make_events(n);
  const double s =
      seconds([&] { b.omniq.run(b.omniq.events().async_log_events(std::move(events)), b.deadline, "log_events"); });
  b.expect_stored(n, "omniq log_events");
  return s;
}

asio::awaitable<void> log_in_chunks(omniq::EventLog& log, std::vector<omniq::TaskEvent> events,
                                    Clock::time_point deadline) {
  for (std::size_t begin = 0; begin < events.size(); begin += kEventChunk) {
    check_deadline(deadline, "omniq log_events in chunks");
    const auto end = events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), begin + kEventChunk));
    std::vector<omniq::TaskEvent> chunk(std::make_move_iterator(events.begin() + static_cast<std::ptrdiff_t>(begin)),
                                        std::make_move_iterator(end));
    co_await log.async_log_events(std::move(chunk));
  }
}

// log_events called once per kEventChunk events (the caller's batches), each awaited in turn.
double event_log_omniq_chunked(Bench& b, std::size_t n) {
  b.reset();
  auto events = make_events(n);
  const double s = seconds([&] {
    b.omniq.run(log_in_chunks(b.omniq.events(), std::move(events), b.deadline), b.deadline, "log_events in chunks");
  });
  b.expect_stored(n, "omniq log_events in chunks");
  return s;
}

double event_log_raw(Bench& b, std::size_t n) {
  b.reset();
  auto messages = as_raw(b.omniq.config(), make_events(n));
  const double s = seconds([&] { b.raw.publish_async(messages, b.deadline); });
  b.expect_stored(n, "raw async publish of events");
  return s;
}

// ---- the worker loop ----------------------------------------------------------------------------
// worker_noop: tasks/s through the whole loop (dequeue, a no-op handler, result stored, events
// dequeued/executing/completed logged, ack) by omniq's Worker, against raw nats.c doing the
// same NATS work with the same number of tasks in flight: fetch up to `concurrency`, claim each
// task (a KV create of its pending result, expected last subject sequence 0) and wait, publish
// the start events and wait, publish the results (a KV update on the claim's sequence) and
// completion events and wait, then ack each (plain publishes, as the Worker's acks; one flush
// at the end). The claim is what makes a task id run once (docs/worker.md); "raw_no_claim" is
// the same loop without it, printed for context.

constexpr std::size_t kWorkerConcurrency = 64;

void create_worker_parts(Bench& b) {
  b.omniq.run(b.omniq.results().async_ensure(), b.deadline, "creating the results bucket");
  b.omniq.run(b.omniq.events().async_ensure(), b.deadline, "creating the events stream");
  create_consumers(b);
}

asio::awaitable<nlohmann::json> noop_handler(omniq::TaskContext&, const nlohmann::json&, const nlohmann::json&) {
  co_return nullptr;
}

double worker_omniq(Bench& b, std::size_t n, std::size_t concurrency) {
  b.reset();
  b.omniq.run(b.omniq.queue().async_enqueue_batch(make_tasks(n)), b.deadline, "prefill");
  b.expect_stored(n, "omniq prefill");
  double s = 0;
  {
    OmniqClient client(b.server.url());
    omniq::Worker worker(client.backend(), omniq::WorkerOptions{.queues = {kQueue}, .concurrency = concurrency,
                                                                .worker_id = kWorker});
    worker.handle("bench.noop", noop_handler);
    const auto start = Clock::now();
    auto served = asio::co_spawn(client.backend().get_executor(), worker.async_run(), asio::use_future);
    while (worker.stats().completed < n) {
      if (Clock::now() >= b.deadline) {
        worker.stop();
        served.wait_for(10s);
        throw BenchError("omniq: worker completed " + std::to_string(worker.stats().completed) + " of " +
                         std::to_string(n) + " within the scenario's time limit");
      }
      std::this_thread::sleep_for(500us);
    }
    s = std::chrono::duration<double>(Clock::now() - start).count();
    worker.stop();
    served.get();
  }
  b.expect_stored(0, "omniq worker drain");
  return s;
}

std::vector<RawMessage> raw_start_events(const omniq::Config& c, const Task& t) {
  omniq::TaskEvent dequeued = omniq::events::dequeued(t.id, t.queue_name, kWorker);
  omniq::TaskEvent executing = omniq::events::executing(t.id, kWorker);
  executing.queue_name = t.queue_name;
  executing.details["attempt"] = 1;
  return {{c.events_subject + ".dequeued." + t.id, "", omniq::encode(dequeued)},
          {c.events_subject + ".executing." + t.id, "", omniq::encode(executing)}};
}

omniq::TaskResult raw_result(omniq::TaskResult r, std::uint64_t sequence) {
  r.worker_id = kWorker;
  r.started_at = omniq::now();
  r.metadata["message"] = sequence;
  r.metadata["attempts"] = 1;
  return r;
}

RawMessage raw_claim(const omniq::Config& c, const Task& t, std::uint64_t sequence) {
  const omniq::TaskResult pending =
      raw_result(omniq::TaskResult{.task_id = t.id, .status = omniq::ResultStatus::pending}, sequence);
  return {"$KV." + c.results_bucket.name + "." + t.id, "", omniq::encode(pending), "0"};
}

// The result (a compare-and-set on the claim's revision when `claimed`) and the completed event.
std::vector<RawMessage> raw_outcome(const omniq::Config& c, const Task& t, std::uint64_t sequence,
                                    std::optional<std::uint64_t> claimed) {
  omniq::TaskResult r = raw_result(omniq::TaskResult::success(t.id, nullptr), sequence);
  r.execution_time = std::chrono::microseconds(5);
  omniq::TaskEvent done = omniq::events::completed(t.id, *r.execution_time, kWorker);
  done.queue_name = t.queue_name;
  // The Worker records its outcome event's deduplication id in the result and sends it.
  std::string dedup = "outcome-" + t.id + "-" + std::to_string(sequence) + "-" + std::to_string(claimed.value_or(0));
  r.metadata["outcome_event"] = dedup;
  return {{"$KV." + c.results_bucket.name + "." + t.id, "", omniq::encode(r),
           claimed ? std::to_string(*claimed) : std::string()},
          {c.events_subject + ".completed." + t.id, std::move(dedup), omniq::encode(done)}};
}

double worker_raw(Bench& b, std::size_t n, std::size_t concurrency, bool claim) {
  b.reset();
  b.raw.publish_async(b.raw_messages(n), b.deadline);
  b.expect_stored(n, "raw prefill");
  const auto& c = b.omniq.config();
  RawClient raw(b.server.url(), c.tasks_stream.name, /*send_asap=*/true, /*record_sequences=*/claim);
  const std::string band(omniq::detail::band_for(0));
  auto sub = raw.bind(omniq::detail::consumer_name(c, kQueue, band), omniq::detail::lane_filter(c, kQueue, band));
  std::size_t done = 0;
  const double s = seconds([&] {
    while (done < n) {
      check_deadline(b.deadline, "raw worker (" + std::to_string(done) + " of " + std::to_string(n) + ")");
      MsgList got;
      jsErrCode code{};
      const natsStatus st = natsSubscription_Fetch(&got.list, sub.get(), static_cast<int>(concurrency), 1000, &code);
      if (st == NATS_TIMEOUT) continue;
      check(st, "fetch", code);
      std::vector<Task> tasks;
      std::vector<std::uint64_t> sequences;
      std::vector<RawMessage> claims, start, outcome;
      for (int i = 0; i < got.list.Count; ++i) {
        natsMsg* m = got.list.Msgs[i];
        tasks.push_back(omniq::decode_task(std::string_view(natsMsg_GetData(m), natsMsg_GetDataLength(m))));
        jsMsgMetaData* meta = nullptr;
        check(natsMsg_GetMetaData(&meta, m), "message metadata");
        sequences.push_back(meta->Sequence.Stream);
        jsMsgMetaData_Destroy(meta);
        if (claim) claims.push_back(raw_claim(c, tasks.back(), sequences.back()));
        for (auto& e : raw_start_events(c, tasks.back())) start.push_back(std::move(e));
      }
      if (claim) raw.publish_async(claims, b.deadline);
      raw.publish_async(start, b.deadline);
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        std::optional<std::uint64_t> claimed;
        if (claim) claimed = raw.sequence_of(claims[i].subject);
        for (auto& e : raw_outcome(c, tasks[i], sequences[i], claimed)) outcome.push_back(std::move(e));
      }
      raw.publish_async(outcome, b.deadline);
      for (int i = 0; i < got.list.Count; ++i) check(natsMsg_Ack(got.list.Msgs[i], nullptr), "ack");
      done += static_cast<std::size_t>(got.list.Count);
    }
    check(natsConnection_FlushTimeout(raw.connection(), ms_left(b.deadline)), "flushing acks");
  });
  b.expect_stored(0, "raw worker drain");
  return s;
}

// worker_memory: the worker's resident memory while it drains many tasks (prefilled in chunks,
// so the prefill itself holds little). Printed as samples at each tenth of the drain.
std::size_t rss_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  std::size_t kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %zu kB", &kib) == 1) break;
  std::fclose(f);
  return kib;
}

int run_worker_memory(std::size_t n, Clock::duration limit) {
  try {
    Bench b(Clock::now() + limit, Part::tasks);
    create_worker_parts(b);
    constexpr std::size_t kChunk = 20'000;
    for (std::size_t done = 0; done < n; done += kChunk)
      b.omniq.run(b.omniq.queue().async_enqueue_batch(make_tasks(std::min(kChunk, n - done))), b.deadline, "prefill");
    b.expect_stored(n, "prefill");
    const std::size_t before = rss_kib();
    OmniqClient client(b.server.url());
    omniq::Worker worker(client.backend(), omniq::WorkerOptions{.queues = {kQueue},
                                                                .concurrency = kWorkerConcurrency,
                                                                .worker_id = kWorker});
    worker.handle("bench.noop", noop_handler);
    std::vector<std::size_t> samples;
    std::size_t peak = rss_kib();
    const auto start = Clock::now();
    auto served = asio::co_spawn(client.backend().get_executor(), worker.async_run(), asio::use_future);
    std::size_t next_sample = n / 10;
    for (;;) {
      const std::size_t completed = worker.stats().completed;
      peak = std::max(peak, rss_kib());
      while (completed >= next_sample && samples.size() < 10) {
        samples.push_back(rss_kib());
        next_sample += n / 10;
      }
      if (completed >= n) break;
      check_deadline(b.deadline, "worker_memory (" + std::to_string(completed) + " of " + std::to_string(n) + ")");
      std::this_thread::sleep_for(20ms);
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    worker.stop();
    served.get();
    std::string at;
    for (std::size_t i = 0; i < samples.size(); ++i) at += (i ? ", " : "") + std::to_string(samples[i] / 1024);
    std::printf("{\"scenario\": \"worker_memory\", \"n\": %zu, \"omniq_per_s\": %.0f, \"rss_mib_before\": %zu, "
                "\"rss_mib_peak\": %zu, \"rss_mib_each_tenth\": [%s]}\n",
                n, static_cast<double>(n) / s, before / 1024, peak / 1024, at.c_str());
    std::fflush(stdout);
    return 0;
  } catch (const std::exception& e) {
    std::printf("{\"scenario\": \"worker_memory\", \"n\": %zu, \"error\": %s}\n", n,
                nlohmann::json(std::string(e.what())).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    std::fflush(stdout);
    return 1;
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string rates_json(const std::vector<double>& rates) {
  std::string out = "[";
  for (std::size_t i = 0; i < rates.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.0f", i ? ", " : "", rates[i]);
    out += buf;
  }
  return out + "]";
}

// Rounds alternate which side goes first, so neither always gets the warmer server; context
// figures (extras) run after both sides in every round.
void run_scenario(const Scenario& sc, Clock::duration limit) {
  Bench bench(Clock::now() + limit, sc.part);
  sc.setup(bench);
  std::vector<double> omniq_rates, raw_rates;
  std::vector<std::vector<double>> extra_rates(sc.extras.size());
  const double n = static_cast<double>(sc.n);
  for (int r = 0; r < kRounds; ++r) {
    auto omniq_round = [&] { omniq_rates.push_back(n / sc.omniq_round(bench, sc.n)); };
    auto raw_round = [&] { raw_rates.push_back(n / sc.raw_round(bench, sc.n)); };
    if (r % 2 == 0) {
      omniq_round();
      raw_round();
    } else {
      raw_round();
      omniq_round();
    }
    for (std::size_t e = 0; e < sc.extras.size(); ++e) extra_rates[e].push_back(n / sc.extras[e].round(bench, sc.n));
  }
  const double x = median(omniq_rates);
  const double y = median(raw_rates);
  std::string extras;
  for (std::size_t e = 0; e < sc.extras.size(); ++e) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f", median(extra_rates[e]));
    extras += ", \"" + sc.extras[e].name + "_per_s\": " + buf + ", \"" + sc.extras[e].name +
              "_rounds\": " + rates_json(extra_rates[e]);
  }
  std::printf(
      "{\"scenario\": \"%s\", \"n\": %zu, \"omniq_per_s\": %.0f, \"raw_per_s\": %.0f, \"ratio\": %.3f, "
      "\"omniq_rounds\": %s, \"raw_rounds\": %s%s, \"bytes\": %zu}\n",
      sc.name.c_str(), sc.n, x, y, x / y, rates_json(omniq_rates).c_str(), rates_json(raw_rates).c_str(),
      extras.c_str(), sc.bytes());
  std::fflush(stdout);
}

// A count from the environment: `fallback` when unset or empty; `allow_zero` lets 0 through.
std::size_t count_from_env(const char* name, std::size_t fallback, bool allow_zero) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  try {
    std::size_t used = 0;
    const unsigned long long n = std::stoull(text, &used);
    if (used == std::string(text).size() && text[0] != '-' && (n > 0 || allow_zero))
      return static_cast<std::size_t>(n);
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(std::string(name) + " must be a " + (allow_zero ? "non-negative" : "positive") +
                              " integer, got \"" + text + "\"");
}

std::size_t scale_from_env() { return count_from_env("OMNIQ_BENCH_N", kBaseN, false); }

// OMNIQ_BENCH_MEMORY_N: tasks drained by worker_memory (0 skips it); default 1 M.
std::size_t memory_n_from_env() { return count_from_env("OMNIQ_BENCH_MEMORY_N", kBaseMemoryN, true); }

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 0;
  std::size_t memory_n = 0;
  try {
    n = scale_from_env();
    memory_n = memory_n_from_env();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "omniq_bench: %s\n", e.what());
    return 2;
  }
  const std::size_t single_n = std::max<std::size_t>(1, n * kBaseSingleN / kBaseN);
  const auto limit = std::chrono::duration_cast<Clock::duration>(
      kScenarioLimit * std::max(1.0, static_cast<double>(n) / static_cast<double>(kBaseN)));

  auto scaled = [n](std::size_t base) { return std::max<std::size_t>(1, n * base / kBaseN); };
  const std::size_t get_keys = scaled(kBaseGetKeys);
  const std::size_t schedule_n = std::max(kScheduleWriters, scaled(kBaseScheduleN));

  const std::vector<Scenario> scenarios = {
      {"enqueue_batch", n, enqueue_batch_omniq, enqueue_batch_raw},
      {"enqueue_single", single_n, enqueue_single_omniq, enqueue_single_raw},
      {"dequeue_ack", n, dequeue_ack_omniq, dequeue_ack_raw, create_consumers},
      {.name = "result_set", .n = n, .omniq_round = result_set_omniq, .raw_round = result_set_raw,
       .part = Part::results, .bytes = result_bytes},
      {.name = "result_get",
       .n = n,
       .omniq_round = [get_keys](Bench& b, std::size_t k) { return result_get_omniq(b, k, get_keys); },
       .raw_round = [get_keys](Bench& b, std::size_t k) { return result_get_raw(b, k, get_keys); },
       .part = Part::results,
       .bytes = result_bytes,
       .extras = {{"raw_8_threads",
                   [get_keys](Bench& b, std::size_t k) { return result_get_raw_threads(b, k, get_keys); }}}},
      {.name = "schedule_update", .n = schedule_n, .omniq_round = schedule_update_omniq,
       .raw_round = schedule_update_raw, .part = Part::schedules, .bytes = schedule_bytes,
       .extras = {{"raw_8_threads", schedule_update_raw_threads}}},
      {.name = "event_log", .n = scaled(kBaseEventN), .omniq_round = event_log_omniq, .raw_round = event_log_raw,
       .part = Part::events, .bytes = event_bytes,
       .extras = {{"omniq_chunks_" + std::to_string(kEventChunk), event_log_omniq_chunked}}},
      {.name = "worker_noop",
       .n = scaled(kBaseWorkerN),
       .omniq_round = [](Bench& b, std::size_t k) { return worker_omniq(b, k, kWorkerConcurrency); },
       .raw_round = [](Bench& b, std::size_t k) { return worker_raw(b, k, kWorkerConcurrency, true); },
       .setup = create_worker_parts,
       .extras = {{"raw_no_claim",
                   [](Bench& b, std::size_t k) { return worker_raw(b, k, kWorkerConcurrency, false); }}}},
      {.name = "worker_noop_c1",
       .n = scaled(kBaseWorkerC1N),
       .omniq_round = [](Bench& b, std::size_t k) { return worker_omniq(b, k, 1); },
       .raw_round = [](Bench& b, std::size_t k) { return worker_raw(b, k, 1, true); },
       .setup = create_worker_parts,
       .extras = {{"raw_no_claim", [](Bench& b, std::size_t k) { return worker_raw(b, k, 1, false); }}}},
  };

  std::set<std::string> wanted(argv + 1, argv + argc);
  for (const auto& name : wanted) {
    if (name == "worker_memory") continue;
    if (std::none_of(scenarios.begin(), scenarios.end(), [&](const Scenario& s) { return s.name == name; })) {
      std::string known;
      for (const auto& s : scenarios) known += " " + s.name;
      std::fprintf(stderr, "omniq_bench: unknown scenario \"%s\"; known:%s\n", name.c_str(), known.c_str());
      return 2;
    }
  }

  int status = 0;
  for (const auto& sc : scenarios) {
    if (!wanted.empty() && !wanted.count(sc.name)) continue;
    try {
      run_scenario(sc, limit);
    } catch (const std::exception& e) {
      std::printf("{\"scenario\": \"%s\", \"n\": %zu, \"error\": %s}\n", sc.name.c_str(), sc.n,
                  nlohmann::json(std::string(e.what())).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      std::fflush(stdout);
      status = 1;
    }
  }
  if (wanted.empty() || wanted.count("worker_memory")) {
    const auto memory_limit = std::chrono::duration_cast<Clock::duration>(
        kScenarioLimit * std::max(1.0, static_cast<double>(memory_n) / 20'000.0));
    if (memory_n > 0 && run_worker_memory(memory_n, memory_limit) != 0) status = 1;
  }
  return status;
}
