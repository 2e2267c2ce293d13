// The cron parser and next_after on arbitrary input. Input: up to three lines,
//   <expression>\n<time zone, default UTC>\n<ISO-8601 start instant, default 2026-01-01T00:00:00Z>
// A bad expression or zone must be refused with omniq::Error(invalid_cron); a parsed one must
// yield strictly increasing occurrences, each after the instant asked about, within the
// documented search horizon (~5 years) and within [min_timestamp, max_timestamp].
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_model.hpp"
#include "omniq/cron.hpp"
#include "omniq/time.hpp"

namespace {

std::string_view next_line(std::string_view& rest) {
  const auto nl = rest.find('\n');
  const auto line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  std::string_view rest = omniq_fuzz::as_text(data, size);
  const std::string_view expression = next_line(rest);
  std::string_view zone = next_line(rest);
  if (zone.empty()) zone = "UTC";
  const std::string_view start_text = next_line(rest);

  omniq::Timestamp start = sys_days(year(2026) / 1 / 1);
  try {
    if (!start_text.empty()) start = omniq::parse_timestamp(start_text);
  } catch (const omniq::Error&) {
    // not a timestamp: keep the default
  }

  std::optional<omniq::CronExpression> cron;
  try {
    cron = omniq::CronExpression::parse(expression, zone);
  } catch (const omniq::Error& e) {
    if (e.kind() != omniq::errc::invalid_cron) omniq_fuzz::broken("parse threw other than invalid_cron", e.what());
    return 0;
  }
  // Generous: the horizon is counted in local time, the zone offset can add a day.
  constexpr auto horizon = days(5 * 366 + 2);
  omniq::Timestamp after = start;
  for (int i = 0; i < 4; ++i) {
    const auto next = cron->next_after(after);
    if (!next) break;
    if (*next <= after || *next - after > horizon)
      omniq_fuzz::broken("next_after(t) is not after t or beyond the horizon", expression,
                         omniq::format_timestamp(after) + " -> " + omniq::format_timestamp(*next));
    after = *next;
  }
  // The ends of the range: nothing outside [min_timestamp, max_timestamp], and no hang or UB
  // in the calendar arithmetic near the limits of Timestamp and std::chrono::year.
  for (const omniq::Timestamp edge : {omniq::Timestamp::min(), omniq::min_timestamp,
                                      omniq::max_timestamp - days(400), omniq::Timestamp::max()}) {
    const auto next = cron->next_after(edge);
    if (next && (*next <= edge || *next < omniq::min_timestamp || *next > omniq::max_timestamp))
      omniq_fuzz::broken("next_after(edge) is out of range", expression, omniq::format_timestamp(*next));
  }
  return 0;
}
