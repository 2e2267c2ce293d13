// One nats.c connection and its JetStream context, shared by every storage part of a
// NatsBackend. It offers two non-blocking primitives to coroutines:
//  - async_request: publish with a reply subject on one multiplexed inbox subscription and
//    complete when the reply arrives (JetStream publishes, KV puts/gets, JetStream API calls);
//  - async_blocking: run a blocking nats.c call on the connection's blocking pool.
// Every pending request is failed with errc::closed when the connection closes, and with
// errc::permission_denied when the server reports that the user may not publish its subject.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/logger.h>

#include "omniq/config.hpp"
#include "omniq/detail/bridge.hpp"
#include "omniq/detail/locked_shared_ptr.hpp"
#include "omniq/error.hpp"

// nats.c handle types, declared here so public headers do not include nats.h.
typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;

namespace omniq::detail {

struct Header {
  std::string name{};
  std::string value{};
};

// The headers of a request or a message, in order: the one type every message class
// (Request, Reply, JsMessage, StoredMessage) carries.
struct Headers : std::vector<Header> {
  using std::vector<Header>::vector;
  // The value of the first header named `name`, if any.
  std::optional<std::string_view> find(std::string_view name) const {
    for (const auto& h : *this)
      if (h.name == name) return h.value;
    return std::nullopt;
  }
};

struct Request {
  std::string subject{};
  std::string data{};
  Headers headers{};
  std::optional<std::chrono::milliseconds> timeout{};  // default: config.request_timeout
};

struct Reply {
  std::string subject{};
  std::string data{};
  Headers headers{};
  int status = 0;           // the "Status" header (503 no responders, 404, 408...), 0 if none
  std::string description{};  // the "Description" header
};

// A message delivered by a JetStream consumer; `reply` is its ack subject, whose tokens carry
// the delivery metadata parsed into the fields below.
struct JsMessage {
  std::string subject{};
  std::string data{};
  Headers headers{};
  std::string reply{};
  std::string stream{};
  std::string consumer{};
  std::uint64_t delivered = 0;        // 1 on first delivery
  std::uint64_t stream_sequence = 0;
  std::uint64_t consumer_sequence = 0;
  std::int64_t timestamp_ns = 0;      // when the stream stored it
  std::uint64_t pending = 0;          // messages left for the consumer after this one
};

// Parses "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>" (and the
// longer form with domain and account hash); false if `ack_subject` is not one.
bool parse_ack_subject(std::string_view ack_subject, JsMessage& into);

// One pull request on a durable or ephemeral consumer. With no_wait the server answers at
// once with what it has; otherwise it waits up to `expires` for `batch` messages.
struct FetchRequest {
  std::string stream{};
  std::string consumer{};
  int batch = 1;
  bool no_wait = true;
  std::chrono::milliseconds expires{0};
  // Streaming: when set, each delivery is handed to it as it arrives (on a nats.c thread:
  // it must only store the message and return) instead of being collected for completion.
  std::function<void(JsMessage&&)> on_message{};
  // Identifies the pull to cancel_fetch (set by async_fetch when its handler can be cancelled).
  std::shared_ptr<const void> tag{};
};

// Invoked from any thread; it posts to the awaiter's executor (see post_to_associated).
using ReplyHandler = asio::any_completion_handler<void(std::exception_ptr, Reply)>;
using FetchHandler = asio::any_completion_handler<void(std::exception_ptr, std::vector<JsMessage>)>;

struct ConnectionState;  // shared with nats.c callbacks; defined in src/connection.cpp

// Keeps the connection's nats.c handles alive, and close() waiting, while a blocking nats.c
// call uses them.
class HandleLease {
 public:
  explicit HandleLease(std::shared_ptr<ConnectionState> state) : state_(std::move(state)) {}
  HandleLease(HandleLease&&) noexcept = default;
  HandleLease& operator=(HandleLease&&) = delete;
  ~HandleLease();
  natsConnection* nats() const noexcept;
  jsCtx* js() const noexcept;

  // JetStream API permission violations the server reported that no pending request of ours
  // matched (so probably a blocking nats.c call's): a count, and a check that turns a blocking call's
  // timeout into errc::permission_denied when one arrived after `seen` (nats.c's own requests
  // only time out when the server refuses them).
  std::uint64_t unmatched_violations() const;
  void throw_if_denied_since(std::uint64_t seen, const Error& timeout) const;

 private:
  std::shared_ptr<ConnectionState> state_;
};

class Connection {
 public:
  Connection(asio::any_io_executor io, Config config, std::shared_ptr<spdlog::logger> logger);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects (blocking; offloaded by async_connect). Throws omniq::Error with a clear message:
  // connection_failed, auth_failed, tls_error, jetstream_unavailable, permission_denied (the
  // user may not subscribe to the reply inbox: see Config::inbox_prefix).
  // Connect and close run on a thread of their own, never queued behind blocking calls.
  template <class CompletionToken>
  auto async_connect(CompletionToken&& token) {
    return async_offload(admin_.get_executor(), [this] { connect_blocking(); },
                         std::forward<CompletionToken>(token));
  }
  // Closes the connection, failing every pending request with errc::closed. Idempotent.
  template <class CompletionToken>
  auto async_close(CompletionToken&& token) {
    return async_offload(admin_.get_executor(), [this] { close_blocking(); },
                         std::forward<CompletionToken>(token));
  }
  void connect_blocking();
  void close_blocking() noexcept;

