#include "omniq/detail/js_answers.hpp"

#include "omniq/error.hpp"

namespace omniq::detail {

ConsumerState consumer_counts(const nlohmann::json& info, const std::string& stream, const std::string& name) {
  if (const auto cluster = info.find("cluster"); cluster != info.end() && cluster->is_object() &&
                                                 cluster->value("leader", std::string()).empty())
    throw_error(errc::nats_error, "reading consumer " + name + " of " + stream +
                                      ": it has no leader yet (the cluster is electing one), so its counts are unknown");
  return ConsumerState{info.value("num_pending", std::uint64_t{0}), info.value("num_ack_pending", std::uint64_t{0}),
                       info.value("num_redelivered", std::uint64_t{0})};
}

}  // namespace omniq::detail
