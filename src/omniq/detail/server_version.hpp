// The version of the nats-server omniq is connected to, and what follows from it. nats.c 3.4.1
// does not expose the version the server announces, so it is read from the server's INFO line
// on a short-lived second socket at connect.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "omniq/config.hpp"

namespace omniq::detail {

using ServerVersion = std::array<int, 3>;  // major, minor, patch

// "2.10.27", "v2.9.10", "2.11.0-RC.1" -> {2, 10, 27} ...; nullopt for anything else.
std::optional<ServerVersion> parse_server_version(std::string_view text);

// The "version" of the INFO line the server at `url` (as nats.c reports it: nats://host:port)
// sends first on a new connection; nullopt when it cannot be read within `timeout`. Blocking.
std::optional<std::string> read_server_version(const std::string& url, std::chrono::milliseconds timeout);

// The warning to log for this server and configuration, if any: servers before 2.9.21 can
// number the same message differently on different replicas after a leader change
// (nats-server PR #4365), which breaks KV compare-and-set on streams or buckets with
// replicas > 1.
std::optional<std::string> server_version_warning(std::string_view version, const Config& config);

}  // namespace omniq::detail
