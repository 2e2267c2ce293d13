#!/usr/bin/env bash
# Smoke test of the example programs against a local nats-server of its own: bad input is
# refused; 20 tasks (one flaky, one failing, one on the blocking pool, one delayed) are drained
# by one worker with the counts the monitor and the worker report; the blocking client gets a
# success, an error and a timeout; the scheduler fires its interval schedule; SIGTERM stops the
# long-running programs cleanly. ctest runs it (label "examples").
#
#   examples/smoke-test.sh <directory of the omniq_* programs>
set -euo pipefail
bin=${1:?usage: smoke-test.sh <directory of the omniq_* example programs>}
bin=$(cd "$bin" && pwd)
source "$(dirname "${BASH_SOURCE[0]}")/local-nats.sh"

work=$(mktemp -d -t omniq-smoke.XXXXXX)
pids=()
cleanup() {
  local status=$?
  trap - EXIT
  stop_pids "${pids[@]}"
  [ -n "${NATS_PID:-}" ] && stop_pids "$NATS_PID"
  if [ "$status" -ne 0 ]; then
    for log in "$work"/*.log "$work"/out; do
      [ -f "$log" ] || continue
      echo "--- $(basename "$log"):" >&2
      tail -n 40 "$log" >&2
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "smoke test FAILED: $*" >&2
  exit 1
}
# expect_status <status> <command...>: runs it (output in $work/out) and checks its exit status.
expect_status() {
  local want=$1 got=0
  shift
  "$@" >"$work/out" 2>&1 || got=$?
  [ "$got" = "$want" ] || fail "'$*' exited with $got, expected $want; output: $(cat "$work/out")"
}
# expect_output <extended regex>: the last command's output matches.
expect_output() {
  grep -Eq -- "$1" "$work/out" || fail "output does not match '$1': $(cat "$work/out")"
}
# wait_for <file> <extended regex> <seconds>: until a line of the file matches.
wait_for() {
  wait_for_match "$1" "$2" "$3" || fail "$(basename "$1") has no line matching '$2' after $3 s"
}

unset OMNIQ_CONFIG NATS_USER NATS_PASSWORD NATS_TOKEN NATS_TLS_CERT NATS_TLS_KEY NATS_TLS_CA
start_local_nats "$work"
export NATS_SERVERS=$NATS_URL
echo "smoke test: nats-server on $NATS_URL"

# Bad input: a message and exit status 64; --help: 0.
expect_status 64 "$bin/omniq_producer"
expect_output "missing <func>"
expect_status 64 "$bin/omniq_producer" add '[1,'
expect_output "json-args is not valid JSON"
expect_status 64 "$bin/omniq_producer" --queue a.b add
expect_output "queue_name \"a.b\" is invalid"
expect_status 64 "$bin/omniq_producer" --count 0 add
expect_status 64 "$bin/omniq_worker" --concurrency lots
expect_status 64 "$bin/omniq_worker" --bogus
expect_output "unknown option --bogus"
expect_status 64 "$bin/omniq_scheduler" --cron '61 * * * *'
expect_status 64 "$bin/omniq_sync_client" --config "$work/missing.json" add
expect_output "missing.json"
expect_status 64 "$bin/omniq_monitor" --since yesterday
printf '{"servrs": "nats://127.0.0.1:4222"}\n' >"$work/typo.json"
expect_status 64 "$bin/omniq_worker" --config "$work/typo.json"
expect_output "servrs"
expect_status 0 "$bin/omniq_sync_client" --help
expect_output "^usage: omniq_sync_client"
NATS_SERVERS=nats://127.0.0.1:1 expect_status 1 "$bin/omniq_producer" add
expect_output "cannot connect"

# The long-running programs: the scheduler for 3 s (an interval of 1 s fires at least once),
# the monitor counting queue "smoke", one worker.
"$bin/omniq_scheduler" --id-prefix smoke --interval 1 --run-for 3 --func add --args '[5, 5]' >"$work/scheduler.log" 2>&1 &
scheduler=$!
pids+=("$scheduler")
"$bin/omniq_monitor" --queue smoke --since "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" --expect 20 --timeout 60 \
  >"$work/monitor.log" 2>&1 &
monitor=$!
pids+=("$monitor")
"$bin/omniq_worker" --id smoke-worker --queues smoke,default --concurrency 4 --stats-every 0.5 >"$work/worker.log" 2>&1 &
worker=$!
pids+=("$worker")

# 20 tasks: 16 additions as a batch, then one by one a flaky one, one that fails, one on the
# blocking pool and one delayed sleep.
expect_status 0 "$bin/omniq_producer" --queue smoke --count 16 --batch add '[1, 2]'
expect_output "^enqueued 16 add tasks on queue smoke as one batch"
expect_status 0 "$bin/omniq_producer" --queue smoke flaky
expect_output "^[0-9a-f-]{36}$"
expect_status 0 "$bin/omniq_producer" --queue smoke fail
expect_status 0 "$bin/omniq_producer" --queue smoke cpu_hash 100000
expect_status 0 "$bin/omniq_producer" --queue smoke --delay-ms 300 --priority 5 sleep 50

# The blocking client: a result (configured by a file this time), an error result (1) and a
# timeout on a queue nobody serves (2).
printf '{"servers": ["%s"], "name": "smoke-client"}\n' "$NATS_URL" >"$work/omniq.json"
expect_status 0 env -u NATS_SERVERS "$bin/omniq_sync_client" --config "$work/omniq.json" --timeout 30 add '[20, 22]'
expect_output "success, result 42 \(worker smoke-worker"
expect_status 1 "$bin/omniq_sync_client" --timeout 30 fail
expect_output "error demo_failure: fail always fails"
expect_status 2 "$bin/omniq_sync_client" --queue nobody --timeout 1 add 1
expect_output "no result within 1 s"

# The monitor saw all 20 finish: 19 completed (the flaky one on its retry), 1 failed and
# dead-lettered.
monitor_status=0
wait "$monitor" || monitor_status=$?
cp "$work/monitor.log" "$work/out"
[ "$monitor_status" = 0 ] || fail "omniq_monitor exited with $monitor_status: $(cat "$work/out")"
expect_output "^summary for queue smoke: 20 tasks enqueued, 20 finished"
expect_output "^  completed +19 \(1 of them on a retry\)$"
expect_output "^  retried +1 tasks, 1 retries$"
expect_output "^  failed +1, 1 in the dead letters, e.g. task [0-9a-f-]+: failed after 1 attempt\(s\): demo_failure"

# The scheduler stops by itself after 3 s, having fired its interval schedule.
scheduler_status=0
wait "$scheduler" || scheduler_status=$?
cp "$work/scheduler.log" "$work/out"
[ "$scheduler_status" = 0 ] || fail "omniq_scheduler exited with $scheduler_status"
expect_output "^created schedule smoke-cron: cron \"\*/5 \* \* \* \*\""
expect_output "^schedule smoke-interval: every 1 s, add \[5,5\] on queue default, active, runs [1-9]"
# A second scheduler keeps the existing schedules (and may fire one more occurrence).
expect_status 0 "$bin/omniq_scheduler" --id-prefix smoke --interval 1 --run-for 0.1
expect_output "^kept schedule smoke-interval: every 1 s"
runs=$(sed -nE 's/^schedule smoke-interval: .*, runs ([0-9]+).*/\1/p' "$work/out")

# The worker ran 19 + 1 (client) + the scheduled tasks, retried 1, failed 2 (both dead-lettered).
# SIGTERM ends it cleanly with its final counters.
want=$((20 + runs))
wait_for "$work/worker.log" "stats: received=[0-9]+ completed=$want " 20
kill -TERM "$worker"
worker_status=0
wait "$worker" || worker_status=$?
cp "$work/worker.log" "$work/out"
[ "$worker_status" = 0 ] || fail "omniq_worker exited with $worker_status after SIGTERM"
expect_output "final stats: received=$((want + 3)) completed=$want retried=1 failed=2 dead_lettered=2 cancelled=0"
pids=()

echo "smoke test passed: 20 tasks + $runs scheduled + 3 from the blocking client"
