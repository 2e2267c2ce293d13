#!/usr/bin/env bash
# Installs what is missing, builds omniq and runs the demo: with no NATS_SERVERS (or
# OMNIQ_CONFIG) set, the demo starts its own nats-server on 127.0.0.1 with JetStream in a
# temporary directory and stops it at the end. Extra arguments go to the demo program.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/cmake/setup-deps.sh"

build=${OMNIQ_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${OMNIQ_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target omniq_demo

exec "$build/examples/omniq_demo" "$@"
