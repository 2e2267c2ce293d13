// Lazily creates a storage part's streams or buckets on first use, once per backend.
#pragma once

#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/provisioned.hpp"
#include "omniq/reports.hpp"

namespace omniq::detail {

// The server's view of a stream or bucket (read on the blocking pool).
asio::awaitable<StreamReport> stream_report(Connection& connection, std::string name);
asio::awaitable<BucketReport> bucket_report(Connection& connection, std::string name);

// Creates or checks a bucket once per `provisioned` (`settings` must outlive the call).
asio::awaitable<void> ensure_bucket_once(Provisioned& provisioned, Connection& connection,
                                         const BucketSettings& settings);

// Unless creation already succeeded, runs `create(natsConnection*, jsCtx*)`, the callable
// `make()` returns, on the blocking pool. `make` is called only then: every operation of a
// part asks for its streams first, so the specs are not built on each call. Concurrent first
// callers may both run it: creation is idempotent on the server.
template <class Make>
asio::awaitable<void> ensure_once(Provisioned& provisioned, Connection& connection, Make make) {
  if (provisioned.done()) co_return;
  // Named, not a temporary inside co_await: g++ 12 mishandles such temporaries' lifetimes.
  auto work = [create = make()](natsConnection* nc, jsCtx* js) mutable {
    create(nc, js);
    return true;
  };
  co_await connection.async_blocking(std::move(work), asio::use_awaitable);
  provisioned.mark_done();
}

}  // namespace omniq::detail
