// Reading JetStream API answers that carry no error but cannot always be trusted. No I/O: the
// NATS-free core holds it, so unit tests reach it without a server.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace omniq::detail {

struct ConsumerState {
  std::uint64_t num_pending = 0;      // not yet delivered
  std::uint64_t num_ack_pending = 0;  // delivered, not yet acknowledged
  std::uint64_t num_redelivered = 0;
};

// The counts of a consumer info answer. A clustered consumer without a leader (an election under
// way after a node failed or came back) is answered by a replica whose counts may be zero
// whatever the stream holds: that answer is refused with a transient errc::nats_error, so a
// queue never looks drained because of an election.
ConsumerState consumer_counts(const nlohmann::json& info, const std::string& stream, const std::string& name);

}  // namespace omniq::detail
