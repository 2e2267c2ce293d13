// Standard 5-field cron expressions (minute hour day-of-month month day-of-week), evaluated in
// UTC or an IANA time zone. Used by Schedule to compute next_run.
//
// Syntax: `*`, numbers, lists `a,b`, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (a to the
// field's maximum), month names JAN-DEC and weekday names SUN-SAT (any case, also in ranges);
// weekday 7 is Sunday. As in Vixie cron, when both day fields are restricted (neither starts
// with `*`) a day matches if EITHER matches; otherwise both must match.
//
// Time zones: fields match local wall-clock time. Around DST transitions:
//  - a local time skipped by a spring-forward gap fires once, at the instant the gap ends
//    (Europe/Berlin 2027-03-28: "30 2 * * *" fires at 03:00 CEST = 01:00 UTC);
//  - a local time repeated by a fall-back fires once, at its first (DST) occurrence; the
//    repeated wall-clock hour is not run again (so "0 * * * *" skips one UTC hour).
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "omniq/time.hpp"

namespace date {
class time_zone;
}

namespace omniq {

class CronExpression {
 public:
  /// Parses `expression` (or one of `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight` `@hourly`)
  /// for `time_zone` ("UTC" or an IANA name such as "Europe/Berlin"). Throws
  /// omniq::Error(errc::invalid_cron) naming the bad field and token, or the unknown zone.
  static CronExpression parse(std::string_view expression, std::string_view time_zone = "UTC");

  /// The first matching instant strictly after `after` (seconds and below are dropped), or
  /// nullopt when none exists within the next ~5 years (e.g. "0 0 30 2 *") or before
  /// max_timestamp (the end of year 9999).
  std::optional<Timestamp> next_after(Timestamp after) const;

  const std::string& expression() const noexcept { return expression_; }
  const std::string& time_zone() const noexcept { return time_zone_; }

 private:
  using LocalMinutes = std::chrono::local_time<std::chrono::minutes>;

  CronExpression() = default;
  /// The first local wall-clock minute in [from, limit] matching every field.
  std::optional<LocalMinutes> next_local_match(LocalMinutes from, LocalMinutes limit) const;
  bool day_matches(const std::chrono::year_month_day& date) const;

  std::string expression_;
  std::string time_zone_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> days_of_week_;    // 0..6, Sunday = 0 (7 accepted as Sunday)
  bool dom_restricted_ = false;    // day-of-month field did not start with "*"
  bool dow_restricted_ = false;    // day-of-week field did not start with "*"
  const date::time_zone* zone_ = nullptr;  // owned by the tz database; null for UTC
};

}  // namespace omniq
