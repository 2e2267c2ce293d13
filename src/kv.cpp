#include "omniq/detail/doorbell.hpp"
#include "omniq/detail/kv.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/jetstream.hpp"
#include "omniq/error.hpp"

namespace omniq::detail {

namespace {
// A KV delete or purge is stored as a marker message with this header.
bool is_marker(const Headers& headers) {
  for (const auto& h : headers)
    if (h.name == "KV-Operation" && (h.value == "DEL" || h.value == "PURGE")) return true;
  return false;
}
}  // namespace

void check_value_size(const std::string& what, std::size_t size, std::int64_t bucket_limit, std::int64_t server_limit) {
  const std::int64_t limit = bucket_limit > 0 ? bucket_limit : server_limit;
  if (limit > 0 && static_cast<std::int64_t>(size) > limit)
    throw_error(errc::payload_too_large, what + " is " + std::to_string(size) + " bytes, over the " +
                                             (bucket_limit > 0 ? "bucket's max_value_size" : "server's max_payload") +
                                             " of " + std::to_string(limit) + " bytes");
}

KvBucket::KvBucket(Connection& connection, std::string bucket)
    : connection_(connection), bucket_(std::move(bucket)), stream_("KV_" + bucket_) {}

asio::awaitable<std::optional<StoredMessage>> KvBucket::last(const std::string& key, Served served) {
  if (served == Served::by_leader) co_return co_await leader_get_last(connection_, stream_, subject(key));
  co_return co_await direct_get_last(connection_, stream_, subject(key));
}

asio::awaitable<std::optional<KvEntry>> KvBucket::get(std::string key, Served served) {
  std::optional<StoredMessage> stored = co_await last(key, served);
  if (!stored || is_marker(stored->headers)) co_return std::nullopt;
  co_return KvEntry{std::move(key), std::move(stored->data), stored->sequence};
}

asio::awaitable<std::uint64_t> KvBucket::put(std::string key, std::string value) {
  auto ack = co_await js_publish(connection_, subject(key), std::move(value), {}, "storing " + key + " in " + bucket_);
  co_return ack->sequence;
}

asio::awaitable<std::optional<std::uint64_t>> KvBucket::update(std::string key, std::string value,
                                                               std::uint64_t expected) {
  Headers headers{{"Nats-Expected-Last-Subject-Sequence", std::to_string(expected)}};
  auto ack = co_await js_publish(connection_, subject(key), std::move(value), std::move(headers),
                                 "updating " + key + " in " + bucket_, /*allow_conflict=*/true);
  if (!ack) co_return std::nullopt;
  co_return ack->sequence;
}

asio::awaitable<std::optional<std::uint64_t>> KvBucket::create(std::string key, std::string value, Served served) {
  std::string copy = value;
  auto created = co_await update(key, std::move(copy), 0);
  if (created) co_return created;
  // The subject has history: creating is still allowed over a delete marker.
  std::optional<StoredMessage> marker = co_await last(key, served);
  if (!marker || !is_marker(marker->headers)) co_return std::nullopt;
  co_return co_await update(std::move(key), std::move(value), marker->sequence);
}

asio::awaitable<void> KvBucket::erase(std::string key) {
  Headers headers{{"KV-Operation", "PURGE"}, {"Nats-Rollup", "sub"}};
  co_await js_publish(connection_, subject(key), std::string(), std::move(headers), "deleting " + key + " from " + bucket_);
}

asio::awaitable<std::vector<KvEntry>> KvBucket::list(std::string key_filter) {
  auto messages = co_await scan(connection_, stream_, "$KV." + bucket_ + "." + key_filter, /*last_per_subject=*/true);
  std::vector<KvEntry> out;
  const std::size_t prefix = 4 + bucket_.size() + 1;  // "$KV.<bucket>."
  for (auto& m : messages) {
    if (is_marker(m.headers) || m.subject.size() <= prefix) continue;
    out.push_back(KvEntry{m.subject.substr(prefix), std::move(m.data), m.stream_sequence});
  }
  co_return out;
}

asio::awaitable<std::optional<KvEntry>> KvBucket::wait_for(std::string key, Duration timeout,
                                                           std::function<bool(const KvEntry&)> accept) {
  using SteadyClock = std::chrono::steady_clock;
  const auto deadline = SteadyClock::now() + timeout;
  const std::string watched = subject(key);
  std::string consumer;  // empty: (re)create before the next pull
  std::optional<KvEntry> found;
  auto retry_pause = std::chrono::milliseconds(50);
  while (!found && SteadyClock::now() < deadline) {
    bool failed = false;
    try {
      if (consumer.empty()) {
        // The key's last value, then every change.
        ReaderOptions watch{.stream = stream_, .filter = watched, .from = ReadFrom::last_per_subject};
        const Reader reader = co_await create_reader(connection_, std::move(watch));
        consumer = reader.name;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) break;
      FetchRequest pull{.stream = stream_, .consumer = consumer, .batch = 1, .no_wait = false,
                        .expires = std::min(left, std::chrono::milliseconds(5000))};
      auto got = co_await connection_.async_fetch(std::move(pull), asio::use_awaitable);
      for (auto& m : got) {
        if (is_marker(m.headers)) continue;
        KvEntry entry{key, std::move(m.data), m.stream_sequence};
        if (!accept || accept(entry)) found = std::move(entry);
      }
    } catch (const Error& e) {
      // A restart loses the in-memory consumer and fails pulls while reconnecting: start over
      // from the key's last value, which is where the lost consumer stood. A refusal (closed,
      // bad key, permission) is not retried: waiting could only end in a silent timeout.
      if (e.kind() == errc::closed || e.kind() == errc::invalid_name || e.kind() == errc::permission_denied) throw;
      failed = true;
    }
    if (failed) {
      consumer.clear();
      asio::steady_timer pause(co_await asio::this_coro::executor, retry_pause);
      co_await pause.async_wait(asio::use_awaitable);
      retry_pause = std::min(retry_pause * 2, std::chrono::milliseconds(1000));
    }
  }
  if (!consumer.empty()) co_await delete_reader(connection_, stream_, consumer);  // it also expires by itself
  co_return found;
}

}  // namespace omniq::detail
