#include <catch2/catch.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "omniq/cron.hpp"
#include "omniq/error.hpp"
#include "omniq/time.hpp"

using omniq::CronExpression;
using omniq::format_timestamp;
using omniq::parse_timestamp;

namespace {

// The next fire time as a UTC string, or "none".
std::string next_fire(std::string_view expression, std::string_view zone, std::string_view after) {
  const auto next = CronExpression::parse(expression, zone).next_after(parse_timestamp(after));
  return next ? format_timestamp(*next) : "none";
}

struct FireCase {
  std::string_view rule;
  std::string_view expression;
  std::string_view after;
  std::string_view expected;  // a UTC timestamp, or "none"
};

void check_fires(std::string_view zone, std::initializer_list<FireCase> cases) {
  for (const auto& c : cases) {
    INFO(c.rule << ": \"" << c.expression << "\" in " << zone << " after " << c.after);
    const std::string expected =
        c.expected == "none" ? "none" : format_timestamp(parse_timestamp(c.expected));
    CHECK(next_fire(c.expression, zone, c.after) == expected);
  }
}

// The message of the invalid_cron error that parsing throws (checked to be that kind).
std::string parse_error(std::string_view expression, std::string_view zone = "UTC") {
  try {
    CronExpression::parse(expression, zone);
  } catch (const omniq::Error& e) {
    CHECK(e.kind() == omniq::errc::invalid_cron);
    return e.what();
  }
  FAIL("\"" << expression << "\" in " << zone << " parsed without an error");
  return {};
}

}  // namespace

TEST_CASE("each cron field selects the next matching minute strictly after the given time",
          "[cron]") {
  // 2027-01-06 is a Wednesday.
  check_fires("UTC", {
      {"every minute, seconds dropped", "* * * * *", "2027-01-06T10:17:30Z", "2027-01-06T10:18:00Z"},
      {"strictly after a matching minute", "* * * * *", "2027-01-06T10:17:00Z", "2027-01-06T10:18:00Z"},
      {"minute later this hour", "45 * * * *", "2027-01-06T10:17:30Z", "2027-01-06T10:45:00Z"},
      {"minute passed, next hour", "5 * * * *", "2027-01-06T10:17:30Z", "2027-01-06T11:05:00Z"},
      {"hour later today", "30 14 * * *", "2027-01-06T10:17:30Z", "2027-01-06T14:30:00Z"},
      {"hour passed, tomorrow", "0 9 * * *", "2027-01-06T10:17:30Z", "2027-01-07T09:00:00Z"},
      {"day of month", "0 0 15 * *", "2027-01-06T10:17:30Z", "2027-01-15T00:00:00Z"},
      {"month", "0 0 1 3 *", "2027-01-06T10:17:30Z", "2027-03-01T00:00:00Z"},
      {"day of week (5 = Friday)", "0 12 * * 5", "2027-01-06T10:17:30Z", "2027-01-08T12:00:00Z"},
      {"day of week 0 is Sunday", "0 9 * * 0", "2027-01-06T10:17:30Z", "2027-01-10T09:00:00Z"},
      {"day of week 7 is Sunday", "0 9 * * 7", "2027-01-06T10:17:30Z", "2027-01-10T09:00:00Z"},
      {"range ending in 7 reaches Sunday", "0 9 * * 6-7", "2027-01-09T10:00:00Z", "2027-01-10T09:00:00Z"},
      {"minute list", "10,20,40 * * * *", "2027-01-06T10:17:30Z", "2027-01-06T10:20:00Z"},
      {"hour list", "0 8,18 * * *", "2027-01-06T10:17:30Z", "2027-01-06T18:00:00Z"},
      {"hour range", "0 9-17 * * *", "2027-01-06T10:17:30Z", "2027-01-06T11:00:00Z"},
      {"weekday range skips the weekend", "0 9 * * 1-5", "2027-01-08T10:00:00Z", "2027-01-11T09:00:00Z"},
      {"list of ranges and values", "0 0 1-2,20 * *", "2027-01-06T10:17:30Z", "2027-01-20T00:00:00Z"},
      {"wildcard step", "*/15 * * * *", "2027-01-06T10:17:30Z", "2027-01-06T10:30:00Z"},
      {"range step", "0 8-20/4 * * *", "2027-01-06T10:17:30Z", "2027-01-06T12:00:00Z"},
      {"start step runs to the maximum", "10/20 * * * *", "2027-01-06T10:51:00Z", "2027-01-06T11:10:00Z"},
      {"a step past the range selects its start", "30/100 * * * *", "2027-01-06T10:17:30Z", "2027-01-06T10:30:00Z"},
      {"start step includes later values", "10/20 * * * *", "2027-01-06T10:17:30Z", "2027-01-06T10:30:00Z"},
      {"month name, any case", "0 0 1 jun *", "2027-01-06T10:17:30Z", "2027-06-01T00:00:00Z"},
      {"month name range", "0 0 1 MAR-May *", "2027-01-06T10:17:30Z", "2027-03-01T00:00:00Z"},
      {"weekday name range", "0 9 * * MON-FRI", "2027-01-08T10:00:00Z", "2027-01-11T09:00:00Z"},
      {"weekday name list", "0 9 * * sat,Sun", "2027-01-06T10:17:30Z", "2027-01-09T09:00:00Z"},
      {"extra whitespace", "  0   12 * *\t* ", "2027-01-06T10:17:30Z", "2027-01-06T12:00:00Z"},
  });
}

