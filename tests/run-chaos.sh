#!/usr/bin/env bash
# Runs the chaos scenario (tests/reliability/test_chaos.cpp: a 3-node cluster on loopback, tasks
# flowing, nodes and workers killed at random) RUNS times with the seeds SEED, SEED+1, ... and
# prints each run's summary line (lost, re-runs, drain time), then a total. Set-up as
# tests/run-tests.sh (installs what is missing, builds). A failed run's log is kept.
#   tests/run-chaos.sh [RUNS (default 10)] [SEED (default random)]
# Environment: OMNIQ_CHAOS_SECONDS (how long faults go on per run, 60), OMNIQ_NATS_SERVER (the
# nats-server binary, e.g. another version), OMNIQ_BUILD_DIR (default build/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/cmake/setup-deps.sh"

runs=${1:-10}
seed=${2:-$(( (RANDOM << 15) | RANDOM ))}
case "$runs$seed" in *[!0-9]*) echo "usage: tests/run-chaos.sh [RUNS] [SEED] (whole numbers)" >&2; exit 2 ;; esac

build=${OMNIQ_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${OMNIQ_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target omniq_reliability_tests omniq_test_worker >/dev/null
logs="$build/chaos-logs"
mkdir -p "$logs"
echo "chaos: $runs run(s) from seed $seed on $("${OMNIQ_NATS_SERVER:-nats-server}" --version)"

failed=0
for ((i = 0; i < runs; i++)); do
  s=$((seed + i))
  log="$logs/seed-$s.log"
  start=$SECONDS
  if OMNIQ_CHAOS_SEED=$s "$build/tests/omniq_reliability_tests" "[chaos]" >"$log" 2>&1; then
    verdict=passed
  else
    verdict="FAILED (log: $log)"
    failed=$((failed + 1))
  fi
  line=$(grep -h "chaos summary" "$log" || echo "chaos summary: seed=$s (no summary)")
  [ "$verdict" = passed ] && rm -f "$log"
  echo "${line#chaos summary: } run_s=$((SECONDS - start)) $verdict"
done
echo "chaos: $((runs - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
