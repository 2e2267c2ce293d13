#!/usr/bin/env bash
# Installs every Debian package omniq needs to build, test and run its demo.
# Idempotent: does nothing when all are present; runs `apt-get update` once otherwise.
#
# nats-server comes from Debian trixie (2.10.x), not bookworm (2.9.10): 2.9 before 2.9.21 can
# number the same message differently on different replicas after a leader change
# (nats-server PR #4365), which breaks KV compare-and-set on clusters (docs/reliability.md).
# trixie's nats-server is a static Go binary that needs only libc6. The trixie suite is added
# pinned at priority 100, so nothing else on the machine moves to it; only the one package is
# taken from it by name (nats-server/trixie).
set -euo pipefail

PACKAGES=(
  g++ cmake make pkg-config git ca-certificates openssl
  libnats-dev
  libboost1.81-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libhowardhinnant-date-dev tzdata
  catch2
  doxygen  # the API reference (cmake --build build --target docs), checked by a test
  clang libclang-rt-14-dev  # libFuzzer targets in tests/fuzz (clang + compiler-rt)
)
NATS_SERVER_MIN=2.10  # the server the suite, the demo and the benchmarks run on

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

server_ok() {
  local v
  v=$(dpkg-query -W -f='${Status} ${Version}' nats-server 2>/dev/null) || return 1
  case "$v" in "install ok installed "*) ;; *) return 1 ;; esac
  dpkg --compare-versions "${v##* }" ge "$NATS_SERVER_MIN"
}

updated=0
update_once() {
  [ "$updated" = 1 ] || { $SUDO apt-get update -qq; updated=1; }
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "omniq setup: installing ${missing[*]}" >&2
  update_once
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! server_ok; then
  echo "omniq setup: installing nats-server >= $NATS_SERVER_MIN from Debian trixie (pinned low)" >&2
  src=/etc/apt/sources.list.d/omniq-trixie.sources
  pin=/etc/apt/preferences.d/omniq-trixie
  if [ ! -f "$src" ]; then
    # Same mirror as the machine's own bookworm entry, when it names one.
    mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*debian\)[[:space:]]*$/\1/p' \
      /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" | $SUDO tee "$src" >/dev/null
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' | $SUDO tee "$pin" >/dev/null
    updated=0
  fi
  update_once
  $SUDO apt-get install -y -qq --no-install-recommends nats-server/trixie >/dev/null
  server_ok || { echo "omniq setup: nats-server >= $NATS_SERVER_MIN could not be installed" >&2; exit 1; }
fi
