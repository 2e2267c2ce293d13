// Time types used by every omniq API. Units live in types: timestamps are UTC system-clock
// time points with microsecond precision, spans are std::chrono durations.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace omniq {

using Clock = std::chrono::system_clock;
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;
using Duration = std::chrono::microseconds;

inline Timestamp now() { return std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now()); }

/// The instants ISO-8601 text with a four-digit year can hold, in UTC. parse_timestamp refuses
/// anything outside; times omniq computes (created_at + ttl, interval and cron occurrences)
/// saturate or stop at these ends, so every stored time reads back.
inline constexpr Timestamp min_timestamp{std::chrono::sys_days{std::chrono::year{0} / 1 / 1}};
inline constexpr Timestamp max_timestamp{std::chrono::sys_days{std::chrono::year{10000} / 1 / 1} -
                                         std::chrono::microseconds{1}};

/// ISO-8601 in UTC with microseconds, e.g. "2026-11-27T08:21:38.123456Z". Outside
/// [min_timestamp, max_timestamp] the text has no four-digit year and does not parse back.
std::string format_timestamp(Timestamp t);
/// Accepts "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)" (fields are unsigned digits) for an
/// instant within [min_timestamp, max_timestamp]; throws omniq::Error(invalid_argument).
Timestamp parse_timestamp(std::string_view text);

}  // namespace omniq
