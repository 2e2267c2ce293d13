// What the server reports about a stream or bucket, read on the blocking pool.
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/ensure.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/detail/provisioning.hpp"

namespace omniq::detail {

asio::awaitable<StreamReport> stream_report(Connection& connection, std::string name) {
  auto read = [name](natsConnection*, jsCtx* js) { return read_stream(js, name); };
  co_return co_await connection.async_blocking(std::move(read), asio::use_awaitable);
}

asio::awaitable<BucketReport> bucket_report(Connection& connection, std::string name) {
  auto read = [name](natsConnection*, jsCtx* js) { return read_bucket(js, name); };
  co_return co_await connection.async_blocking(std::move(read), asio::use_awaitable);
}

asio::awaitable<void> ensure_bucket_once(Provisioned& provisioned, Connection& connection,
                                         const BucketSettings& settings) {
  auto make = [&settings] { return [settings](natsConnection*, jsCtx* js) { ensure_bucket(js, settings); }; };
  co_await ensure_once(provisioned, connection, std::move(make));
}

}  // namespace omniq::detail
