// The result store: task results in a KV bucket with a bucket TTL.
#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/ensure.hpp"
#include "omniq/result_store.hpp"

#include "omniq/detail/kv.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

namespace {
detail::KvBucket bucket_of(NatsBackend& backend) {
  return detail::KvBucket(detail::connection_of(backend), backend.config().results_bucket.name);
}

// A stored result, or decode_error naming its key: any client allowed to publish on the
// bucket's subjects may have put something else there.
TaskResult decode_stored(const NatsBackend& backend, const detail::KvEntry& entry) {
  return detail::decode_entry(entry, "result", backend.config().results_bucket.name, [&](std::string_view text) {
    TaskResult result = decode_result(text);
    if (result.task_id != entry.key) throw_error(errc::decode_error, "it holds the result of task " + result.task_id);
    return result;
  });
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
  co_return co_await bucket.create(result.task_id, std::move(value), detail::Served::by_leader);
}

asio::awaitable<std::optional<std::uint64_t>> ResultStore::update(TaskResult result, std::uint64_t expected_revision) {
  std::string value = checked_value(result);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  co_return co_await bucket.update(result.task_id, std::move(value), expected_revision);
}

asio::awaitable<std::optional<ResultRecord>> ResultStore::read(std::string task_id, bool by_leader) {
  const detail::Served served = by_leader ? detail::Served::by_leader : detail::Served::by_any_replica;
  validate_token("task_id", task_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  auto entry = co_await bucket.get(task_id, served);
  if (!entry) co_return std::nullopt;
  co_return ResultRecord{decode_stored(backend_, *entry), entry->revision};
}

asio::awaitable<std::optional<ResultRecord>> ResultStore::get_record(std::string task_id) {
  co_return co_await read(std::move(task_id), true);
}

asio::awaitable<std::optional<TaskResult>> ResultStore::get(std::string task_id) {
  auto record = co_await read(std::move(task_id), false);
  // The result's own ttl, before the bucket's.
  if (!record || record->result.is_expired(now())) co_return std::nullopt;
  co_return std::move(record->result);
}

asio::awaitable<bool> ResultStore::remove(std::string task_id) {
  validate_token("task_id", task_id);
  co_await ensure();
  auto bucket = bucket_of(backend_);
  if (!co_await bucket.get(task_id)) co_return false;
  co_await bucket.erase(task_id);
  co_return true;
}

asio::awaitable<std::vector<TaskResult>> ResultStore::list(std::optional<ResultStatus> status,
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

asio::awaitable<std::size_t> ResultStore::cleanup_expired() {
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
  // A pending result is a worker's claim: the watch goes on to what it stores next. A value
  // that cannot be read ends the wait, and decode_stored below says why; one that can is
  // decoded once, here.
  std::optional<TaskResult> final_result;
  std::function<bool(const detail::KvEntry&)> is_final = [this, &final_result](const detail::KvEntry& entry) {
    try {
      TaskResult r = decode_stored(backend_, entry);
      if (r.status == ResultStatus::pending) return false;
      final_result = std::move(r);
    } catch (const Error&) {
      final_result.reset();
    }
    return true;
  };
  auto entry = co_await bucket.wait_for(task_id, timeout, std::move(is_final));
  if (!entry) co_return std::nullopt;
  if (final_result) co_return std::move(final_result);
  co_return decode_stored(backend_, *entry);
}

}  // namespace omniq
