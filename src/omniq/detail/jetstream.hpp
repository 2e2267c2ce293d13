// JetStream over the bridge's non-blocking requests: publish acks, API calls and their
// errors, consumers, direct gets and scans. One place turns JetStream's answers into values
// or omniq errors with a clear message.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "omniq/detail/connection.hpp"
#include "omniq/detail/js_answers.hpp"
#include "omniq/time.hpp"

namespace omniq::detail {

struct PubAck {
  std::string stream{};
  std::uint64_t sequence = 0;
  bool duplicate = false;  // the Nats-Msg-Id was seen within the duplicate window
};

// JetStream error codes omniq reacts to.
inline constexpr int kErrWrongLastSequence = 10071;
inline constexpr int kErrStreamNotFound = 10059;
inline constexpr int kErrConsumerNotFound = 10014;
inline constexpr int kErrNoMessageFound = 10037;

// A JetStream API or publish error: the server's code, err_code and description.
struct JsError {
  int code = 0;
  int err_code = 0;
  std::string description{};
};

// The error in a JetStream answer, if it carries one (JSON "error" or a 503 no-responders).
std::optional<JsError> js_error(const Reply& reply);

// Interprets a publish acknowledgement. Throws omniq::Error: stream_full when the stream's
// limits refuse the message, jetstream_unavailable when no stream takes the subject,
// nats_error otherwise; `what` names the operation. A wrong-last-sequence answer is returned
// as nullopt when `allow_conflict` (compare-and-swap callers), else thrown.
std::optional<PubAck> parse_pub_ack(const Reply& reply, const std::string& what, bool allow_conflict = false);

// Sends a JetStream API request ($JS.API.<api>) and returns the JSON answer; throws on error.
asio::awaitable<nlohmann::json> api_request(Connection& c, std::string api, nlohmann::json body,
                                            std::string what);

// Publishes to a stream subject and awaits the acknowledgement (see parse_pub_ack).
asio::awaitable<std::optional<PubAck>> js_publish(Connection& c, std::string subject, std::string data,
                                                  Headers headers, std::string what,
                                                  bool allow_conflict = false);

// The outcome of one request of a pipelined group.
struct RequestOutcome {
  std::exception_ptr error{};
  Reply reply{};
};

// Sends every request with at most `window` in flight at any moment (a new one leaves as
// soon as one completes) and returns the outcomes in request order.
asio::awaitable<std::vector<RequestOutcome>> request_all(Connection& c, std::vector<Request> requests,
                                                         std::size_t window = 4096);

// What a batch of JetStream publishes left unstored.
struct BatchFailures {
  std::vector<std::size_t> failed{};  // indexes into the batch, in order
  std::exception_ptr first{};         // the failure of failed.front()
  std::exception_ptr worst{};         // one no retry can pass, before one that may
};
// Publishes every request (request_all) and reads each acknowledgement; `what(i)` names
// publish i in its failure ("enqueueing task x"). The one batch publish of enqueue_batch and
// log_events.
asio::awaitable<BatchFailures> publish_batch(Connection& c, std::vector<Request> requests, std::size_t window,
                                             std::function<std::string(std::size_t)> what);

// A message read back from a stream by direct get.
struct StoredMessage {
  std::string subject{};
  std::string data{};
  Headers headers{};
  std::uint64_t sequence = 0;
};

// Direct get of the last message on `subject` (no wildcards); nullopt when there is none.
asio::awaitable<std::optional<StoredMessage>> direct_get_last(Connection& c, std::string stream, std::string subject);
// The last message on `subject` read through the stream's leader ($JS.API.STREAM.MSG.GET);
// nullopt when there is none. A direct get may be answered by any replica, from a state that
// can lag behind the leader (or, on nats-server 2.9 before 2.9.21, number messages
// differently): a decision that gates an ack reads here.
asio::awaitable<std::optional<StoredMessage>> leader_get_last(Connection& c, std::string stream, std::string subject);
// Decodes standard base64 (with or without padding); nullopt for anything else.
std::optional<std::string> decode_base64(std::string_view text);
// Parses a raw NATS header block ("NATS/1.0\r\nName: value\r\n...\r\n").
Headers parse_header_block(std::string_view block);
// Direct get of the first message at or after `sequence` whose subject matches `filter`
// (wildcards allowed); nullopt when there is none.
asio::awaitable<std::optional<StoredMessage>> direct_get_next(Connection& c, std::string stream, std::string filter,
                                                              std::uint64_t sequence);

// Deletes one message from a stream; false when it was not there any more.
asio::awaitable<bool> delete_message(Connection& c, std::string stream, std::uint64_t sequence);

// Reads every message of `stream` matching `filter` through a short-lived ephemeral consumer
// (one request, then batches streamed back), only the last per subject when `last_per_subject`.
// Not for work-queue streams, whose consumers must not overlap.
asio::awaitable<std::vector<JsMessage>> scan(Connection& c, std::string stream, std::string filter,
                                             bool last_per_subject);

// Durable pull consumer settings omniq uses for its queues.
struct DurableConsumer {
  std::string stream{};
  std::string name{};
  std::string filter_subject{};
  std::chrono::milliseconds ack_wait{30'000};
  int max_deliver = -1;
  int max_ack_pending = 1000;
};
// Creates the consumer, or updates it to these settings when it exists with others. A user who
// may not create consumers (least privilege) uses the existing one as it is; errc::
// permission_denied when there is none.
asio::awaitable<void> ensure_consumer(Connection& c, DurableConsumer consumer);

// nullopt when the consumer does not exist; otherwise consumer_counts of its info
// (detail/js_answers.hpp).
asio::awaitable<std::optional<ConsumerState>> consumer_state(Connection& c, std::string stream, std::string name);

// ---- ephemeral readers ----------------------------------------------------------------------
// A reader is an ephemeral pull consumer without acks, in memory, that the server removes by
// itself after `inactive_threshold` without pulls: an abandoned reader costs nothing lasting.
// Readers may overlap freely on limits streams (not on work-queue streams).

// Where a reader starts: every message, only new ones, the last one per subject (KV current
// values), or from a time or sequence.
enum class ReadFrom { all, new_only, last_per_subject, start_time, start_sequence };

struct ReaderOptions {
  std::string stream{};
  std::string filter{};  // subject filter, wildcards allowed; empty: the whole stream
  ReadFrom from = ReadFrom::all;
  Timestamp start_time{};            // ReadFrom::start_time: the first message stored at or after it
  std::uint64_t start_sequence = 1;  // ReadFrom::start_sequence
  std::chrono::milliseconds inactive_threshold{30'000};
  std::optional<std::chrono::milliseconds> timeout{};  // of the create request; default request_timeout
};

struct Reader {
  std::string stream{};
  std::string name{};
  std::uint64_t num_pending = 0;  // matching messages waiting for it when it was created
  std::uint64_t start_after = 0;  // the stream sequence just before the first it may deliver
};

// Creates a reader; throws like api_request.
asio::awaitable<Reader> create_reader(Connection& c, ReaderOptions options);
// Deletes a reader; false when it was already gone or the server could not be asked (the
// reader then expires by itself). Never throws omniq::Error.
asio::awaitable<bool> delete_reader(Connection& c, std::string stream, std::string name);

// Removes every message of `stream` whose sequence is below `keep_from` and returns how many
// were removed ($JS.API.STREAM.PURGE with "seq").
asio::awaitable<std::uint64_t> purge_below(Connection& c, std::string stream, std::uint64_t keep_from);

}  // namespace omniq::detail
