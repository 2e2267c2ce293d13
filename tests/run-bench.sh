#!/usr/bin/env bash
# Installs what is missing, builds omniq in Release and runs its benchmark: each
# scenario through omniq and through raw nats.c on one local nats-server, one JSON line each.
# Arguments go to omniq_bench: scenario names run a subset, e.g. `tests/run-bench.sh dequeue_ack`.
# Environment: OMNIQ_BENCH_BUILD_DIR (default build-bench/), OMNIQ_BENCH_N (scales every scenario).
# stdout carries only the JSON lines; build output goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/cmake/setup-deps.sh" >&2

build=${OMNIQ_BENCH_BUILD_DIR:-$root/build-bench}
# Warnings stay on but are not fatal here: g++ 12 at -O3 reports false positives (e.g.
# -Wrestrict inside std::string's operator+) that the -O2 builds of run-tests.sh, which
# keep them fatal, do not.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DOMNIQ_WARNINGS_AS_ERRORS=OFF >&2
cmake --build "$build" -j "$(nproc)" --target omniq_bench >&2

exec "$build/tests/bench/omniq_bench" "$@"
