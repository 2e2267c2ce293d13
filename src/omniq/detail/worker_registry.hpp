// Live workers: each running Worker keeps one key in the workers bucket (omniq_workers),
// rewritten at least every ttl / 3; the bucket's TTL removes the key of a worker that stopped
// writing it (killed, partitioned), so "the key exists" means "the worker is alive". A claim
// held by a worker without a key may be taken over (docs/reliability.md).
#pragma once

#include <string>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "omniq/detail/kv.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/time.hpp"

namespace omniq {
class NatsBackend;
}

namespace omniq::detail {

class WorkerRegistry {
 public:
  explicit WorkerRegistry(NatsBackend& backend) : backend_(backend) {}

  // Creates or checks the bucket (once).
  asio::awaitable<void> ensure();
  // How often a live worker must write its key.
  Duration beat_interval() const;
  // Writes the worker's key (`info` as its value).
  asio::awaitable<void> beat(const std::string& worker_id, const nlohmann::json& info);
  // Removes the worker's key: it stopped and holds nothing any more.
  asio::awaitable<void> leave(const std::string& worker_id);
  // Whether `worker_id` has a key, read through the bucket's leader.
  asio::awaitable<bool> alive(const std::string& worker_id);

 private:
  KvBucket bucket() const;

  NatsBackend& backend_;
  Provisioned provisioned_;
};

}  // namespace omniq::detail
