#include "omniq/cron.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <date/tz.h>

#include "omniq/error.hpp"

namespace omniq {

namespace {

using namespace std::chrono;

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  std::span<const std::string_view> names;  // names[i] stands for min + i
};

constexpr std::array<std::string_view, 12> month_names{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> weekday_names{"SUN", "MON", "TUE", "WED",
                                                        "THU", "FRI", "SAT"};

constexpr std::array<FieldSpec, 5> field_specs{{
    {"minute", 0, 59, {}},
    {"hour", 0, 23, {}},
    {"day-of-month", 1, 31, {}},
    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, weekday_names},  // 7 is folded into 0 (Sunday) after parsing
}};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};

constexpr std::array<Macro, 7> macros{{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

// Long enough to reach the next Feb 29 from anywhere in a leap cycle.
constexpr days search_horizon{5 * 366};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
char to_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (is_space(text[pos])) {
      ++pos;
      continue;
    }
    const std::size_t end = std::min(text.find_first_of(" \t\n\r", pos), text.size());
    fields.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return fields;
}

std::string quoted(std::string_view text) {
  // Built by appending: g++ 12 -O3 warns falsely (-Wrestrict) on "\"" + std::string(...).
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  out.append(text);
  out.push_back('"');
  return out;
}

// Parses one field's text into a bit mask with bit v set for every value v it selects.
class FieldParser {
 public:
  FieldParser(std::string_view expression, const FieldSpec& spec, std::string_view text)
      : expression_(expression), spec_(spec), text_(text) {}

  std::uint64_t parse() const {
    std::uint64_t mask = 0;
    std::size_t pos = 0;
    while (true) {
      const std::size_t comma = text_.find(',', pos);
      mask |= parse_item(text_.substr(pos, comma - pos));
      if (comma == std::string_view::npos) return mask;
      pos = comma + 1;
    }
  }

 private:
  // Names the field, and the offending part of it when that is not the whole field.
  [[noreturn]] void fail(std::string_view part, const std::string& problem) const {
    std::string message = "cron " + quoted(expression_) + ": " + std::string(spec_.name) +
                          " field " + quoted(text_);
    if (part != text_) message += ": " + quoted(part);
    throw_error(errc::invalid_cron, message + " " + problem);
  }

  std::string range_text() const {
    return std::to_string(spec_.min) + "-" + std::to_string(spec_.max);
  }

  // `item` is one list element: "*", "a", "a-b", each optionally followed by "/step".
  std::uint64_t parse_item(std::string_view item) const {
    if (item.empty()) fail(text_, "has an empty list element");
    const std::size_t slash = item.find('/');
    const std::string_view range = item.substr(0, slash);
    int step = 1;
    if (slash != std::string_view::npos) {
      step = number(item.substr(slash + 1), item, "step");
      if (step == 0) fail(item, "has step 0");
    }

    int low = spec_.min;
    int high = spec_.max;
    if (range != "*") {
      const std::size_t dash = range.find('-');
      low = value(range.substr(0, dash), item);
      if (dash != std::string_view::npos) {
        high = value(range.substr(dash + 1), item);
        if (low > high)
          fail(item, "is a reversed range (" + std::to_string(low) + " > " +
                         std::to_string(high) + ")");
      } else if (slash == std::string_view::npos) {
        high = low;  // a single value; "a/n" keeps high = max
      }
    }

    std::uint64_t mask = 0;
    for (std::int64_t v = low; v <= high; v += step) mask |= std::uint64_t{1} << v;
    return mask;
  }

  // A number or (for month and day-of-week) a name, within the field's range.
  int value(std::string_view token, std::string_view item) const {
    if (!token.empty() && is_alpha(token.front()) && !spec_.names.empty()) {
      for (std::size_t i = 0; i < spec_.names.size(); ++i)
        if (iequals(token, spec_.names[i])) return spec_.min + static_cast<int>(i);
      fail(token, "is not a known name (expected " + std::string(spec_.names.front()) + "-" +
                      std::string(spec_.names.back()) + " or " + range_text() + ")");
    }
    const int v = number(token, item, "value");
    if (v < spec_.min || v > spec_.max) fail(token, "is out of range " + range_text());
    return v;
  }

  // A non-negative decimal integer; `what` names it when it is missing. Saturates, so an overlong
  // value fails the range check and an overlong step selects just the range's start.
  int number(std::string_view token, std::string_view item, std::string_view what) const {
    if (token.empty()) fail(item, "is missing a " + std::string(what));
    int v = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (end != token.data() + token.size() || token.front() == '-') fail(token, "is not a number");
    if (ec == std::errc::result_out_of_range) return std::numeric_limits<int>::max();
    if (ec != std::errc{}) fail(token, "is not a number");
    return v;
  }

  std::string_view expression_;
  const FieldSpec& spec_;
  std::string_view text_;
};

template <std::size_t N>
std::optional<int> first_set_from(const std::bitset<N>& bits, int from) {
  for (auto i = static_cast<std::size_t>(from); i < N; ++i)
    if (bits[i]) return static_cast<int>(i);
  return std::nullopt;
}

}  // namespace

