// The connection's parts that do no I/O: the table of requests waiting for a reply, and the
// parser of the server's permission violations.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <string>

#include "omniq/detail/request_table.hpp"
#include "omniq/detail/violation.hpp"

using namespace omniq::detail;
using namespace std::chrono_literals;

namespace {
using Table = RequestTable<std::function<void(std::string)>>;
using Clock = Table::Clock;

Table::Pending request(std::string subject, Clock::time_point deadline, std::string* got) {
  return Table::Pending{[got](std::string reply) { *got = std::move(reply); }, deadline, std::move(subject)};
}
}  // namespace

TEST_CASE("request table: a reply is taken once, and a late one finds nothing", "[connection]") {
  Table table;
  std::string got;
  table.add(7, request("$JS.API.STREAM.INFO.X", Clock::now() + 5s, &got));
  auto first = table.take(7);
  REQUIRE(first);
  first->handler("reply");
  CHECK(got == "reply");
  CHECK_FALSE(table.take(7));  // the same reply arriving twice, or after a cancellation
  CHECK(table.empty());
}

TEST_CASE("request table: expiry takes exactly the overdue requests", "[connection]") {
  Table table;
  std::string a, b, c;
  const auto now = Clock::now();
  table.add(1, request("s.1", now - 1ms, &a));
  table.add(2, request("s.2", now, &b));
  table.add(3, request("s.3", now + 1s, &c));
  auto expired = table.take_expired(now);
  CHECK(expired.size() == 2);
  CHECK(table.size() == 1);
  CHECK_FALSE(table.take(1));  // the reply to a timed-out request is dropped
  CHECK(table.take(3));
}

TEST_CASE("request table: close fails everything, a violation only what it names", "[connection]") {
  Table table;
  std::string ignored;
  for (std::uint64_t i = 1; i <= 4; ++i)
    table.add(i, request(i % 2 ? "omniq.tasks.q" : "$KV.omniq_results.t", Clock::now() + 5s, &ignored));
  Violation v{Violation::publish, "omniq.tasks.q", false};
  auto refused = table.take_if([&](const Table::Pending& p) { return v.matches(p.subject); });
  CHECK(refused.size() == 2);
  CHECK(table.size() == 2);
  auto all = table.take_all();
  CHECK(all.size() == 2);
  CHECK(table.empty());
}

TEST_CASE("permission violations: publish, reply and subscription forms, cut short or not", "[connection]") {
  auto pub = parse_violation("nats: Permissions Violation for Publish to \"omniq.tasks.default.normal.t1\"");
  REQUIRE(pub);
  CHECK(pub->kind == Violation::publish);
  CHECK(pub->subject == "omniq.tasks.default.normal.t1");
  CHECK_FALSE(pub->truncated);
  CHECK(pub->matches("omniq.tasks.default.normal.t1"));
  CHECK_FALSE(pub->matches("omniq.tasks.default.normal.t10"));

  auto reply = parse_violation("Permissions Violation for Publish with Reply of \"_INBOX.abc.1\"");
  REQUIRE(reply);
  CHECK(reply->kind == Violation::reply);
  CHECK(reply->subject == "_INBOX.abc.1");

  auto sub = parse_violation("Permissions Violation for Subscription to \"_INBOX.abc.*\" using queue \"q\"");
  REQUIRE(sub);
  CHECK(sub->kind == Violation::subscription);
  CHECK(sub->subject == "_INBOX.abc.*");

  // nats.c keeps 256 bytes: the subject loses its end and its closing quote.
  auto cut = parse_violation("Permissions Violation for Publish to \"$JS.API.CONSUMER.MSG.NEXT.OMNIQ_TASKS.a-very-lo");
  REQUIRE(cut);
  CHECK(cut->truncated);
  CHECK(cut->matches("$JS.API.CONSUMER.MSG.NEXT.OMNIQ_TASKS.a-very-long-consumer-name"));

  CHECK_FALSE(parse_violation("Authorization Violation"));
  CHECK_FALSE(parse_violation("Permissions Violation for Publish to nowhere"));

  CHECK(describe_violation(*pub, "user \"app\"", "the text") ==
        "user \"app\" may not publish to \"omniq.tasks.default.normal.t1\" (the NATS server refused it: the text)");
}
