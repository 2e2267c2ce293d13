// The result store: task results in a KV bucket with a bucket TTL.
#include "omniq/detail/connection.hpp"
#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/ensure.hpp"
#include "omniq/result_store.hpp"

#include "omniq/detail/model_bucket.hpp"
#include "omniq/error.hpp"
#include "omniq/validation.hpp"

namespace omniq {

namespace {
// Results by task id. A stored value that is another task's result is refused like one that
// does not decode.
struct ResultTraits {
  static constexpr std::string_view kind = "result";
  static std::string label(const TaskResult& result) { return "result of task " + result.task_id; }
  static TaskResult decode(std::string_view text, const std::string& key) {
    TaskResult result = decode_result(text);
    if (result.task_id != key) throw_error(errc::decode_error, "it holds the result of task " + result.task_id);
    return result;
  }
};
using Results = detail::ModelBucket<TaskResult, ResultTraits>;

Results results_of(NatsBackend& backend) {
  return Results(detail::connection_of(backend), backend.config().results_bucket);
}
}  // namespace

asio::awaitable<void> ResultStore::ensure() {
  co_await detail::ensure_bucket_once(provisioned_, backend_.connection(), backend_.config().results_bucket);
}

asio::awaitable<BucketReport> ResultStore::info() {
  co_await ensure();
  co_return co_await detail::bucket_report(backend_.connection(), backend_.config().results_bucket.name);
}

asio::awaitable<std::uint64_t> ResultStore::set(TaskResult result) {
  auto results = results_of(backend_);
  std::string value = results.checked_value(result);
  co_await ensure();
  co_return co_await results.kv().put(result.task_id, std::move(value));
}

asio::awaitable<std::optional<std::uint64_t>> ResultStore::create(TaskResult result) {
  auto results = results_of(backend_);
  std::string value = results.checked_value(result);
  co_await ensure();
  co_return co_await results.kv().create(result.task_id, std::move(value), detail::Served::by_leader);
}

asio::awaitable<std::optional<std::uint64_t>> ResultStore::update(TaskResult result, std::uint64_t expected_revision) {
  auto results = results_of(backend_);
  std::string value = results.checked_value(result);
  co_await ensure();
  co_return co_await results.kv().update(result.task_id, std::move(value), expected_revision);
}

asio::awaitable<std::optional<ResultRecord>> ResultStore::read(std::string task_id, bool by_leader) {
  const detail::Served served = by_leader ? detail::Served::by_leader : detail::Served::by_any_replica;
  validate_token("task_id", task_id);
  co_await ensure();
  auto stored = co_await results_of(backend_).read(std::move(task_id), served);
  if (!stored) co_return std::nullopt;
  co_return ResultRecord{std::move(stored->model), stored->revision};
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
  co_return co_await results_of(backend_).remove(std::move(task_id));
}

asio::awaitable<std::vector<TaskResult>> ResultStore::list(std::optional<ResultStatus> status,
                                                                   std::size_t limit, std::size_t offset) {
  co_await ensure();
  const Timestamp t = now();
  std::vector<TaskResult> out;
  std::size_t matched = 0;
  for (auto& stored : co_await results_of(backend_).list(&backend_.log())) {
    if ((status && stored.model.status != *status) || stored.model.is_expired(t)) continue;
    if (matched++ >= offset && out.size() < limit) out.push_back(std::move(stored.model));
  }
  co_return out;
}

asio::awaitable<std::size_t> ResultStore::cleanup_expired() {
  co_await ensure();
  auto results = results_of(backend_);
  const Timestamp t = now();
  std::size_t removed = 0;
  // What cannot be read is not ours to judge (list reports it).
  for (auto& stored : co_await results.list(nullptr)) {
    if (!stored.model.is_expired(t)) continue;
    co_await results.kv().erase(stored.key);
    ++removed;
  }
  co_return removed;
}

asio::awaitable<std::optional<TaskResult>> ResultStore::wait_for_result(std::string task_id, Duration timeout) {
  validate_token("task_id", task_id);
  co_await ensure();
  auto results = results_of(backend_);
  // A pending result is a worker's claim: the watch goes on to what it stores next. A value
  // that cannot be read ends the wait, and the decode below says why; one that can is
  // decoded once, here.
  std::optional<TaskResult> final_result;
  std::function<bool(const detail::KvEntry&)> is_final = [&results, &final_result](const detail::KvEntry& entry) {
    try {
      TaskResult r = results.decode(entry);
      if (r.status == ResultStatus::pending) return false;
      final_result = std::move(r);
    } catch (const Error&) {
      final_result.reset();
    }
    return true;
  };
  auto entry = co_await results.kv().wait_for(task_id, timeout, std::move(is_final));
  if (!entry) co_return std::nullopt;
  if (final_result) co_return std::move(final_result);
  co_return results.decode(*entry);
}

}  // namespace omniq