CronExpression CronExpression::parse(std::string_view expression, std::string_view time_zone) {
  CronExpression cron;
  cron.expression_ = expression;
  cron.time_zone_ = time_zone;

  std::vector<std::string_view> fields = split_fields(expression);
  if (!fields.empty() && fields.front().starts_with('@')) {
    const auto macro = std::find_if(macros.begin(), macros.end(), [&](const Macro& m) {
      return fields.size() == 1 && iequals(m.name, fields.front());
    });
    if (macro == macros.end())
      throw_error(errc::invalid_cron,
                  "cron " + quoted(expression) + ": unknown macro " + quoted(trim(expression)) +
                      " (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                      "@hourly)");
    fields = split_fields(macro->expansion);
  }
  if (fields.size() != field_specs.size())
    throw_error(errc::invalid_cron,
                "cron " + quoted(expression) +
                    ": expected 5 fields (minute hour day-of-month month day-of-week), found " +
                    std::to_string(fields.size()));

  std::array<std::uint64_t, 5> masks{};
  for (std::size_t i = 0; i < masks.size(); ++i)
    masks[i] = FieldParser(expression, field_specs[i], fields[i]).parse();
  if (masks[4] & (std::uint64_t{1} << 7)) masks[4] |= 1;  // weekday 7 is Sunday

  cron.minutes_ = std::bitset<60>(masks[0]);
  cron.hours_ = std::bitset<24>(masks[1]);
  cron.days_of_month_ = std::bitset<32>(masks[2]);
  cron.months_ = std::bitset<13>(masks[3]);
  cron.days_of_week_ = std::bitset<7>(masks[4] & 0x7f);
  // Vixie cron decides by the first character, so "*/2" still counts as unrestricted.
  cron.dom_restricted_ = !fields[2].starts_with('*');
  cron.dow_restricted_ = !fields[4].starts_with('*');

  if (time_zone != "UTC") {
    try {
      cron.zone_ = date::locate_zone(time_zone);
    } catch (const std::exception&) {
      throw_error(errc::invalid_cron, "unknown time zone " + quoted(time_zone));
    }
  }
  return cron;
}

bool CronExpression::day_matches(const year_month_day& ymd) const {
  const bool dom = days_of_month_[static_cast<unsigned>(ymd.day())];
  const bool dow = days_of_week_[weekday(sys_days(ymd)).c_encoding()];
  return dom_restricted_ && dow_restricted_ ? dom || dow : dom && dow;
}

std::optional<CronExpression::LocalMinutes> CronExpression::next_local_match(
    LocalMinutes from, LocalMinutes limit) const {
  // Each miss jumps to the start of the next candidate month, day or hour.
  for (LocalMinutes t = from; t <= limit;) {
    const local_days day = floor<days>(t);
    const year_month_day ymd{day};
    if (!months_[static_cast<unsigned>(ymd.month())]) {
      t = local_days((ymd.year() / ymd.month() / 1) + months{1});
      continue;
    }
    if (!day_matches(ymd)) {
      t = day + days{1};
      continue;
    }
    const auto minute_of_day = static_cast<int>((t - day).count());
    const int hour = minute_of_day / 60;
    const auto match_hour = first_set_from(hours_, hour);
    if (!match_hour) {
      t = day + days{1};
      continue;
    }
    const int from_minute = *match_hour == hour ? minute_of_day % 60 : 0;
    const auto match_minute = first_set_from(minutes_, from_minute);
    if (!match_minute) {
      t = day + hours{*match_hour + 1};
      continue;
    }
    return day + hours{*match_hour} + minutes{*match_minute};
  }
  return std::nullopt;
}

std::optional<Timestamp> CronExpression::next_after(Timestamp after) const {
  // Only occurrences a stored timestamp can hold (years 0000-9999); this also keeps the
  // calendar arithmetic below far from the limits of std::chrono::year.
  if (after >= max_timestamp) return std::nullopt;
  after = std::max(after, min_timestamp - microseconds{1});  // so any fire > after is in range
  const auto floor_after = floor<minutes>(after);

  const auto to_local = [&](sys_time<minutes> t) {
    if (!zone_) return LocalMinutes{t.time_since_epoch()};
    return LocalMinutes{floor<minutes>(zone_->to_local(t)).time_since_epoch()};
  };
  // Maps a matching wall-clock minute to the instant it fires (see the DST rules in cron.hpp).
  // This mapping never decreases as the wall-clock time increases.
  const auto to_sys = [&](LocalMinutes local) -> sys_seconds {
    if (!zone_) return sys_seconds{local.time_since_epoch()};
    const date::local_info info =
        zone_->get_info(date::local_time<minutes>{local.time_since_epoch()});
    if (info.result == date::local_info::nonexistent) return info.first.end;  // the gap's end
    return sys_seconds{local.time_since_epoch()} - info.first.offset;  // earlier if ambiguous
  };

  // Every wall-clock time up to local(floor_after) fires at or before floor_after, so the search
  // starts one minute later. It only repeats for wall-clock times of a repeated (fall-back) hour
  // whose first occurrence has already passed.
  const LocalMinutes start = to_local(floor_after);
  const LocalMinutes limit = start + search_horizon;
  for (LocalMinutes from = start + minutes{1};;) {
    const auto match = next_local_match(from, limit);
    if (!match) return std::nullopt;
    const sys_seconds fire = to_sys(*match);
    // Compared with `after` itself, not floor_after: before standard time, zones ran on local
    // mean time with offsets in seconds (New York -4:56:02), so `fire` need not be a whole
    // minute and can fall between floor_after and after.
    if (fire > after) {
      if (fire > max_timestamp) return std::nullopt;
      return time_point_cast<microseconds>(fire);
    }
    from = *match + minutes{1};
  }
}

}  // namespace omniq
