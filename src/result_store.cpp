// The result store: task results in a KV bucket with a bucket TTL.
#include "omniq/result_store.hpp"

#include "omniq/detail/kv.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

namespace {
detail::KvBucket bucket_of(NatsBackend& backend) {
  return detail::KvBucket(backend.connection(), backend.config().results_bucket.name);
}

// A stored result, or decode_error naming its key: any client allowed to publish on the
// bucket's subjects may have put something else there.
TaskResult decode_stored(const NatsBackend& backend, const detail::KvEntry& entry) {
  std::string problem;
  try {
    TaskResult result = decode_result(entry.value);
    if (result.task_id == entry.key) return result;
    problem = "it holds the result of task " + result.task_id;
  } catch (const Error& e) {
    problem = e.what();
  }
  throw_error(errc::decode_error, "result " + entry.key + " in bucket " + backend.config().results_bucket.name +
                                      " cannot be read: " + problem);
}
}  // namespace

asio::awaitable<void> ResultStore::ensure() {
  co_await detail::ensure_bucket_once(provisioned_, backend_.connection(), backend_.config().results_bucket);
}

asio::awaitable<BucketReport> ResultStore::info() {
  co_await ensure();
  co_return co_await detail::bucket_report(backend_.connection(), backend_.config().results_bucket.name);
}

std::string ResultStore::checked_value(const TaskResult& result) const {
  result.validate();
  std::string value = encode(result);
  detail::check_value_size("result of task " + result.task_id, value.size(), backend_.config().results_bucket.max_value_size,
                           backend_.connection().max_payload());
  return value;
}

asio::awaitable<std::uint64_t> ResultStore::set(TaskResult result) {
  std::string value = checked_value(result);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  co_return co_await bucket.put(result.task_id, std::move(value));
}

asio::awaitable<std::optional<std::uint64_t>> ResultStore::create(TaskResult result) {
  std::string value = checked_value(result);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  co_return co_await bucket.create(result.task_id, std::move(value));
}

asio::awaitable<std::optional<std::uint64_t>> ResultStore::update(TaskResult result, std::uint64_t expected_revision) {
  std::string value = checked_value(result);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  co_return co_await bucket.update(result.task_id, std::move(value), expected_revision);
}

asio::awaitable<std::optional<ResultRecord>> ResultStore::get_record(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  auto entry = co_await bucket.get(task_id);
  if (!entry) co_return std::nullopt;
  co_return ResultRecord{decode_stored(backend_, *entry), entry->revision};
}

asio::awaitable<std::optional<TaskResult>> ResultStore::get(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  auto entry = co_await bucket.get(task_id);
  if (!entry) co_return std::nullopt;
  TaskResult result = decode_stored(backend_, *entry);
  if (result.is_expired(now())) co_return std::nullopt;  // the result's own ttl, before the bucket's
  co_return result;
}

asio::awaitable<bool> ResultStore::delete_result(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  if (!co_await bucket.get(task_id)) co_return false;
  co_await bucket.erase(task_id);
  co_return true;
}

asio::awaitable<std::vector<TaskResult>> ResultStore::list_results(std::optional<ResultStatus> status,
                                                                   std::size_t limit, std::size_t offset) {
  co_await ensure();
  const Timestamp t = now();
  std::vector<TaskResult> out;
  std::size_t matched = 0;
  auto bucket = bucket_of(backend_);
  for (auto& entry : co_await bucket.list()) {
    std::optional<TaskResult> result;
    try {
      result = decode_stored(backend_, entry);
    } catch (const Error& e) {
      backend_.log().warn("omniq: skipping a stored value: {}", e.what());
      continue;
    }
    if ((status && result->status != *status) || result->is_expired(t)) continue;
    if (matched++ >= offset && out.size() < limit) out.push_back(std::move(*result));
  }
  co_return out;
}

asio::awaitable<std::size_t> ResultStore::cleanup_expired_results() {
  co_await ensure();
  auto bucket = bucket_of(backend_);
  const Timestamp t = now();
  std::size_t removed = 0;
  for (auto& entry : co_await bucket.list()) {
    std::optional<TaskResult> result;
    try {
      result = decode_stored(backend_, entry);
    } catch (const Error&) {
      continue;  // not ours to judge; list_results reports it
    }
    if (!result->is_expired(t)) continue;
    co_await bucket.erase(entry.key);
    ++removed;
  }
  co_return removed;
}

asio::awaitable<std::optional<TaskResult>> ResultStore::wait_for_result(std::string task_id, Duration timeout) {
  validate_token("task_id", task_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::uint64_t after = 0;
  for (;;) {
    const auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
    if (left <= Duration::zero()) co_return std::nullopt;
    auto entry = co_await bucket.wait_for(task_id, left, after);
    if (!entry) co_return std::nullopt;
    TaskResult result = decode_stored(backend_, *entry);
    if (result.status != ResultStatus::pending) co_return result;
    after = entry->revision;  // claimed by a worker: wait for what it stores next
  }
}

}  // namespace omniq