  // Publishes `request` with a reply subject and completes with the reply. Everything
  // published during one turn of the io executor is written together at the end of it, in
  // order, with one socket write (docs/architecture.md, the outbox). Errors:
  // not_connected, closed, timeout, payload_too_large, invalid_name (bad subject),
  // permission_denied (the server refused the user to publish on the subject: reported by
  // the server asynchronously, matched to the request by its subject, failed at once).
  template <class CompletionToken>
  auto async_request(Request request, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::exception_ptr, Reply)>(
        [this](auto handler, Request req) {
          // A cancelled request completes with operation_aborted at once; its late reply is dropped.
          auto slot = asio::get_associated_cancellation_slot(handler);
          const std::uint64_t id =
              start_request(std::move(req), post_to_associated<std::exception_ptr, Reply>(std::move(handler), io_));
          if (id != 0 && slot.is_connected())
            slot.assign([this, id](asio::cancellation_type type) {
              if (type != asio::cancellation_type::none) cancel_request(id);
            });
        },
        token, std::move(request));
  }

  // Pulls up to `batch` messages from a consumer. Completes with the messages received (maybe
  // none) when the batch is full or the server ends the request; one pull per consumer is in
  // flight at a time (later ones wait their turn), because deliveries are routed to the
  // pull by the consumer name in their ack subject.
  template <class CompletionToken>
  auto async_fetch(FetchRequest request, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::exception_ptr, std::vector<JsMessage>)>(
        [this](auto handler, FetchRequest req) {
          // A cancelled pull completes with operation_aborted at once; what it had received and
          // what still arrives for it is handed back (NAK).
          auto slot = asio::get_associated_cancellation_slot(handler);
          std::string key;
          if (slot.is_connected()) {
            req.tag = std::make_shared<int>(0);
            key = req.stream + "." + req.consumer;
          }
          std::shared_ptr<const void> tag = req.tag;
          start_fetch(std::move(req),
                      post_to_associated<std::exception_ptr, std::vector<JsMessage>>(std::move(handler), io_));
          if (tag)
            slot.assign([this, key = std::move(key), tag = std::move(tag)](asio::cancellation_type type) {
              if (type != asio::cancellation_type::none) cancel_fetch(key, tag.get());
            });
        },
        token, std::move(request));
  }

  // Publishes without waiting for anything (acks, naks, progress signals). Throws
  // omniq::Error at once for what cannot be sent (not connected or closed, payload over
  // max_payload, a bad subject or header); the write itself joins the requests of the same
  // turn (see start_request), so a failure there is only logged: a lost ack or progress
  // signal means a redelivery, which omniq's claims absorb.
  void publish(const std::string& subject, std::string_view data, const Headers& headers = {});
  // Hands deliveries back to their consumers at once (a NAK on each ack subject), so another
  // consumer gets them now rather than after ack_wait. What cannot be sent is redelivered after
  // ack_wait anyway: one warning names how many and `why` they were handed back.
  void hand_back(const std::vector<std::string>& ack_subjects, std::string_view why) noexcept;

  // Runs `f(natsConnection*, jsCtx*)` on the blocking pool; `f` may throw omniq::Error.
  template <class F, class CompletionToken>
  auto async_blocking(F&& f, CompletionToken&& token) {
    return async_offload(
        blocking_executor(),
        [this, fn = std::forward<F>(f)]() mutable {
          HandleLease handles = lease_handles();
          const std::uint64_t seen = handles.unmatched_violations();
          try {
            return fn(handles.nats(), handles.js());
          } catch (const Error& e) {
            if (e.kind() == errc::timeout) handles.throw_if_denied_since(seen, e);
            throw;
          }
        },
        std::forward<CompletionToken>(token));
  }

  bool is_connected() const noexcept;
  std::int64_t max_payload() const noexcept;  // the server's max_payload, 0 before connect
  std::string connected_url() const;
  std::string server_id() const;
  // The version the server announced at connect ("2.10.27"); empty when it could not be read.
  std::string server_version() const;
  const Config& config() const noexcept { return config_; }
  spdlog::logger& log() const noexcept { return *logger_; }
  const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }
  asio::any_io_executor executor() const noexcept { return io_; }
  asio::thread_pool::executor_type blocking_executor() noexcept { return pool_.get_executor(); }

  // Throws not_connected / closed when there is no open connection.
  HandleLease lease_handles() const;
  void ensure_open() const;  // throws not_connected when there is no connection

 private:
  // Returns the pending request's id (0 when it failed at once).
  std::uint64_t start_request(Request request, ReplyHandler handler);
  void start_fetch(FetchRequest request, FetchHandler handler);
  void cancel_request(std::uint64_t id);
  void cancel_fetch(const std::string& key, const void* tag);
  friend struct ConnectionState;

  asio::any_io_executor io_;
  Config config_;
  std::shared_ptr<spdlog::logger> logger_;
  asio::thread_pool pool_;
  asio::thread_pool admin_;  // connect, close and the timeout sweep
  std::mutex lifecycle_mu_;  // connect and close one at a time
  mutable std::mutex version_mu_;
  std::string server_version_;  // guarded by version_mu_
  LockedSharedPtr<ConnectionState> state_;  // not std::atomic<shared_ptr>: see that header
};

}  // namespace omniq::detail
