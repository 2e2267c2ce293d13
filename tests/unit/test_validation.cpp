#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "omniq/error.hpp"
#include "omniq/uuid.hpp"
#include "omniq/validation.hpp"

using omniq::errc;

namespace {

// What a call threw: the omniq::Error's kind and message. Fails the test if nothing was thrown.
struct Thrown {
  errc kind;
  std::string message;
};

template <class F>
Thrown error_of(F&& f) {
  try {
    f();
  } catch (const omniq::Error& e) {
    return {e.kind(), e.what()};
  }
  FAIL("expected an omniq::Error");
  return {};
}

}  // namespace

TEST_CASE("safe subject tokens are accepted", "[validation]") {
  for (const std::string& name :
       std::vector<std::string>{"default", "high_priority", "Queue-1", "a", "_", "-", "0", omniq::new_uuid(),
                                std::string(128, 'q')}) {
    INFO(name);
    CHECK_NOTHROW(omniq::validate_token("queue_name", name));
    CHECK(omniq::is_valid_token(name));
  }
}

TEST_CASE("a token with a character that breaks subjects is rejected naming field, character and position",
          "[validation]") {
  struct Case {
    std::string value;
    std::string shown_char;
    int position;
  };
  const Case cases[] = {
      {"a.b", "'.'", 1},
      {"emails*", "'*'", 6},
      {"q>", "'>'", 1},
      {"my queue", "' '", 2},
      {"tab\there", "'\\x09'", 3},
      {"cr\rx", "'\\x0D'", 2},
      {"lf\n", "'\\x0A'", 2},
      {"caf\xC3\xA9", "'\\xC3'", 3},
      {"del\x7F", "'\\x7F'", 3},
      {std::string("nul\0x", 5), "'\\x00'", 3},
  };
  for (const auto& c : cases) {
    INFO(c.value);
    CHECK_FALSE(omniq::is_valid_token(c.value));
    const auto e = error_of([&] { omniq::validate_token("queue_name", c.value); });
    CHECK(e.kind == errc::invalid_name);
    const std::string msg = e.message;
    CHECK_THAT(msg, Catch::StartsWith("queue_name \""));
    CHECK_THAT(msg, Catch::Contains(c.shown_char + " at position " + std::to_string(c.position) +
                                    " is not allowed"));
    CHECK_THAT(msg, Catch::Contains("use A-Z a-z 0-9 _ -, 1 to 128 characters"));
  }
}

TEST_CASE("the token error message reads as documented", "[validation]") {
  CHECK(error_of([] { omniq::validate_token("queue_name", "a.b"); }).message ==
        std::string("queue_name \"a.b\" is invalid: '.' at position 1 is not allowed "
                    "(use A-Z a-z 0-9 _ -, 1 to 128 characters)"));
  // Non-printable and non-ASCII bytes are shown escaped inside the quoted value too.
  CHECK_THAT(error_of([] { omniq::validate_token("task_id", "caf\xC3\xA9\n"); }).message,
             Catch::StartsWith("task_id \"caf\\xC3\\xA9\\x0A\" is invalid"));
}

TEST_CASE("an empty token is rejected", "[validation]") {
  const auto e = error_of([] { omniq::validate_token("queue_name", ""); });
  CHECK(e.kind == errc::invalid_name);
  CHECK(e.message == std::string("queue_name must not be empty"));
  CHECK_FALSE(omniq::is_valid_token(""));
}

TEST_CASE("a token longer than 128 characters is rejected naming the limit", "[validation]") {
  const std::string name(129, 'x');
  const auto e = error_of([&] { omniq::validate_token("task_id", name); });
  CHECK(e.kind == errc::invalid_name);
  CHECK_THAT(e.message, Catch::StartsWith("task_id \"xxxx"));
  CHECK_THAT(e.message, Catch::Contains("too long: 129 characters (at most 128)"));
  // A huge value is cut in the message.
  CHECK_THAT(e.message, Catch::Contains("...\""));
  CHECK_FALSE(omniq::is_valid_token(name));
}

TEST_CASE("KV keys allow dots, slashes and equals signs", "[validation]") {
  for (const std::string& key : std::vector<std::string>{"abc", "schedules.daily", "a/b=c_d-e", "A.B.C",
                                                         omniq::new_uuid(), std::string(256, 'k')}) {
    INFO(key);
    CHECK_NOTHROW(omniq::validate_kv_key("schedule.id", key));
  }
}

TEST_CASE("KV keys that NATS refuses are rejected with the reason", "[validation]") {
  struct Case {
    std::string key;
    std::string reason;
  };
  const Case cases[] = {
      {"", "schedule.id must not be empty"},
      {".a", "must not start with '.'"},
      {"a.", "must not end with '.'"},
      {"a..b", "\"..\" at position 1 makes an empty token"},
      {"_kv.x", "the prefix \"_kv\" is reserved"},
      {"a b", "' ' at position 1 is not allowed (use A-Z a-z 0-9 _ - = / ., 1 to 256 characters)"},
      {"a*b", "'*' at position 1 is not allowed"},
      {"a>", "'>' at position 1 is not allowed"},
      {"a\\b", "'\\' at position 1 is not allowed"},
      {"x\xC3\xA9", "'\\xC3' at position 1 is not allowed"},
      {std::string(257, 'k'), "too long: 257 characters (at most 256)"},
  };
  for (const auto& c : cases) {
    INFO(c.key);
    const auto e = error_of([&] { omniq::validate_kv_key("schedule.id", c.key); });
    CHECK(e.kind == errc::invalid_name);
    CHECK_THAT(e.message, Catch::StartsWith("schedule.id"));
    CHECK_THAT(e.message, Catch::Contains(c.reason));
  }
}
