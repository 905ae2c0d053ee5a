#!/usr/bin/env bash
# Configures (once) and builds vrec into build/ (or $VREC_BUILD_DIR).
# Extra arguments go to CMake's configure step, e.g. -DVREC_ASAN=ON.
# Quiet on success; on failure prints the end of the log.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${VREC_BUILD_DIR:-build}
mkdir -p "$BUILD_DIR"
if [ ! -f "$BUILD_DIR/build.ninja" ] || [ $# -gt 0 ]; then
  if ! cmake -S . -B "$BUILD_DIR" -G Ninja "$@" >"$BUILD_DIR/configure.log" 2>&1; then
    cat "$BUILD_DIR/configure.log" >&2
    exit 1
  fi
fi
if ! cmake --build "$BUILD_DIR" -j"$(nproc)" >"$BUILD_DIR/build.log" 2>&1; then
  grep -E -B2 -A8 'error|Error' "$BUILD_DIR/build.log" | head -150 >&2 || tail -80 "$BUILD_DIR/build.log" >&2
  echo "build failed; full log: $BUILD_DIR/build.log" >&2
  exit 1
fi