TEST_CASE("the cron 0 */5 * * * fires at minute 0 of every fifth hour, not every five minutes",
          "[cron]") {
  const auto cron = CronExpression::parse("0 */5 * * *");
  std::optional<omniq::Timestamp> t = parse_timestamp("2027-01-06T00:00:00Z");
  std::vector<std::string> fires;
  for (int i = 0; i < 6; ++i) {
    t = cron.next_after(*t);
    REQUIRE(t);
    fires.push_back(format_timestamp(*t));
  }
  CHECK(fires == std::vector<std::string>{
                     "2027-01-06T05:00:00.000000Z", "2027-01-06T10:00:00.000000Z",
                     "2027-01-06T15:00:00.000000Z", "2027-01-06T20:00:00.000000Z",
                     "2027-01-07T00:00:00.000000Z", "2027-01-07T05:00:00.000000Z"});
}

TEST_CASE("a day matches either day field when both are restricted, else both must match",
          "[cron]") {
  check_fires("UTC", {
      {"Friday the 8th fires via day of week", "0 0 13 * 5", "2027-01-06T10:00:00Z", "2027-01-08T00:00:00Z"},
      {"Wednesday the 13th fires via day of month", "0 0 13 * 5", "2027-01-08T00:00:00Z", "2027-01-13T00:00:00Z"},
      {"day of week alone", "0 0 * * 5", "2027-01-08T00:00:00Z", "2027-01-15T00:00:00Z"},
      {"day of month alone", "0 0 13 * *", "2027-01-06T10:00:00Z", "2027-01-13T00:00:00Z"},
      // As in Vixie cron a field starting with "*" is unrestricted: odd days that are Mondays.
      {"\"*/2\" day of month is ANDed", "0 0 */2 * 1", "2027-01-06T10:00:00Z", "2027-01-11T00:00:00Z"},
  });
}

