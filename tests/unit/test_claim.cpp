// The rules a worker follows when a delivery's task already has a result (the claim could not
// be created), and the one classifier of transient failures. No server: the Worker does the
// reads and writes; these are the decisions.
#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/multiple_exceptions.hpp>

#include "omniq/detail/claim.hpp"
#include "omniq/detail/server_version.hpp"
#include "omniq/error.hpp"

using namespace omniq;
using omniq::detail::ClaimAsker;
using omniq::detail::ClaimVerdict;
using omniq::detail::judge_claim;

namespace {

TaskResult claim(const std::string& worker, int attempts, const std::string& claim_id) {
  TaskResult r{.task_id = "t1", .status = ResultStatus::pending};
  r.worker_id = worker;
  r.metadata["message"] = 7;
  r.metadata["attempts"] = attempts;
  r.metadata["claim"] = claim_id;
  return r;
}

const ClaimAsker me{.claim_id = "w1.i1.5", .claim_prefix = "w1.i1.", .attempt = 1, .runs_here = false};

}  // namespace

TEST_CASE("claim: no result any more means the claim is made again", "[claim]") {
  CHECK(judge_claim(std::nullopt, me) == ClaimVerdict::claim_again);
}

TEST_CASE("claim: this run's own claim, written by a try whose answer was lost, runs the task", "[claim]") {
  CHECK(judge_claim(claim("w1", 1, "w1.i1.5"), me) == ClaimVerdict::ours);
}

TEST_CASE("claim: a final outcome is settled from, never run again, whoever stored it", "[claim]") {
  for (auto status : {ResultStatus::success, ResultStatus::error, ResultStatus::cancelled, ResultStatus::expired}) {
    TaskResult r = claim("w2", 1, "w2.1");
    r.status = status;
    CHECK(judge_claim(r, me) == ClaimVerdict::done);
    CHECK(judge_claim(r, me, true) == ClaimVerdict::done);
  }
}

TEST_CASE("claim: a later attempt's claim makes this delivery obsolete, an earlier one's is taken over", "[claim]") {
  CHECK(judge_claim(claim("w2", 2, "w2.1"), me) == ClaimVerdict::superseded);
  ClaimAsker second = me;
  second.attempt = 2;
  CHECK(judge_claim(claim("w2", 1, "w2.1"), second, true) == ClaimVerdict::take_over);
}

TEST_CASE("claim: another worker's claim is respected only while that worker is alive", "[claim]") {
  const TaskResult other = claim("w2", 1, "w2.3");
  CHECK(judge_claim(other, me) == ClaimVerdict::ask_holder);
  CHECK(judge_claim(other, me, true) == ClaimVerdict::held);
  CHECK(judge_claim(other, me, false) == ClaimVerdict::take_over);
}

TEST_CASE("claim: this worker's own earlier claim is held while it runs here, taken over once it does not",
          "[claim]") {
  const TaskResult earlier = claim("w1", 1, "w1.i1.2");
  ClaimAsker running = me;
  running.runs_here = true;
  CHECK(judge_claim(earlier, running) == ClaimVerdict::held);
  CHECK(judge_claim(earlier, me) == ClaimVerdict::take_over);
}

TEST_CASE("claim: another process with the same worker id is another worker, asked whether it lives", "[claim]") {
  const TaskResult namesake = claim("w1", 1, "w1.i2.7");
  CHECK(judge_claim(namesake, me) == ClaimVerdict::ask_holder);
  CHECK(judge_claim(namesake, me, true) == ClaimVerdict::held);
}

TEST_CASE("claim: a claim naming no worker or no attempt is stale", "[claim]") {
  TaskResult anonymous = claim("", 1, "x");
  anonymous.worker_id.reset();
  CHECK(judge_claim(anonymous, me) == ClaimVerdict::take_over);
  TaskResult bare{.task_id = "t1", .status = ResultStatus::pending};
  bare.worker_id = "w2";
  CHECK(judge_claim(bare, me) == ClaimVerdict::take_over);  // attempts 0 < 1
}

