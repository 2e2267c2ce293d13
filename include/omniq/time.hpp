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

// ISO-8601 in UTC with microseconds, e.g. "2026-11-27T08:21:38.123456Z".
std::string format_timestamp(Timestamp t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)"; throws omniq::Error(invalid_argument).
Timestamp parse_timestamp(std::string_view text);

}  // namespace omniq
