// A NATS KV bucket over the bridge's non-blocking requests: puts are publishes to
// $KV.<bucket>.<key> (compare-and-swap with Nats-Expected-Last-Subject-Sequence), gets are
// direct gets, listing is one ephemeral-consumer scan. Many operations can be in flight at
// once from coroutines, unlike nats.c's kvStore_* calls, which block a thread each.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/jetstream.hpp"
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

// Decodes a value read from a bucket with `decode(std::string_view)`, which throws
// omniq::Error for what it cannot take; any such failure becomes errc::decode_error naming
// the key and the bucket ("<what> <key> in bucket <bucket> cannot be read: ..."). Any client
// allowed to publish on a bucket's subjects may have put anything there.
template <class Decode>
auto decode_entry(const KvEntry& entry, std::string_view what, std::string_view bucket, Decode&& decode) {
  try {
    return decode(std::string_view(entry.value));
  } catch (const Error& e) {
    throw_error(errc::decode_error, std::string(what) + " " + entry.key + " in bucket " + std::string(bucket) +
                                        " cannot be read: " + e.what());
  }
}

// Where a read is served: by any replica (a direct get, cheap, may lag behind the last
// acknowledged write), or by the stream's leader (sees every acknowledged write; for
// decisions that gate an ack, and for the revision a compare-and-set is made against).
enum class Served { by_any_replica, by_leader };

class KvBucket {
 public:
  KvBucket(Connection& connection, std::string bucket);

  const std::string& name() const noexcept { return bucket_; }
  const std::string& stream() const noexcept { return stream_; }
  std::string subject(const std::string& key) const { return "$KV." + bucket_ + "." + key; }

  // The current value, or nullopt when the key is missing or deleted.
  asio::awaitable<std::optional<KvEntry>> get(std::string key, Served served = Served::by_any_replica);
  // Stores `value`; returns the new revision.
  asio::awaitable<std::uint64_t> put(std::string key, std::string value);
  // Stores `value` only if the key's revision is `expected` (0: the key has never been
  // written); nullopt when another writer got there first.
  asio::awaitable<std::optional<std::uint64_t>> update(std::string key, std::string value, std::uint64_t expected);
  // Stores `value` only if the key does not exist (or was deleted); nullopt when it exists.
  // A key with history is looked at (for a delete marker) as `served` says.
  asio::awaitable<std::optional<std::uint64_t>> create(std::string key, std::string value,
                                                       Served served = Served::by_any_replica);
  // Deletes the key (a delete marker; history is purged).
  asio::awaitable<void> erase(std::string key);
  // Every live key and value matching `key_filter` (NATS wildcards; ">" for all).
  asio::awaitable<std::vector<KvEntry>> list(std::string key_filter = ">");
  // Waits for `key` to hold a value `accept` takes (any value when `accept` is empty; returns
  // at once if the current one is taken); nullopt after `timeout`. `accept` must not throw.
  // A watch: one ephemeral consumer on the key's subject, long-polled, delivering the key's
  // last value and then every change; it is recreated after a server restart or reconnect,
  // starting from the key's last value again, so no update is missed.
  asio::awaitable<std::optional<KvEntry>> wait_for(std::string key, Duration timeout,
                                                   std::function<bool(const KvEntry&)> accept = {});

 private:
  // The key's last message (a value or a delete marker), read as `served` says.
  asio::awaitable<std::optional<StoredMessage>> last(const std::string& key, Served served);

  Connection& connection_;
  std::string bucket_;
  std::string stream_;
};

}  // namespace omniq::detail
