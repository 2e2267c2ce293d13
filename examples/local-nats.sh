# Sourced by run-demo.sh and smoke-test.sh: start and stop a nats-server on 127.0.0.1 with
# JetStream, on a free port, storing into a directory of the caller's.

# start_local_nats <dir>: starts nats-server in the background, waits until it listens and sets
# NATS_PID and NATS_URL. The server writes its log to <dir>/nats-server.log.
start_local_nats() {
  local dir=$1 ports="" i
  # -p -1: the server picks a free port; --ports_file_dir: it writes the port it got to a file
  # once it accepts clients. setsid keeps it out of the terminal's process group, so a Ctrl-C
  # reaches the clients first and the server is stopped last, by the caller.
  setsid nats-server -a 127.0.0.1 -p -1 -js -sd "$dir/jetstream" --ports_file_dir "$dir" \
    -l "$dir/nats-server.log" &
  NATS_PID=$!
  for i in $(seq 100); do
    ports=$(cat "$dir"/*_"$NATS_PID".ports 2>/dev/null || true)
    [ -n "$ports" ] && break
    if ! kill -0 "$NATS_PID" 2>/dev/null; then
      echo "nats-server exited at start; its log:" >&2
      cat "$dir/nats-server.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  NATS_URL=$(printf '%s' "$ports" | grep -o 'nats://[0-9.]*:[0-9]*' | head -n 1)
  if [ -z "$NATS_URL" ]; then
    echo "nats-server did not report its port within 10 s (ports file: '$ports')" >&2
    return 1
  fi
}

# stop_pids <pid>...: SIGTERM, then SIGKILL for whatever still runs after 10 s; waits for all.
stop_pids() {
  local pid i alive
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 100); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "$@"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# wait_for_match <file> <extended regex> <seconds>: until a line of the file matches (0), or
# 1 once the time is up.
wait_for_match() {
  local i
  for i in $(seq $(($3 * 10))); do
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