TEST_CASE("claim: an outcome is this run's own only by its claim id and a final status", "[claim]") {
  TaskResult mine = claim("w1", 1, "w1.i1.5");
  CHECK_FALSE(detail::is_own_outcome(mine, "w1.i1.5"));  // still pending
  mine.status = ResultStatus::success;
  CHECK(detail::is_own_outcome(mine, "w1.i1.5"));
  CHECK_FALSE(detail::is_own_outcome(mine, "w1.i1.6"));
  CHECK_FALSE(detail::is_own_outcome(std::nullopt, "w1.i1.5"));
}

TEST_CASE("transient failures: timeouts, lost connections and elections are, refusals are not", "[claim][errors]") {
  CHECK(is_transient(errc::timeout));
  CHECK(is_transient(errc::not_connected));
  CHECK(is_transient(errc::jetstream_unavailable));
  CHECK(is_transient(errc::connection_failed));
  CHECK(is_transient(errc::nats_error));
  CHECK_FALSE(is_transient(errc::permission_denied));
  CHECK_FALSE(is_transient(errc::payload_too_large));
  CHECK_FALSE(is_transient(errc::closed));
  CHECK_FALSE(is_transient(errc::invalid_name));
  CHECK_FALSE(is_transient(errc::decode_error));
  CHECK_FALSE(is_transient(errc::stream_full));  // the caller decides whether to wait for a drain

  CHECK(detail::is_transient(std::make_exception_ptr(Error(errc::timeout, "no reply"))));
  CHECK(is_transient(make_error_code(errc::timeout)));
  CHECK_FALSE(is_transient(make_error_code(errc::permission_denied)));
  CHECK_FALSE(is_transient(boost::asio::error::make_error_code(boost::asio::error::operation_aborted)));
  CHECK_FALSE(is_transient(error_code{}));
  CHECK_FALSE(detail::is_transient(std::make_exception_ptr(Error(errc::permission_denied, "no"))));
  CHECK_FALSE(detail::is_transient(std::make_exception_ptr(std::runtime_error("a bug"))));
  CHECK_FALSE(detail::is_transient(std::exception_ptr{}));
}

TEST_CASE("transient failures: several parallel writes failing at once are judged by their first failure",
          "[claim][errors]") {
  // What Asio's awaitable operators throw when more than one operation of a group fails.
  const auto both_timed_out = std::make_exception_ptr(
      boost::asio::multiple_exceptions(std::make_exception_ptr(Error(errc::timeout, "storing the result"))));
  CHECK(detail::is_transient(both_timed_out));
  const auto refused = std::make_exception_ptr(
      boost::asio::multiple_exceptions(std::make_exception_ptr(Error(errc::permission_denied, "refused"))));
  CHECK_FALSE(detail::is_transient(refused));
}

TEST_CASE("server versions: parsed from what the server announces", "[claim][server]") {
  CHECK(detail::parse_server_version("2.10.27") == detail::ServerVersion{2, 10, 27});
  CHECK(detail::parse_server_version("v2.9.10") == detail::ServerVersion{2, 9, 10});
  CHECK(detail::parse_server_version("2.11.0-RC.1") == detail::ServerVersion{2, 11, 0});
  CHECK_FALSE(detail::parse_server_version("2.10"));
  CHECK_FALSE(detail::parse_server_version("two"));
  CHECK_FALSE(detail::parse_server_version(""));
}

TEST_CASE("server versions: a server with the replica renumbering bug is named when replicas are configured",
          "[claim][server]") {
  Config single;
  CHECK_FALSE(detail::server_version_warning("2.9.10", single));  // R1: the bug needs replicas
  Config replicated;
  replicated.results_bucket.replicas = 3;
  const auto warning = detail::server_version_warning("2.9.10", replicated);
  REQUIRE(warning);
  CHECK_THAT(*warning, Catch::Contains("2.9.10") && Catch::Contains("2.9.21") && Catch::Contains("#4365"));
  CHECK_FALSE(detail::server_version_warning("2.9.21", replicated));
  CHECK_FALSE(detail::server_version_warning("2.10.27", replicated));
  CHECK_FALSE(detail::server_version_warning("garbage", replicated));
}
