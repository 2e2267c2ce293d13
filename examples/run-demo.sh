#!/usr/bin/env bash
# The main job, end to end: installs what is missing, builds the example programs, starts a
# local nats-server (127.0.0.1, free port, JetStream in a temporary directory), a scheduler and
# two worker processes, enqueues a few thousand tasks (some fail once and are retried, a few
# always fail and are dead-lettered), shows progress while they run, prints a summary and a
# result read back with the blocking client, then stops everything.
#
# With NATS_SERVERS or OMNIQ_CONFIG set, it uses that server instead of starting one.
# Environment: OMNIQ_BUILD_DIR (default build/), OMNIQ_BUILD_TYPE (default RelWithDebInfo),
# DEMO_TASKS (default 3000), DEMO_WORKERS (default 2), DEMO_CONCURRENCY (per worker, default 32).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/examples/local-nats.sh"
case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "run-demo.sh takes no arguments, got '$1' (see --help)" >&2; exit 64 ;;
esac

tasks=${DEMO_TASKS:-3000}
workers=${DEMO_WORKERS:-2}
concurrency=${DEMO_CONCURRENCY:-32}
for knob in "DEMO_TASKS=$tasks" "DEMO_WORKERS=$workers" "DEMO_CONCURRENCY=$concurrency"; do
  if ! [[ ${knob#*=} =~ ^[1-9][0-9]{0,6}$ ]]; then
    echo "run-demo.sh: ${knob%%=*} must be a positive integer, got '${knob#*=}'" >&2
    exit 64
  fi
done
# The mix: about 8% fail on their first attempt and are retried, a few run on the blocking
# pool, a few always fail; the rest are additions.
flaky=$((tasks * 8 / 100))
hashes=$((tasks / 75))
fails=$((tasks / 250 > 0 ? tasks / 250 : 1))
adds=$((tasks - flaky - hashes - fails))
if [ "$tasks" -lt 100 ]; then
  echo "run-demo.sh: DEMO_TASKS must be at least 100, got $tasks" >&2
  exit 64
fi

"$root/cmake/setup-deps.sh"
build=${OMNIQ_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${OMNIQ_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target omniq_examples
bin=$build/examples

say() { printf 'omniq demo: %s\n' "$*"; }
started=$(date +%s%N)
work=$(mktemp -d -t omniq-demo.XXXXXX)
pids=()      # background programs to stop at exit
monitor=""   # the monitor, while it runs
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_pids "${pids[@]}" $monitor
  if [ -n "${NATS_PID:-}" ]; then
    say "stopping nats-server"
    stop_pids "$NATS_PID"
  fi
  if [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; then
    say "interrupted; everything stopped"
  elif [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] || continue
      echo "--- last lines of $(basename "$log"):" >&2
      tail -n 20 "$log" >&2
    done
    say "failed (exit status $status)" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for_line <file> <text> <what>: waits up to 30 s for a program to log that it is ready.
wait_for_line() {
  wait_for_match "$1" "$2" 30 && return 0
  echo "$3 did not get ready within 30 s" >&2
  return 1
}

if [ -z "${NATS_SERVERS:-}" ] && [ -z "${OMNIQ_CONFIG:-}" ]; then
  start_local_nats "$work"
  export NATS_SERVERS=$NATS_URL
  say "started $(nats-server --version) on $NATS_URL (pid $NATS_PID, JetStream store in $work)"
else
  say "using the configured server (NATS_SERVERS=${NATS_SERVERS:-} OMNIQ_CONFIG=${OMNIQ_CONFIG:-})"
fi

# Scheduled tasks go to queue "default": every 2 s, and every minute on the minute.
"$bin/omniq_scheduler" --id-prefix demo --cron '* * * * *' --interval 2 --func add --args '[1, 1]' \
  >"$work/scheduler.log" 2>&1 &
pids+=($!)
for i in $(seq "$workers"); do
  "$bin/omniq_worker" --id "demo-worker-$i" --queues demo,default --concurrency "$concurrency" --stats-every 5 \
    >"$work/worker-$i.log" 2>&1 &
  pids+=($!)
done
wait_for_line "$work/scheduler.log" "scheduler running" "omniq_scheduler"
for i in $(seq "$workers"); do wait_for_line "$work/worker-$i.log" " serving " "omniq_worker $i"; done
say "scheduler running (demo-cron: every minute, demo-interval: every 2 s; add [1, 1] on queue default)"
say "$workers workers serving queues demo and default, $concurrency tasks at once each"

# The monitor follows the event log from before the first enqueue and ends once every task
# finished (or after 100 s).
since=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
"$bin/omniq_monitor" --queue demo --since "$since" --expect "$tasks" --timeout 100 &
monitor=$!

say "enqueueing $tasks tasks on queue demo: $adds add, $flaky flaky (fail once, retried), $hashes cpu_hash" \
  "(blocking pool), $fails fail (dead-lettered)"
"$bin/omniq_producer" --queue demo --batch --count "$adds" add '[1, 2]'
"$bin/omniq_producer" --queue demo --batch --count "$flaky" flaky
"$bin/omniq_producer" --queue demo --batch --count "$hashes" cpu_hash 200000
"$bin/omniq_producer" --queue demo --count "$fails" fail '"on purpose"'  # one by one

monitor_status=0
wait "$monitor" || monitor_status=$?
monitor=""
[ "$monitor_status" -eq 0 ] || { say "not every task finished in time (omniq_monitor exit $monitor_status)"; exit 1; }

say "a result read back with the blocking client (omniq_sync_client add '[20, 22]'):"
"$bin/omniq_sync_client" --timeout 30 add '[20, 22]'

say "stopping the workers and the scheduler (SIGTERM)"
stop_pids "${pids[@]}"
pids=()
grep -h "final stats" "$work"/worker-*.log
grep -h "^schedule demo-" "$work/scheduler.log"
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
say "done in $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100)) s"
