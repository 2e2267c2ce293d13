// omniq's benchmark (DESIGN.md §6): each scenario does the same JetStream work through omniq's
// task queue and through raw nats.c calls, in one run on one local nats-server, and prints one
// JSON line with both medians and their ratio. A program, not a test (STYLE.md habit 7).
//
// Usage: omniq_bench [enqueue_batch] [enqueue_single] [dequeue_ack]   (none given: all)
// Environment: OMNIQ_BENCH_N scales every scenario (50000 gives the default sizes).
// Exit status: 0 when every scenario was measured, 1 when one printed an error line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
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
#include "omniq/local_server.hpp"
#include "omniq/models/task.hpp"
#include "omniq/task_queue.hpp"

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
constexpr std::size_t kBaseSingleN = 3'000;  // one round trip each: ~0.5 s per round
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

// A task as omniq would publish it, for the raw side.
struct RawMessage {
  std::string subject;
  std::string id;
  std::string data;
};

std::vector<RawMessage> as_raw(const omniq::Config& c, const std::vector<Task>& tasks) {
  std::vector<RawMessage> out;
  out.reserve(tasks.size());
  for (const auto& t : tasks)
    out.push_back({omniq::detail::task_subject(c, t.queue_name, omniq::detail::band_for(t.priority), t.id), t.id,
                   omniq::encode(t)});
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

struct MsgList {
  natsMsgList list{};
  ~MsgList() { natsMsgList_Destroy(&list); }
};

// The baseline: a connection of its own with nats.c's default options, doing by hand what
// omniq does for the same scenario.
class RawClient {
 public:
  RawClient(const std::string& url, std::string stream) : stream_(std::move(stream)) {
    natsConnection* nc = nullptr;
    check(natsConnection_ConnectTo(&nc, url.c_str()), "connecting to " + url);
    nc_.reset(nc);
    jsOptions o;
    check(jsOptions_Init(&o), "JetStream options");
    o.PublishAsync.MaxPending = kRawMaxPending;
    o.PublishAsync.StallWait = 10'000;  // a full window waits for acks rather than failing
    o.PublishAsync.ErrHandler = &RawClient::on_publish_error;
    o.PublishAsync.ErrHandlerClosure = this;
    jsCtx* js = nullptr;
    check(natsConnection_JetStream(&js, nc_.get(), &o), "creating the JetStream context");
    js_.reset(js);
  }

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
      check(js_PublishAsync(js_.get(), m.subject.c_str(), m.data.data(), static_cast<int>(m.data.size()), &po),
            "async publish on " + m.subject);
    }
    jsPubOptions wait;
    check(jsPubOptions_Init(&wait), "publish options");
    wait.MaxWait = ms_left(deadline);
    check(js_PublishAsyncComplete(js_.get(), &wait), "waiting for async publish acks");
    std::lock_guard lock(mu_);
    require(publish_errors_ == 0, "raw: " + std::to_string(publish_errors_) + " async publishes failed, first: " +
                                      first_publish_error_);
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
    // The same headers omniq sends: Nats-Msg-Id and Nats-Expected-Stream.
    jsPubOptions po;
    check(jsPubOptions_Init(&po), "publish options");
    po.MsgId = m.id.c_str();
    po.ExpectStream = stream_.c_str();
    return po;
  }

  static void on_publish_error(jsCtx*, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<RawClient*>(closure);
    std::lock_guard lock(self->mu_);
    if (self->publish_errors_++ == 0) self->first_publish_error_ = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
  }

  std::string stream_;
  ConnectionPtr nc_;
  JsPtr js_;
  std::mutex mu_;  // the error handler runs on a nats.c thread
  std::size_t publish_errors_ = 0;
  std::string first_publish_error_;
};

// ---- omniq ---------------------------------------------------------------------------------

