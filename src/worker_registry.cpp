#include "omniq/detail/ensure.hpp"
#include "omniq/detail/worker_registry.hpp"

#include <algorithm>

#include "omniq/backend.hpp"
#include "omniq/detail/kv.hpp"

namespace omniq::detail {

KvBucket WorkerRegistry::bucket() const {
  return KvBucket(backend_.connection(), backend_.config().workers_bucket.name);
}

asio::awaitable<void> WorkerRegistry::ensure() {
  co_await ensure_bucket_once(provisioned_, backend_.connection(), backend_.config().workers_bucket);
}

Duration WorkerRegistry::beat_interval() const {
  return std::chrono::duration_cast<Duration>(backend_.config().workers_bucket.ttl) / 3;
}

asio::awaitable<void> WorkerRegistry::beat(const std::string& worker_id, const nlohmann::json& info) {
  co_await ensure();
  co_await bucket().put(worker_id, info.dump());
}

asio::awaitable<void> WorkerRegistry::leave(const std::string& worker_id) {
  co_await ensure();
  co_await bucket().erase(worker_id);
}

asio::awaitable<bool> WorkerRegistry::alive(const std::string& worker_id) {
  co_await ensure();
  co_return (co_await bucket().get(worker_id, Served::by_leader)).has_value();
}

}  // namespace omniq::detail
