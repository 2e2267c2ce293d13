// The connection's parts that do no I/O: the table of requests waiting for a reply, the table
// of pulls (one active per consumer, the rest waiting), and the parser of the server's
// permission violations.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "omniq/detail/fetch_table.hpp"
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

namespace {
// A pull carries what it received; a queued pull is its name.
struct Pull {
  std::string name;
  std::vector<std::string> got{};
};
using Pulls = FetchTable<Pull, std::string>;
const int kTagA = 1, kTagB = 2, kTagC = 3;  // cancellation tags: their addresses
}  // namespace

TEST_CASE("fetch table: one active pull per consumer, the others wait in order", "[connection]") {
  Pulls table;
  const auto later = Clock::now() + 5s;
  REQUIRE_FALSE(table.busy("S.c1"));
  table.activate("S.c1", 1, later, &kTagA, Pull{"first"});
  CHECK(table.busy("S.c1"));
  CHECK_FALSE(table.busy("S.c2"));  // another consumer pulls side by side
  table.wait("S.c1", &kTagB, "second");
  table.wait("S.c1", &kTagC, "third");
  CHECK_FALSE(table.next("S.c1"));  // nothing starts while one is active

  // Deliveries go to the active pull of their consumer.
  REQUIRE(table.active("S.c1"));
  table.active("S.c1")->got.push_back("m1");
  CHECK(table.active("S.c2") == nullptr);  // a late delivery finds no pull

  auto done = table.take_active("S.c1");
  REQUIRE(done);
  CHECK(done->name == "first");
  CHECK(done->got == std::vector<std::string>{"m1"});
  CHECK_FALSE(table.is_pull(1));  // its late status message is an ordinary reply now
  CHECK(table.next("S.c1") == "second");
  table.activate("S.c1", 2, later, &kTagB, Pull{"second"});
  CHECK_FALSE(table.next("S.c1"));
  REQUIRE(table.take_active("S.c1"));
  CHECK(table.next("S.c1") == "third");
  CHECK_FALSE(table.next("S.c1"));
  CHECK(table.empty());  // a consumer's slot goes when nothing is left in it
}

TEST_CASE("fetch table: a status ends the pull it answers, once", "[connection]") {
  Pulls table;
  table.activate("S.c1", 7, Clock::now() + 5s, &kTagA, Pull{"p7"});
  CHECK(table.is_pull(7));
  CHECK_FALSE(table.is_pull(8));
  auto taken = table.take_by_id(7);
  REQUIRE(taken);
  CHECK(taken->first == "S.c1");
  CHECK(taken->second.name == "p7");
  CHECK_FALSE(table.take_by_id(7));   // a second status (a 408 after a 404) finds nothing
  CHECK_FALSE(table.take_active("S.c1"));
  CHECK(table.empty());
}

TEST_CASE("fetch table: expiry ends exactly the overdue active pulls and leaves the waiting ones", "[connection]") {
  Pulls table;
  const auto now = Clock::now();
  table.activate("S.c1", 1, now - 1ms, &kTagA, Pull{"overdue"});
  table.wait("S.c1", &kTagB, "behind");
  table.activate("S.c2", 2, now, &kTagA, Pull{"due now"});
  table.activate("S.c3", 3, now + 1s, &kTagA, Pull{"in time"});
  auto expired = table.take_expired(now);
  REQUIRE(expired.size() == 2);
  std::vector<std::string> names{expired[0].second.name, expired[1].second.name};
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"due now", "overdue"});
  CHECK_FALSE(table.is_pull(1));
  CHECK_FALSE(table.is_pull(2));
  CHECK(table.is_pull(3));
  CHECK(table.next("S.c1") == "behind");  // the caller starts what waited behind an expired pull
  CHECK(table.consumers() == 1);
}

TEST_CASE("fetch table: a cancellation takes the tagged pull, active or waiting, and nothing else", "[connection]") {
  Pulls table;
  table.activate("S.c1", 1, Clock::now() + 5s, &kTagA, Pull{"active"});
  table.wait("S.c1", &kTagB, "waiting B");
  table.wait("S.c1", &kTagC, "waiting C");

  auto b = table.cancel("S.c1", &kTagB);
  CHECK(b.active.empty());
  REQUIRE(b.waiting.size() == 1);
  CHECK(b.waiting[0].second == "waiting B");
  CHECK(table.cancel("S.c2", &kTagB).size() == 0);  // another consumer's pull is not touched
  CHECK(table.cancel("S.c1", &kTagB).size() == 0);  // cancelling twice takes nothing more

  auto a = table.cancel("S.c1", &kTagA);
  REQUIRE(a.active.size() == 1);
  CHECK(a.active[0].second.name == "active");
  CHECK_FALSE(table.is_pull(1));
  CHECK(table.next("S.c1") == "waiting C");  // the one left starts next
  CHECK(table.empty());
}

TEST_CASE("fetch table: close fails every pull, a violation only its consumers'", "[connection]") {
  Pulls table;
  const auto later = Clock::now() + 5s;
  table.activate("OMNIQ_TASKS.lane_a", 1, later, &kTagA, Pull{"a"});
  table.wait("OMNIQ_TASKS.lane_a", &kTagB, "a2");
  table.activate("OMNIQ_TASKS.lane_b", 2, later, &kTagA, Pull{"b"});
  table.activate("OTHER.c", 3, later, &kTagA, Pull{"o"});

  Violation v{Violation::publish, "$JS.API.CONSUMER.MSG.NEXT.OMNIQ_TASKS.lane_a", false};
  auto refused = table.take_if([&](const std::string& key) { return v.matches("$JS.API.CONSUMER.MSG.NEXT." + key); });
  REQUIRE(refused.active.size() == 1);
  CHECK(refused.active[0].second.name == "a");
  REQUIRE(refused.waiting.size() == 1);  // a pull waiting behind a refused one would be refused too
  CHECK(refused.waiting[0].second == "a2");
  CHECK_FALSE(table.is_pull(1));
  CHECK(table.is_pull(2));
  CHECK(table.is_pull(3));

  auto all = table.take_all();
  CHECK(all.active.size() == 2);
  CHECK(all.waiting.empty());
  CHECK(table.empty());
  CHECK_FALSE(table.is_pull(2));
  CHECK_FALSE(table.is_pull(3));
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
