#include <catch2/catch.hpp>

#include "omniq/error.hpp"
#include "omniq/time.hpp"

using namespace omniq;
using namespace std::chrono;

TEST_CASE("timestamps format as ISO-8601 UTC with microseconds and parse back exactly", "[time]") {
  const Timestamp t = sys_days(year(2026) / 11 / 27) + hours(8) + minutes(21) + seconds(38) + microseconds(123456);
  CHECK(format_timestamp(t) == "2026-11-27T08:21:38.123456Z");
  CHECK(parse_timestamp(format_timestamp(t)) == t);
  const Timestamp n = now();
  CHECK(parse_timestamp(format_timestamp(n)) == n);
}

TEST_CASE("timestamps with an offset or fewer fraction digits are read as the same instant", "[time]") {
  CHECK(parse_timestamp("2026-11-27T10:21:38+02:00") == parse_timestamp("2026-11-27T08:21:38Z"));
  CHECK(parse_timestamp("2026-11-27T03:21:38-0500") == parse_timestamp("2026-11-27T08:21:38Z"));
  CHECK(parse_timestamp("2026-11-27T08:21:38.5Z") == parse_timestamp("2026-11-27T08:21:38.500000Z"));
  // Digits past microseconds are dropped (Python writes 6, others may write 9).
  CHECK(parse_timestamp("2026-11-27T08:21:38.123456789Z") == parse_timestamp("2026-11-27T08:21:38.123456Z"));
}

TEST_CASE("malformed timestamps are rejected with the text and the reason", "[time]") {
  for (const char* bad : {"", "2026-11-27", "2026-11-27T08:21:38", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-11-27T25:00:00Z", "2026-11-27T08:21:38.Z", "2026-11-27T08:21:38Zjunk", "yesterday"}) {
    INFO(bad);
    try {
      parse_timestamp(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == errc::invalid_argument);
      CHECK_THAT(e.what(), Catch::Contains(std::string("\"") + bad + "\""));
    }
  }
}

TEST_CASE("timestamps are read only within years 0000-9999 UTC, the range they format back in", "[time]") {
  CHECK(parse_timestamp("0000-01-01T00:00:00Z") == min_timestamp);
  CHECK(parse_timestamp("9999-12-31T23:59:59.999999Z") == max_timestamp);
  CHECK(parse_timestamp(format_timestamp(min_timestamp)) == min_timestamp);
  CHECK(parse_timestamp(format_timestamp(max_timestamp)) == max_timestamp);
  // Found by fuzzing: an offset moved these into year -1 and 10000, which format_timestamp
  // writes as text that does not parse back, so a stored model could not be read again.
  for (const char* outside : {"9999-12-31T23:30:00-01:00", "0000-01-01T00:30:00+01:00", "9999-12-31T23:59:60Z"}) {
    INFO(outside);
    try {
      parse_timestamp(outside);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == errc::invalid_argument);
      CHECK_THAT(e.what(), Catch::Contains("outside years 0000-9999"));
    }
  }
}

TEST_CASE("timestamp fields with a sign are rejected", "[time]") {
  // std::from_chars took "-1" as an hour, so these were read as valid instants.
  for (const char* signed_field : {"2026-01-01T-1:00:00Z", "2026-01-01T00:-5:00Z", "2026-01-01T00:00:-1Z",
                                   "-001-01-01T00:00:00Z", "2026-01-01T00:00:00+-1:00"}) {
    INFO(signed_field);
    CHECK_THROWS_AS(parse_timestamp(signed_field), Error);
  }
}
