// How omniq reads JetStream API answers that carry no error but cannot be trusted.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "omniq/detail/js_answers.hpp"
#include "omniq/error.hpp"

using namespace omniq;
using nlohmann::json;

// The shape is the one a 3-node cluster answered right after its stream leader came back
// (seen in the cluster failover test): a replica, no leader, counts of zero while 2000
// tasks were stored. Reported as a size, it made the queue look drained.
TEST_CASE("a consumer info answered without a leader is refused as transient, never read as zero counts",
          "[jetstream]") {
  const json leaderless = json::parse(R"({"stream_name":"OMNIQ_TASKS","name":"omniq_lead_normal",
      "num_pending":0,"num_ack_pending":0,"num_redelivered":0,
      "delivered":{"consumer_seq":0,"stream_seq":0},
      "cluster":{"name":"omniq_test","replicas":[{"name":"n3","current":false}]}})");
  try {
    detail::consumer_counts(leaderless, "OMNIQ_TASKS", "omniq_lead_normal");
    FAIL("counts were read from a consumer without a leader");
  } catch (const Error& e) {
    CHECK(is_transient(e.code()));
    CHECK_THAT(e.what(), Catch::Contains("omniq_lead_normal") && Catch::Contains("no leader"));
  }

  json led = leaderless;
  led["cluster"]["leader"] = "n2";
  led["num_pending"] = 1990;
  led["num_ack_pending"] = 10;
  const auto counts = detail::consumer_counts(led, "OMNIQ_TASKS", "omniq_lead_normal");
  CHECK(counts.num_pending == 1990);
  CHECK(counts.num_ack_pending == 10);

  json single_server = led;  // no cluster at all: the one server is the leader
  single_server.erase("cluster");
  CHECK(detail::consumer_counts(single_server, "OMNIQ_TASKS", "omniq_lead_normal").num_pending == 1990);
}
