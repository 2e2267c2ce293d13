// What the server reports about the streams and buckets omniq uses: settings read back from
// JetStream (so tests and the demo show the server's truth, not the config's) plus state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace omniq {

struct StreamReport {
  std::string name;
  std::vector<std::string> subjects;
  std::string retention;  // "limits" | "workqueue" | "interest"
  std::string storage;    // "file" | "memory"
  std::string discard;    // "old" | "new"
  int replicas = 1;
  std::int64_t max_msgs = -1;
  std::int64_t max_bytes = -1;
  std::int32_t max_msg_size = -1;
  std::chrono::nanoseconds max_age{0};
  std::chrono::nanoseconds duplicate_window{0};
  bool allow_direct = false;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::int64_t consumers = 0;
};

struct BucketReport {
  std::string name;    // the bucket name (its stream is "KV_" + name)
  std::string stream;  // "KV_<name>"
  std::uint64_t values = 0;  // messages in the bucket's stream (values and history)
  std::uint64_t bytes = 0;
  std::chrono::nanoseconds ttl{0};
  int history = 1;
  int replicas = 1;
  std::string storage;
  std::int32_t max_value_size = -1;
  std::int64_t max_bytes = -1;
  bool allow_direct = false;
};

}  // namespace omniq
