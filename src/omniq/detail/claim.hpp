// The claim judgement: what a worker does with a delivery whose task already has a result
// (the claim could not be created). Plain logic over the result read through the bucket's
// leader, so the rules are tested without a server (tests/unit/test_claim.cpp); the Worker
// does the reads and writes. docs/reliability.md states the rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "omniq/models/result.hpp"

namespace omniq::detail {

// Result metadata a claim carries: the delivery's stream sequence, its attempt, and the
// claim id, unique per run, by which a run recognises its own writes.
inline constexpr const char* kClaimMessageKey = "message";
inline constexpr const char* kClaimAttemptsKey = "attempts";
inline constexpr const char* kClaimIdKey = "claim";

// The run asking. Claim ids are "<worker id>.<instance>.<n>": the instance tells a Worker
// object from another one configured with the same worker id.
struct ClaimAsker {
  std::string_view claim_id;
  std::string_view claim_prefix;  // "<worker id>.<instance>." of the asking Worker
  int attempt = 1;                // the delivery's retry_count + 1
  bool runs_here = false;         // another run of this task id is under way in this process
};

enum class ClaimVerdict {
  claim_again,   // no result any more (deleted): create the claim again
  ours,          // this run's own claim: a write whose answer was lost landed; run the task
  done,          // a final outcome is stored: settle from it, never run again
  superseded,    // a later attempt of the task holds it: this delivery is obsolete (ack it)
  held,          // a live run holds it: set this delivery aside (defer), never ack it
  take_over,     // the holder is gone, or this attempt replaces an earlier one: claim over it
  ask_holder,    // held by another worker: ask whether it is alive, then judge again
};

// The claim id a stored result carries ("" when none).
inline std::string_view claim_id_of(const TaskResult& stored) {
  const auto& meta = stored.metadata;
  if (!meta.is_object()) return {};
  const auto it = meta.find(kClaimIdKey);
  return it != meta.end() && it->is_string() ? std::string_view(it->get_ref<const std::string&>()) : std::string_view();
}

// The attempt a stored claim or outcome was written by (0 when it does not say).
inline int attempts_of(const TaskResult& stored) {
  const auto& meta = stored.metadata;
  if (meta.is_object() && meta.contains(kClaimAttemptsKey) && meta[kClaimAttemptsKey].is_number_integer())
    return meta[kClaimAttemptsKey].get<int>();
  return 0;
}

// `holder_alive` is nullopt until the caller asked (ask_holder).
inline ClaimVerdict judge_claim(const std::optional<TaskResult>& stored, const ClaimAsker& asker,
                                std::optional<bool> holder_alive = std::nullopt) {
  if (!stored) return ClaimVerdict::claim_again;
  if (stored->status != ResultStatus::pending) return ClaimVerdict::done;
  const std::string_view claim_id = claim_id_of(*stored);
  if (!claim_id.empty() && claim_id == asker.claim_id) return ClaimVerdict::ours;
  const int attempts = attempts_of(*stored);
  // A retry is enqueued before the attempt before it is acked: a later attempt's claim means
  // the task lives on in that attempt's message (or its outcome).
  if (attempts > asker.attempt) return ClaimVerdict::superseded;
  if (attempts < asker.attempt) return ClaimVerdict::take_over;
  if (stored->worker_id.value_or("").empty()) return ClaimVerdict::take_over;
  if (!asker.claim_prefix.empty() && claim_id.starts_with(asker.claim_prefix))  // this Worker's own, earlier
    return asker.runs_here ? ClaimVerdict::held : ClaimVerdict::take_over;
  if (!holder_alive) return ClaimVerdict::ask_holder;
  return *holder_alive ? ClaimVerdict::held : ClaimVerdict::take_over;
}

// Whether `stored` is this run's own final outcome (a write whose answer was lost landed).
inline bool is_own_outcome(const std::optional<TaskResult>& stored, std::string_view claim_id) {
  return stored && stored->status != ResultStatus::pending && claim_id_of(*stored) == claim_id;
}

}  // namespace omniq::detail
