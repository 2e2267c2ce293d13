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
