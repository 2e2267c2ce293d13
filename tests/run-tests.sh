#!/usr/bin/env bash
# Installs what is missing, builds omniq and runs every test with ctest, then runs the unit and
# integration tests again in two sanitizer builds (docs/testing.md).
# Extra arguments go to every ctest run, e.g. `tests/run-tests.sh -L unit` or `-R cron`.
# Environment: OMNIQ_BUILD_DIR (default build/), OMNIQ_BUILD_TYPE (default RelWithDebInfo),
# OMNIQ_SANITIZERS=0 to skip the sanitizer passes, OMNIQ_FUZZ_SECONDS (per fuzz target, 20).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/cmake/setup-deps.sh"

build=${OMNIQ_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${OMNIQ_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build" -j "$(nproc)"

# Every integration test starts its own nats-server on a free loopback port, so tests can run
# two at a time on this 2-core machine. A failure here still lets the sanitizer passes run.
status=0
(cd "$build" && ctest --output-on-failure --timeout 600 -j 2 "$@") || status=$?

# Sanitizer passes: the unit and integration tests (only those, and only those the arguments
# select) under AddressSanitizer + UndefinedBehaviorSanitizer, then under ThreadSanitizer, each
# in its own tree beside $build. Any sanitizer report ends the test process with an error.
sanitized_pass() {  # name, OMNIQ_SANITIZE value, then ctest arguments
  local name=$1 sanitize=$2
  shift 2
  local tree="$build-$name" start=$SECONDS
  echo "== $name: unit and integration tests built with -fsanitize=$sanitize in $tree"
  # -O1 keeps the instrumented tests fast enough; Debug keeps assertions on. Warnings are
  # checked by the main build; the sanitizers add their own notes (e.g. g++'s -Wtsan).
  cmake -S "$root" -B "$tree" -DOMNIQ_SANITIZE="$sanitize" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DOMNIQ_WARNINGS_AS_ERRORS=OFF -DOMNIQ_BUILD_EXAMPLES=OFF >/dev/null || return 1
  cmake --build "$tree" -j "$(nproc)" --target omniq_unit_tests omniq_integration_tests || return 1
  local rc=0
  (cd "$tree" && ctest --output-on-failure --timeout 600 -j 2 -L 'unit|integration' "$@") || rc=$?
  echo "== $name: ctest exit $rc after $((SECONDS - start)) s"
  return $rc
}

if [ "${OMNIQ_SANITIZERS:-1}" != 0 ]; then
  selected=$(cd "$build" && ctest -N -L 'unit|integration' "$@" | sed -n 's/^Total Tests: //p')
  if [ "${selected:-0}" -eq 0 ]; then
    echo "== sanitizers: skipped, the arguments select no unit or integration test"
  else
    # halt_on_error/abort_on_error: the first report fails the test (UBSan is already fatal
    # through -fno-sanitize-recover). Caller's options come last and win.
    export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    sanitized_pass asan "address,undefined" "$@" || status=1
    sanitized_pass tsan thread "$@" || status=1
  fi
fi
exit $status
