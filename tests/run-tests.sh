#!/usr/bin/env bash
# Installs what is missing, builds omniq and runs every test with ctest.
# Extra arguments go to ctest, e.g. `tests/run-tests.sh -L unit` or `-R cron`.
# Environment: OMNIQ_BUILD_DIR (default build/), OMNIQ_BUILD_TYPE (default RelWithDebInfo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/cmake/setup-deps.sh"

build=${OMNIQ_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${OMNIQ_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build" -j "$(nproc)"

cd "$build"
# Every integration test starts its own nats-server on a free loopback port, so tests can run
# two at a time on this 2-core machine.
ctest --output-on-failure --timeout 600 -j 2 "$@"
