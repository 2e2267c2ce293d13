// Configuration of a NatsBackend: every key of the original OmniQ NATS backend (connection,
// TLS, subjects, queue group) plus the settings of the streams and buckets omniq creates.
// A plain aggregate; load it from JSON (same key names) and/or the environment, validate().
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace omniq {

enum class StorageType { file, memory };  // JSON: "file" | "memory"

/// A JetStream stream omniq creates. Limits use -1 for "unlimited" (0 is rejected because the
/// server silently turns it into -1, which reads as "nothing allowed" to a human).
struct StreamSettings {
  std::string name;
  int replicas = 1;                     // 1..5
  StorageType storage = StorageType::file;
  std::chrono::nanoseconds max_age{0};  // 0 = unlimited
  std::int64_t max_msgs = -1;           // -1 = unlimited
  std::int64_t max_bytes = -1;          // -1 = unlimited
  std::int32_t max_msg_size = -1;       // -1 = server's max_payload
  /// Idempotent-enqueue window; must be > 0 and, when max_age > 0, <= max_age (server rule).
  std::chrono::nanoseconds duplicate_window{std::chrono::minutes(2)};

  bool operator==(const StreamSettings&) const = default;
};

/// A KV bucket omniq creates.
struct BucketSettings {
  std::string name;
  int replicas = 1;                  // 1..5
  StorageType storage = StorageType::file;
  std::chrono::nanoseconds ttl{0};   // 0 = keys never expire
  int history = 1;                   // 1..64 (server limit)
  std::int32_t max_value_size = -1;  // -1 = server's max_payload
  std::int64_t max_bytes = -1;       // -1 = unlimited

  bool operator==(const BucketSettings&) const = default;
};

struct Config {
  /// Connection (the seed's keys).
  /// Each entry: "nats://host:port", "tls://host:port" or bare "host[:port]" (nats.c adds
  /// nats:// and port 4222); user:password@ in the URL is allowed.
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string user;
  std::string password;  // requires user
  std::string token;
  /// TLS is also implied by tls_cert, tls_key, tls_ca or a tls:// server: see tls_enabled().
  bool tls = false;
  std::string tls_cert;  // client certificate chain (PEM file); requires tls_key
  std::string tls_key;   // client private key (PEM file); requires tls_cert
  std::string tls_ca;    // CA certificates to verify the server (PEM file)
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reconnect_time_wait{2000};
  int max_reconnect_attempts = 60;  // -1 = forever, 0 = never reconnect
  bool verbose = false;
  bool pedantic = false;
  std::string name = "omniq";         // connection name shown by the server
  std::string inbox_prefix;           // custom inbox prefix ("" = nats.c default "_INBOX")
  /// Write each publish to the socket at once (low latency for one-at-a-time callers); false
  /// lets nats.c coalesce writes, up to ~1 ms later (more throughput for bulk work).
  bool send_asap = true;

  /// Subjects and queue group (the seed's keys). Subjects are dot-separated tokens of
  /// [A-Za-z0-9_-]; no two of them may overlap (one must not be a prefix of another), since
  /// each is the root of its own subject space ("<subject>.>").
  std::string tasks_subject = "omniq.tasks";
  std::string results_subject = "omniq.results";
  std::string events_subject = "omniq.events";
  std::string schedules_subject = "omniq.schedules";
  std::string dead_letter_subject = "omniq.dlq";
  std::string queue_group = "omniq_workers";  // one token of [A-Za-z0-9_-]

  /// Streams and buckets (names: [A-Za-z0-9_-]+, distinct).
  StreamSettings tasks_stream{.name = "OMNIQ_TASKS", .max_msgs = 10'000'000};
  StreamSettings events_stream{.name = "OMNIQ_EVENTS",
                               .max_age = std::chrono::hours(24 * 30),
                               .max_msgs = 10'000'000};
  StreamSettings dead_letter_stream{.name = "OMNIQ_DLQ"};
  BucketSettings results_bucket{.name = "omniq_results", .ttl = std::chrono::hours(24 * 7)};
  BucketSettings schedules_bucket{.name = "omniq_schedules"};
  /// Task state after enqueue (cancelled, updated, running, finished); pending tasks are read
  /// from the tasks stream itself, so enqueue writes nothing here.
  BucketSettings task_state_bucket{.name = "omniq_tasks", .ttl = std::chrono::hours(24 * 7)};
  /// Live workers: each running Worker writes its key here every ttl / 3 (sooner again after a
  /// failed write); the TTL removes the key of a worker that stopped, so a key means "alive"
  /// and a claim held by a worker without one may be taken over (docs/reliability.md). Longer
  /// than a leader election (about 10 s) plus a request timeout, so a live worker does not
  /// look gone during one; a killed worker's tasks wait at most this long more.
  BucketSettings workers_bucket{.name = "omniq_workers", .ttl = std::chrono::seconds(30)};

  /// Consumers (task queue).
  std::chrono::milliseconds ack_wait{30'000};
  int max_deliver = 5;         // deliveries before a task is dead-lettered; -1 = unlimited
  int max_ack_pending = 1000;  // >= 1
  /// Deliveries a process holds ready per priority lane of each queue it dequeues (>= 1).
  int prefetch = 256;

  /// Runtime.
  int blocking_threads = 4;  // pool that runs blocking nats.c calls off the io thread
  std::chrono::milliseconds request_timeout{5000};  // JetStream API and KV calls
  /// How long enqueue / enqueue_batch keep retrying what may pass (a timeout, no responders
  /// during a leader election, a reconnect) with the same message ids before they fail; 0
  /// tries once. At least one election (about 4-9 s) plus a request timeout.
  std::chrono::milliseconds publish_timeout{15'000};

  /// Whether the connection must use TLS: `tls`, or any of tls_cert / tls_key / tls_ca set, or
  /// a tls:// server URL. The connection layer calls natsOptions_SetSecure on this, not `tls`.
  bool tls_enabled() const noexcept;

  /// Throws omniq::Error(errc::invalid_config) naming the key if a value is out of range, e.g.
  /// `config: "tasks_stream.replicas" must be between 1 and 5, got 7`.
  void validate() const;

  bool operator==(const Config&) const = default;
};

/// "omniq_backend" selection read from OMNIQ_BACKEND ("nats" is the only value accepted here).
inline constexpr const char* kBackendName = "nats";

/// JSON layout: an object with the same key names as Config; streams and buckets are nested
/// objects ("tasks_stream": {"replicas": 3}); durations are seconds as JSON numbers (2.0 or 2)
/// under their key name; storage is "file" | "memory"; "servers" is an array of strings or one
/// string (comma-separated allowed); optional strings (user, token, ...) accept null as "".
/// Only the keys present override `base`. An unknown key, wrong type or negative duration
/// throws omniq::Error(errc::invalid_config) naming the key path, e.g. "tasks_stream.replicas"
/// (with a "did you mean" for near-miss keys). The result is validate()d.
Config config_from_json(const nlohmann::json& j, Config base = {});

/// config_from_json over the file's content. Errors name the file: a missing or unreadable
/// file, a JSON syntax error (with the parser's line/column), or any key error in it.
Config load_config_file(const std::filesystem::path& path, Config base = {});

/// Returns the variable's value, or nullopt if it is not set.
using EnvGetter = std::function<std::optional<std::string>(const std::string& name)>;

/// Overlays the environment on `base`: OMNIQ_BACKEND (if set, must be "nats"), then
/// OMNIQ_CONFIG (a JSON file loaded over base first), then on top of that NATS_SERVERS
/// (comma-separated), NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_TLS_CERT / _KEY / _CA (which
/// imply TLS) and OMNIQ_QUEUE_GROUP. Empty variables are ignored. An empty `getenv` means
/// std::getenv; tests inject their own. The result is validate()d.
Config config_from_env(Config base = {}, const EnvGetter& getenv = {});

/// The inverse of config_from_json: every key, durations as seconds (double), so
/// config_from_json(config_to_json(c)) == c. Includes password and token: a full dump.
nlohmann::json config_to_json(const Config& c);
/// config_to_json with password, token and any password in a server URL replaced by "***",
/// for logs.
nlohmann::json config_to_json_redacted(const Config& c);

}  // namespace omniq
