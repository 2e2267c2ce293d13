// Provisioning of the four storage parts; their operations live in their own files.
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/layout.hpp"
#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"

namespace omniq {

using asio::use_awaitable;

namespace detail {
asio::awaitable<StreamReport> stream_report(Connection& connection, std::string name) {
  auto read = [name](natsConnection*, jsCtx* js) { return read_stream(js, name); };
  co_return co_await connection.async_blocking(std::move(read), use_awaitable);
}
}  // namespace detail

namespace {
asio::awaitable<BucketReport> bucket_report(NatsBackend& backend, std::string name) {
  auto read = [name](natsConnection*, jsCtx* js) { return detail::read_bucket(js, name); };
  co_return co_await backend.connection().async_blocking(std::move(read), use_awaitable);
}
}  // namespace

asio::awaitable<void> EventLog::ensure() {
  auto create = [spec = detail::events_stream_spec(backend_.config())](natsConnection*, jsCtx* js) {
    detail::ensure_stream(js, spec);
  };
  co_await provisioned_.ensure(backend_.connection(), std::move(create));
}

asio::awaitable<StreamReport> EventLog::info() {
  co_await ensure();
  co_return co_await detail::stream_report(backend_.connection(), backend_.config().events_stream.name);
}

asio::awaitable<void> ResultStore::ensure() {
  auto create = [settings = backend_.config().results_bucket](natsConnection*, jsCtx* js) {
    detail::ensure_bucket(js, settings);
  };
  co_await provisioned_.ensure(backend_.connection(), std::move(create));
}

asio::awaitable<BucketReport> ResultStore::info() {
  co_await ensure();
  co_return co_await bucket_report(backend_, backend_.config().results_bucket.name);
}

asio::awaitable<void> ScheduleStore::ensure() {
  auto create = [settings = backend_.config().schedules_bucket](natsConnection*, jsCtx* js) {
    detail::ensure_bucket(js, settings);
  };
  co_await provisioned_.ensure(backend_.connection(), std::move(create));
}

asio::awaitable<BucketReport> ScheduleStore::info() {
  co_await ensure();
  co_return co_await bucket_report(backend_, backend_.config().schedules_bucket.name);
}

}  // namespace omniq
