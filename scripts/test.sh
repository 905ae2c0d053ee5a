#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite.
# Exits non-zero on any failure. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir "${VREC_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
