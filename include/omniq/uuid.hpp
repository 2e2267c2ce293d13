// Random identifiers for tasks, events and schedules. A uuid is also a valid subject token
// and KV key, so generated ids never need escaping.
#pragma once

#include <string>

namespace omniq {

/// An RFC 4122 version 4 uuid, lower-case hex with dashes ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx").
/// Thread-safe; each thread (and each forked process) draws from its own seeded generator.
std::string new_uuid();

}  // namespace omniq