asio::awaitable<void> enqueue_each(omniq::TaskQueue& queue, std::vector<Task> tasks, Clock::time_point deadline) {
  for (auto& task : tasks) {
    check_deadline(deadline, "omniq enqueue");
    co_await queue.enqueue(std::move(task));
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
    std::vector<omniq::Lease> leases = co_await queue.dequeue_batch(queues, kFetchBatch, 1s);
    if (leases.empty()) continue;
    using AckOp = decltype(asio::co_spawn(ex, leases.front().ack(), asio::deferred));
    std::vector<AckOp> acks;
    acks.reserve(leases.size());
    for (auto& lease : leases) acks.push_back(asio::co_spawn(ex, lease.ack(), asio::deferred));
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

// One server per scenario, shared by both sides. omniq creates the stream (and, for
// dequeue_ack, the queue's consumers); raw uses the same ones, so both see the same settings.
struct Bench {
  omniq::LocalServer server;
  OmniqClient omniq;
  RawClient raw;
  Clock::time_point deadline;

  explicit Bench(Clock::time_point deadline_)
      : omniq(server.url()), raw(server.url(), omniq.config().tasks_stream.name), deadline(deadline_) {
    omniq.run(omniq.queue().ensure(), deadline, "ensure");
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

struct Scenario {
  std::string name;
  std::size_t n;
  Round omniq_round;
  Round raw_round;
  std::function<void(Bench&)> setup = [](Bench&) {};
};

double enqueue_batch_omniq(Bench& b, std::size_t n) {
  b.reset();
  auto tasks = make_tasks(n);
  const double s = seconds([&] {
    auto ids = b.omniq.run(b.omniq.queue().enqueue_batch(std::move(tasks)), b.deadline, "enqueue_batch");
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
  b.omniq.run(b.omniq.queue().enqueue_batch(make_tasks(n)), b.deadline, "prefill");
  b.expect_stored(n, "omniq prefill");
  std::size_t acked = 0;
  const double s =
      seconds([&] { acked = b.omniq.run(dequeue_and_ack(b.omniq.queue(), n, b.deadline), b.deadline, "drain"); });
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
  b.omniq.run(b.omniq.queue().get_queue_size(kQueue), b.deadline, "creating the queue's consumers");
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

// Rounds alternate which side goes first, so neither always gets the warmer server.
void run_scenario(const Scenario& sc, Clock::duration limit) {
  Bench bench(Clock::now() + limit);
  sc.setup(bench);
  std::vector<double> omniq_rates, raw_rates;
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
  }
  const double x = median(omniq_rates);
  const double y = median(raw_rates);
  std::printf(
      "{\"scenario\": \"%s\", \"n\": %zu, \"omniq_per_s\": %.0f, \"raw_per_s\": %.0f, \"ratio\": %.3f, "
      "\"omniq_rounds\": %s, \"raw_rounds\": %s, \"bytes\": %zu}\n",
      sc.name.c_str(), sc.n, x, y, x / y, rates_json(omniq_rates).c_str(), rates_json(raw_rates).c_str(),
      omniq::encode(make_tasks(1).front()).size());
  std::fflush(stdout);
}

std::size_t scale_from_env() {
  const char* text = std::getenv("OMNIQ_BENCH_N");
  if (!text || !*text) return kBaseN;
  try {
    std::size_t used = 0;
    const unsigned long long n = std::stoull(text, &used);
    if (used == std::string(text).size() && n > 0) return static_cast<std::size_t>(n);
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(std::string("OMNIQ_BENCH_N must be a positive integer, got \"") + text + "\"");
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 0;
  try {
    n = scale_from_env();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "omniq_bench: %s\n", e.what());
    return 2;
  }
  const std::size_t single_n = std::max<std::size_t>(1, n * kBaseSingleN / kBaseN);
  const auto limit = std::chrono::duration_cast<Clock::duration>(
      kScenarioLimit * std::max(1.0, static_cast<double>(n) / static_cast<double>(kBaseN)));

  const std::vector<Scenario> scenarios = {
      {"enqueue_batch", n, enqueue_batch_omniq, enqueue_batch_raw},
      {"enqueue_single", single_n, enqueue_single_omniq, enqueue_single_raw},
      {"dequeue_ack", n, dequeue_ack_omniq, dequeue_ack_raw, create_consumers},
  };

  std::set<std::string> wanted(argv + 1, argv + argc);
  for (const auto& name : wanted) {
    if (std::none_of(scenarios.begin(), scenarios.end(), [&](const Scenario& s) { return s.name == name; })) {
      std::fprintf(stderr, "omniq_bench: unknown scenario \"%s\"; known: enqueue_batch enqueue_single dequeue_ack\n",
                   name.c_str());
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
  return status;
}
