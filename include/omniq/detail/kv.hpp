// A NATS KV bucket over the bridge's non-blocking requests: puts are publishes to
// $KV.<bucket>.<key> (compare-and-swap with Nats-Expected-Last-Subject-Sequence), gets are
// direct gets, listing is one ephemeral-consumer scan. Many operations can be in flight at
// once from coroutines, unlike nats.c's kvStore_* calls, which block a thread each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/time.hpp"

namespace omniq::detail {

struct KvEntry {
  std::string key{};
  std::string value{};
  std::uint64_t revision = 0;
};

// Throws payload_too_large when a value of `size` bytes is over the bucket's max_value_size
// (when set, > 0) or else the server's max_payload; `what` names the value ("result of task x").
void check_value_size(const std::string& what, std::size_t size, std::int64_t bucket_limit, std::int64_t server_limit);

class KvBucket {
 public:
  KvBucket(Connection& connection, std::string bucket);

  const std::string& name() const noexcept { return bucket_; }
  const std::string& stream() const noexcept { return stream_; }
  std::string subject(const std::string& key) const { return "$KV." + bucket_ + "." + key; }

  // The current value, or nullopt when the key is missing or deleted.
  asio::awaitable<std::optional<KvEntry>> get(std::string key);
  // Stores `value`; returns the new revision.
  asio::awaitable<std::uint64_t> put(std::string key, std::string value);
  // Stores `value` only if the key's revision is `expected` (0: the key has never been
  // written); nullopt when another writer got there first.
  asio::awaitable<std::optional<std::uint64_t>> update(std::string key, std::string value, std::uint64_t expected);
  // Stores `value` only if the key does not exist (or was deleted); nullopt when it exists.
  asio::awaitable<std::optional<std::uint64_t>> create(std::string key, std::string value);
  // Deletes the key (a delete marker; history is purged).
  asio::awaitable<void> erase(std::string key);
  // Every live key and value matching `key_filter` (NATS wildcards; ">" for all).
  asio::awaitable<std::vector<KvEntry>> list(std::string key_filter = ">");
  // Waits for `key` to hold a value (returns at once if it does); nullopt after `timeout`.
  // With `after_revision`, waits for a value stored after that revision instead.
  // A watch: an ephemeral consumer on the key's subject, long-polled; it is recreated after
  // a server restart or reconnect, starting from the key's last value (or just after
  // `after_revision`), so no update is missed.
  asio::awaitable<std::optional<KvEntry>> wait_for(std::string key, Duration timeout, std::uint64_t after_revision = 0);

 private:
  Connection& connection_;
  std::string bucket_;
  std::string stream_;
};

}  // namespace omniq::detail
