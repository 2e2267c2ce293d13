// The one place that knows omniq's NATS layout: stream definitions, subjects and keys.
// docs/architecture.md documents it; change both together.
#pragma once

#include <array>
#include <string>
#include <string_view>

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

// ---- task subjects ------------------------------------------------------------------------
// A task is stored at {tasks_subject}.{queue}.{lane}.{task id}. The lane is a priority band or
// "delayed"; each (queue, lane) has its own durable consumer, because a work-queue stream
// only allows consumers whose filters do not overlap.

// Priority bands in the order dequeue serves them.
inline constexpr std::array<std::string_view, 5> kPriorityBands = {"urgent", "high", "normal", "low", "bulk"};
inline constexpr std::string_view kDelayedLane = "delayed";

// priority >= 100: urgent; 1..99: high; 0: normal; -99..-1: low; <= -100: bulk.
inline std::string_view band_for(int priority) {
  if (priority >= 100) return kPriorityBands[0];
  if (priority > 0) return kPriorityBands[1];
  if (priority == 0) return kPriorityBands[2];
  if (priority > -100) return kPriorityBands[3];
  return kPriorityBands[4];
}

inline std::string task_subject(const Config& c, std::string_view queue, std::string_view lane, std::string_view id) {
  std::string s = c.tasks_subject;
  s.append(".").append(queue).append(".").append(lane).append(".").append(id);
  return s;
}

inline std::string lane_filter(const Config& c, std::string_view queue, std::string_view lane) {
  return task_subject(c, queue, lane, "*");
}

// All workers of a queue share these durable consumers: named from the queue group.
inline std::string consumer_name(const Config& c, std::string_view queue, std::string_view lane) {
  std::string s = c.queue_group;
  s.append("_").append(queue).append("_").append(lane);
  return s;
}

// Dead letters: {dead_letter_subject}.{queue}.{task id}.
inline std::string dead_letter_subject(const Config& c, std::string_view queue, std::string_view id) {
  std::string s = c.dead_letter_subject;
  s.append(".").append(queue).append(".").append(id);
  return s;
}

}  // namespace omniq::detail
