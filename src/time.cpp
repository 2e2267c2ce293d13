#include "omniq/time.hpp"

#include <cstdio>

#include <date/date.h>

#include "omniq/error.hpp"

namespace omniq {

std::string format_timestamp(Timestamp t) {
  // By hand rather than date::format (an ostringstream each time): every encoded model
  // carries a few timestamps, so this is on the enqueue path.
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const date::year_month_day ymd{day};
  const auto us = (t - day).count();  // microseconds into the day
  const auto secs = us / 1'000'000;
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", static_cast<int>(ymd.year()),
                              static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                              static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                              static_cast<long long>(secs % 60), static_cast<long long>(us % 1'000'000));
  return std::string(buf, static_cast<std::size_t>(n));
}

namespace {

[[noreturn]] void bad_timestamp(std::string_view text, const char* why) {
  throw_error(errc::invalid_argument,
              "timestamp \"" + std::string(text) + "\" is not ISO-8601 (" + why +
                  "); expected e.g. 2026-11-27T08:21:38.123456Z");
}

int read_int(std::string_view text, std::string_view whole, std::size_t pos, std::size_t len,
             const char* what) {
  if (pos + len > text.size()) bad_timestamp(whole, what);
  // Digits only: from_chars alone would take a sign ("T-1:00:00Z" read as hour -1).
  int value = 0;
  for (std::size_t i = pos; i < pos + len; ++i) {
    if (text[i] < '0' || text[i] > '9') bad_timestamp(whole, what);
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

void expect(std::string_view text, std::size_t pos, char c, std::string_view whole) {
  if (pos >= text.size() || text[pos] != c) bad_timestamp(whole, "misplaced separator");
}

}  // namespace

Timestamp parse_timestamp(std::string_view text) {
  using namespace std::chrono;
  const int y = read_int(text, text, 0, 4, "year");
  expect(text, 4, '-', text);
  const int mo = read_int(text, text, 5, 2, "month");
  expect(text, 7, '-', text);
  const int d = read_int(text, text, 8, 2, "day");
  if (text.size() <= 10 || (text[10] != 'T' && text[10] != 't' && text[10] != ' '))
    bad_timestamp(text, "missing 'T' between date and time");
  const int h = read_int(text, text, 11, 2, "hour");
  expect(text, 13, ':', text);
  const int mi = read_int(text, text, 14, 2, "minute");
  expect(text, 16, ':', text);
  const int s = read_int(text, text, 17, 2, "second");
  std::size_t pos = 19;
  microseconds frac{0};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::int64_t scale = 100000, us = 0;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (scale > 0) us += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
      ++digits;
    }
    if (digits == 0) bad_timestamp(text, "empty fraction");
    frac = microseconds(us);
  }
  minutes offset{0};
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    const int oh = read_int(text, text, pos + 1, 2, "offset hours");
    std::size_t next = pos + 3;
    int om = 0;
    if (next < text.size() && text[next] == ':') ++next;
    om = read_int(text, text, next, 2, "offset minutes");
    offset = sign * (hours(oh) + minutes(om));
    pos = next + 2;
  } else {
    bad_timestamp(text, "missing time zone designator (Z or +HH:MM)");
  }
  if (pos != text.size()) bad_timestamp(text, "trailing characters");
  const auto ymd = date::year(y) / date::month(static_cast<unsigned>(mo)) / date::day(static_cast<unsigned>(d));
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) bad_timestamp(text, "field out of range");
  const auto day_point = date::sys_days(ymd);
  const Timestamp t = time_point_cast<microseconds>(day_point) + hours(h) + minutes(mi) + seconds(s) + frac - offset;
  // An offset can push 0000-01-01 or 9999-12-31 into a year format_timestamp cannot write back.
  if (t < min_timestamp || t > max_timestamp) bad_timestamp(text, "outside years 0000-9999 in UTC");
  return t;
}

}  // namespace omniq
