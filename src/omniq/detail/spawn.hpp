// Starting a child process for LocalServer and the multi-process tests.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace omniq::detail {

// Forks and execs `args` (args[0] is the executable's path) with stdout and stderr to `log`
// (appended to, or truncated first), stdin from /dev/null, no inherited descriptors beyond
// those three, no blocked signals and default SIGTERM/SIGINT/SIGPIPE handling. The child is
// killed when the thread that called this ends (PR_SET_PDEATHSIG), so a crashed test leaves no
// process behind. Returns its pid; throws errc::server_error if fork fails. An exec failure
// shows as exit status 127.
pid_t spawn_child(std::vector<std::string> args, const std::filesystem::path& log, bool append);

}  // namespace omniq::detail
