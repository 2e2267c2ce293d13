#!/usr/bin/env bash
# Installs every Debian package omniq needs to build, test and run its demo.
# Idempotent: does nothing when all are present; runs `apt-get update` once otherwise.
set -euo pipefail

PACKAGES=(
  g++ cmake make pkg-config git ca-certificates openssl
  libnats-dev nats-server
  libboost1.81-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libhowardhinnant-date-dev tzdata
  catch2
  clang libclang-rt-14-dev  # libFuzzer targets in tests/fuzz (clang + compiler-rt)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "omniq setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
