// The one place that knows omniq's NATS layout: stream definitions, subjects and keys.
// docs/architecture.md documents it; change both together.
#pragma once

#include "omniq/config.hpp"
#include "omniq/detail/provisioning.hpp"

namespace omniq::detail {

// Tasks: a work-queue stream that never drops an accepted task (discard new: a full stream
// rejects the enqueue with an error instead of deleting unconsumed work).
inline StreamSpec tasks_stream_spec(const Config& c) {
  return {c.tasks_stream, {c.tasks_subject + ".>"}, Retention::workqueue, Discard::new_messages};
}

// Events: an append-only log bounded by age and count; the oldest events go first.
inline StreamSpec events_stream_spec(const Config& c) {
  return {c.events_stream, {c.events_subject + ".>"}, Retention::limits, Discard::old_messages};
}

// Dead letters: kept until removed; when full, dead-lettering fails and the task stays queued.
inline StreamSpec dead_letter_stream_spec(const Config& c) {
  return {c.dead_letter_stream, {c.dead_letter_subject + ".>"}, Retention::limits, Discard::new_messages};
}

}  // namespace omniq::detail
