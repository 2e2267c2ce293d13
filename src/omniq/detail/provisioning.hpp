// Creates or checks the streams and buckets omniq uses, so that what runs matches the
// configuration. Blocking nats.c admin calls: run them through Connection::async_blocking.
#pragma once

#include <string>
#include <vector>

#include "omniq/config.hpp"
#include "omniq/reports.hpp"

typedef struct __jsCtx jsCtx;

namespace omniq::detail {

enum class Retention { limits, workqueue };
enum class Discard { old_messages, new_messages };

struct StreamSpec {
  StreamSettings settings;
  std::vector<std::string> subjects;
  Retention retention = Retention::limits;
  Discard discard = Discard::old_messages;
};

// Creates the stream if missing; updates settings that differ and can change; throws
// omniq::Error(invalid_config) naming the setting that cannot change (retention, storage).
StreamReport ensure_stream(jsCtx* js, const StreamSpec& spec);
StreamReport read_stream(jsCtx* js, const std::string& name);

BucketReport ensure_bucket(jsCtx* js, const BucketSettings& settings);
BucketReport read_bucket(jsCtx* js, const std::string& bucket);

}  // namespace omniq::detail
