#include "omniq/detail/kv.hpp"

#include "omniq/detail/jetstream.hpp"
#include "omniq/error.hpp"

namespace omniq::detail {

namespace {
// A KV delete or purge is stored as a marker message with this header.
bool is_marker(const std::vector<Header>& headers) {
  for (const auto& h : headers)
    if (h.name == "KV-Operation" && (h.value == "DEL" || h.value == "PURGE")) return true;
  return false;
}
}  // namespace

KvBucket::KvBucket(Connection& connection, std::string bucket)
    : connection_(connection), bucket_(std::move(bucket)), stream_("KV_" + bucket_) {}

asio::awaitable<std::optional<KvEntry>> KvBucket::get(std::string key) {
  auto stored = co_await direct_get_last(connection_, stream_, subject(key));
  if (!stored || is_marker(stored->headers)) co_return std::nullopt;
  co_return KvEntry{std::move(key), std::move(stored->data), stored->sequence};
}

asio::awaitable<std::uint64_t> KvBucket::put(std::string key, std::string value) {
  auto ack = co_await js_publish(connection_, subject(key), std::move(value), {}, "storing " + key + " in " + bucket_);
  co_return ack->sequence;
}

asio::awaitable<std::optional<std::uint64_t>> KvBucket::update(std::string key, std::string value,
                                                               std::uint64_t expected) {
  std::vector<Header> headers{{"Nats-Expected-Last-Subject-Sequence", std::to_string(expected)}};
  auto ack = co_await js_publish(connection_, subject(key), std::move(value), std::move(headers),
                                 "updating " + key + " in " + bucket_, /*allow_conflict=*/true);
  if (!ack) co_return std::nullopt;
  co_return ack->sequence;
}

asio::awaitable<std::optional<std::uint64_t>> KvBucket::create(std::string key, std::string value) {
  std::string copy = value;
  auto created = co_await update(key, std::move(copy), 0);
  if (created) co_return created;
  // The subject has history: creating is still allowed over a delete marker.
  auto last = co_await direct_get_last(connection_, stream_, subject(key));
  if (!last || !is_marker(last->headers)) co_return std::nullopt;
  co_return co_await update(std::move(key), std::move(value), last->sequence);
}

asio::awaitable<void> KvBucket::erase(std::string key) {
  std::vector<Header> headers{{"KV-Operation", "PURGE"}, {"Nats-Rollup", "sub"}};
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

}  // namespace omniq::detail
