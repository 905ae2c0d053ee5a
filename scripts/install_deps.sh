#!/usr/bin/env bash
# Installs the Debian packages vrec needs to build, test and run. Idempotent,
# and silent when everything is already there. Needs root (or sudo) only when
# something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache git pkg-config
  libopenmpi-dev openmpi-bin libeigen3-dev libprotobuf-dev protobuf-compiler
  libzmq3-dev cppzmq-dev zlib1g-dev librocksdb-dev libgflags-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev libabsl-dev nlohmann-json3-dev
  libfaiss-dev libcpp-httplib-dev python3-matplotlib
  iproute2  # ip netns: tests/integration/multihost_test.sh
  clang libclang-rt-14-dev  # libFuzzer and the sanitizers: tests/fuzz
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install_deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
