// The data omniq stores: tasks, their results, lifecycle events and schedules, with their
// versioned JSON codecs (every encoded object carries "schema_version": 1).
//
// JSON encoding, shared by all models: timestamps are ISO-8601 UTC strings with microseconds,
// durations are seconds as a floating-point number (like Python's total_seconds()), enums
// are their lower-case names, and an empty optional is left out (null is accepted too).
// Decoding ignores unknown fields and rejects a schema_version newer than 1.
#pragma once

#include "omniq/models/event.hpp"
#include "omniq/models/result.hpp"
#include "omniq/models/schedule.hpp"
#include "omniq/models/task.hpp"
#include "omniq/models/task_record.hpp"
#include "omniq/validation.hpp"