TEST_CASE("the search rolls over months, years and leap days", "[cron]") {
  check_fires("UTC", {
      {"next month", "0 0 1 * *", "2027-01-06T10:00:00Z", "2027-02-01T00:00:00Z"},
      {"skips months without the day", "30 23 31 * *", "2027-01-31T23:30:00Z", "2027-03-31T23:30:00Z"},
      {"next year", "0 0 1 1 *", "2027-01-06T10:00:00Z", "2028-01-01T00:00:00Z"},
      {"last minute of the year", "59 23 31 12 *", "2027-12-31T23:59:00Z", "2028-12-31T23:59:00Z"},
      {"Feb 29 in the next leap year", "0 0 29 2 *", "2027-01-06T10:00:00Z", "2028-02-29T00:00:00Z"},
      {"Feb 29 four years on", "0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
  });
}

TEST_CASE("an impossible date never fires", "[cron]") {
  check_fires("UTC", {
      {"Feb 30", "0 0 30 2 *", "2027-01-06T10:00:00Z", "none"},
      {"Apr 31", "0 0 31 4 *", "2027-01-06T10:00:00Z", "none"},
      {"31st of short months", "0 0 31 2,4,6,9,11 *", "2027-01-06T10:00:00Z", "none"},
  });
}

TEST_CASE("macros expand to their standard expressions", "[cron]") {
  check_fires("UTC", {
      {"@yearly", "@yearly", "2027-01-06T10:17:30Z", "2028-01-01T00:00:00Z"},
      {"@annually", "@annually", "2027-01-06T10:17:30Z", "2028-01-01T00:00:00Z"},
      {"@monthly", "@monthly", "2027-01-06T10:17:30Z", "2027-02-01T00:00:00Z"},
      {"@weekly fires at Sunday midnight", "@weekly", "2027-01-06T10:17:30Z", "2027-01-10T00:00:00Z"},
      {"@daily", "@daily", "2027-01-06T10:17:30Z", "2027-01-07T00:00:00Z"},
      {"@midnight", "@midnight", "2027-01-06T10:17:30Z", "2027-01-07T00:00:00Z"},
      {"@hourly", "@hourly", "2027-01-06T10:17:30Z", "2027-01-06T11:00:00Z"},
      {"any case and whitespace", " @HOURLY ", "2027-01-06T10:17:30Z", "2027-01-06T11:00:00Z"},
  });
}

TEST_CASE("fields match local wall-clock time in a time zone without DST", "[cron]") {
  check_fires("Asia/Tokyo", {
      {"09:00 JST is 00:00 UTC", "0 9 * * *", "2027-01-05T23:59:00Z", "2027-01-06T00:00:00Z"},
      {"strictly after", "0 9 * * *", "2027-01-06T00:00:00Z", "2027-01-07T00:00:00Z"},
      {"local month start is the previous UTC day", "0 0 1 * *", "2027-01-06T00:00:00Z", "2027-01-31T15:00:00Z"},
      {"local weekday", "0 8 * * MON", "2027-01-06T00:00:00Z", "2027-01-10T23:00:00Z"},
  });
  check_fires("Etc/UTC", {
      {"a tz database UTC zone", "0 9 * * *", "2027-01-06T10:00:00Z", "2027-01-07T09:00:00Z"},
  });
}

TEST_CASE("a wall-clock time skipped by spring-forward fires once, when the gap ends", "[cron]") {
  // Europe/Berlin 2027-03-28 01:00 UTC: 02:00 CET becomes 03:00 CEST.
  check_fires("Europe/Berlin", {
      {"before the gap (CET)", "30 1 * * *", "2027-03-27T12:00:00Z", "2027-03-28T00:30:00Z"},
      {"02:30 fires at 03:00 CEST", "30 2 * * *", "2027-03-27T12:00:00Z", "2027-03-28T01:00:00Z"},
      {"and not again that day", "30 2 * * *", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"},
      {"hourly: 02:00 fires at the gap end", "0 * * * *", "2027-03-28T00:30:00Z", "2027-03-28T01:00:00Z"},
      {"hourly: then 04:00 CEST", "0 * * * *", "2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z"},
      {"every 20 minutes resumes after 03:00", "*/20 * * * *", "2027-03-28T01:00:00Z", "2027-03-28T01:20:00Z"},
      {"after the gap (CEST)", "30 3 * * *", "2027-03-27T12:00:00Z", "2027-03-28T01:30:00Z"},
  });
  // America/New_York 2027-03-14 07:00 UTC: 02:00 EST becomes 03:00 EDT.
  check_fires("America/New_York", {
      {"02:30 fires at 03:00 EDT", "30 2 * * *", "2027-03-13T12:00:00Z", "2027-03-14T07:00:00Z"},
      {"then 02:30 EDT the next day", "30 2 * * *", "2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"},
  });
}

TEST_CASE("a wall-clock time repeated by fall-back fires once, at its first occurrence", "[cron]") {
  // Europe/Berlin 2027-10-31 01:00 UTC: 03:00 CEST becomes 02:00 CET.
  check_fires("Europe/Berlin", {
      {"02:30 fires at 02:30 CEST", "30 2 * * *", "2027-10-30T12:00:00Z", "2027-10-31T00:30:00Z"},
      {"and not at 02:30 CET", "30 2 * * *", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"},
      {"not even from inside the repeat", "30 2 * * *", "2027-10-31T01:15:00Z", "2027-11-01T01:30:00Z"},
      {"hourly: the repeated 02:00 is skipped", "0 * * * *", "2027-10-31T00:00:00Z", "2027-10-31T02:00:00Z"},
  });
  // America/New_York 2027-11-07 06:00 UTC: 02:00 EDT becomes 01:00 EST.
  check_fires("America/New_York", {
      {"01:30 fires at 01:30 EDT", "30 1 * * *", "2027-11-06T12:00:00Z", "2027-11-07T05:30:00Z"},
      {"then 01:30 EST the next day", "30 1 * * *", "2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"},
  });
}

TEST_CASE("every wall-clock slot of a transition day fires once, in increasing order", "[cron]") {
  struct Day {
    std::string_view name;
    std::string_view local_midnight;  // UTC instants of the day's local start and end
    std::string_view next_midnight;
    std::size_t expected_fires;
  };
  // 96 quarter hours a day; on spring-forward 02:00-02:45 all fire together with 03:00.
  const Day day = GENERATE(Day{"spring-forward", "2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z", 92},
                           Day{"fall-back", "2027-10-30T22:00:00Z", "2027-10-31T23:00:00Z", 96});
  INFO(day.name);
  const auto cron = CronExpression::parse("*/15 * * * *", "Europe/Berlin");
  const auto end = parse_timestamp(day.next_midnight);
  auto t = parse_timestamp(day.local_midnight) - std::chrono::minutes(1);
  std::size_t fires = 0;
  while (true) {
    const auto next = cron.next_after(t);
    REQUIRE(next);
    REQUIRE(*next > t);
    if (*next >= end) break;
    t = *next;
    ++fires;
  }
  CHECK(fires == day.expected_fires);
}

TEST_CASE("a parsed expression keeps its text and time zone", "[cron]") {
  const auto cron = CronExpression::parse("0 9 * * MON-FRI", "Europe/Berlin");
  CHECK(cron.expression() == "0 9 * * MON-FRI");
  CHECK(cron.time_zone() == "Europe/Berlin");
  CHECK(CronExpression::parse("@daily").time_zone() == "UTC");
}

TEST_CASE("an invalid expression throws invalid_cron naming the field and the problem", "[cron]") {
  // std::system_error appends the category's text (": invalid cron expression").
  CHECK_THAT(parse_error("61 * * * *"),
             Catch::StartsWith("cron \"61 * * * *\": minute field \"61\" is out of range 0-59"));

  struct ErrorCase {
    std::string_view expression;
    std::string_view field;
    std::string_view problem;
  };
  for (const auto& c : std::initializer_list<ErrorCase>{
           {"* * * *", "expected 5 fields", "found 4"},
           {"* * * * * *", "expected 5 fields", "found 6"},
           {"", "expected 5 fields", "found 0"},
           {"1,,2 * * * *", "minute field \"1,,2\"", "empty list element"},
           {"1, * * * *", "minute field \"1,\"", "empty list element"},
           {"5- * * * *", "minute field \"5-\"", "missing a value"},
           {"*/ * * * *", "minute field \"*/\"", "missing a step"},
           {"* x * * *", "hour field \"x\"", "is not a number"},
           {"* 1x * * *", "hour field \"1x\"", "is not a number"},
           {"0 0 MON * *", "day-of-month field \"MON\"", "is not a number"},
           {"0 24 * * *", "hour field \"24\"", "out of range 0-23"},
           {"0 0 0 * *", "day-of-month field \"0\"", "out of range 1-31"},
           {"0 0 32 * *", "day-of-month field \"32\"", "out of range 1-31"},
           {"0 0 * 13 *", "month field \"13\"", "out of range 1-12"},
           {"0 0 * * 8", "day-of-week field \"8\"", "out of range 0-7"},
           {"1,99999999999 * * * *", "minute field \"1,99999999999\": \"99999999999\"", "out of range"},
           {"0 5-3 * * *", "hour field \"5-3\"", "reversed range (5 > 3)"},
           {"0 0 * * FRI-MON", "day-of-week field \"FRI-MON\"", "reversed range (5 > 1)"},
           {"*/0 * * * *", "minute field \"*/0\"", "step 0"},
           {"0 0 * FOO *", "month field \"FOO\"", "not a known name (expected JAN-DEC"},
           {"0 0 * * MONDAY", "day-of-week field \"MONDAY\"", "not a known name (expected SUN-SAT"},
           {"@every", "unknown macro \"@every\"", "@hourly"},
           {"@daily 5", "unknown macro \"@daily 5\"", "@daily"},
       }) {
    INFO("\"" << c.expression << "\"");
    const std::string message = parse_error(c.expression);
    CHECK_THAT(message, Catch::StartsWith("cron \"" + std::string(c.expression) + "\": ") &&
                            Catch::Contains(std::string(c.field)) &&
                            Catch::Contains(std::string(c.problem)));
  }
}

TEST_CASE("an unknown time zone throws invalid_cron naming the zone", "[cron]") {
  CHECK_THAT(parse_error("0 9 * * *", "Mars/Base"),
             Catch::StartsWith("unknown time zone \"Mars/Base\""));
  CHECK_THAT(parse_error("0 9 * * *", ""), Catch::Contains("unknown time zone \"\""));
}

TEST_CASE("in a zone on local mean time the next occurrence is still strictly after the instant asked about",
          "[cron]") {
  // Found by fuzzing. Before 1883 New York ran on local mean time, UTC-4:56:02, so its
  // midnight is 04:56:02 UTC; next_after compared with the instant cut to the minute and
  // returned the same occurrence again, which would fire one schedule run forever.
  const auto weekly = CronExpression::parse("@weekly", "America/New_York");
  const auto first = weekly.next_after(parse_timestamp("1013-11-01T05:59:00Z"));
  REQUIRE(first);
  CHECK(format_timestamp(*first) == "1013-11-07T04:56:02.000000Z");
  const auto second = weekly.next_after(*first);
  REQUIRE(second);
  CHECK(*second - *first == std::chrono::weeks(1));
}

TEST_CASE("cron has no occurrence outside years 0000-9999", "[cron]") {
  const auto new_year = CronExpression::parse("0 0 1 1 *");
  CHECK(next_fire("0 0 1 1 *", "UTC", "9999-06-01T00:00:00Z") == "none");
  CHECK_FALSE(new_year.next_after(omniq::max_timestamp));
  CHECK_FALSE(new_year.next_after(omniq::Timestamp::max()));
  CHECK(new_year.next_after(omniq::Timestamp::min()) == omniq::min_timestamp);
  // The same in a zone whose local mean time has a seconds offset (Lord Howe, +10:36:20).
  const auto early = CronExpression::parse("*/9 1/3 * * *", "Australia/Lord_Howe").next_after(omniq::Timestamp::min());
  REQUIRE(early);
  CHECK(*early >= omniq::min_timestamp);
}
