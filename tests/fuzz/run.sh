#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into a build folder of their own
# and runs each for SECONDS (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh SECONDS [TARGET...]   build, then run each target (default:
#                                           http ps record csv events) one after another
#   tests/fuzz/run.sh --build               build only
#   tests/fuzz/run.sh --no-build SECONDS [TARGET...]
#   tests/fuzz/run.sh --seeds               rewrite tests/fuzz/corpus with fuzz_seeds
#
# Environment: VREC_FUZZ_BUILD_DIR (build-fuzz), VREC_FUZZ_OUT (BUILD_DIR/runs:
# the corpus each run grows, crash inputs, logs), VREC_FUZZ_JOBS (ninja -j,
# default nproc). The seed corpus in tests/fuzz/corpus is read, never written.
#
# Exit: 0 when every run ended without a finding; 1 when one found a crash,
# leak, hang or sanitizer report (its input is OUT/TARGET-crash-..., the
# reproduction command is printed); 77 when clang or libFuzzer is missing
# (CTest's skip code).
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
BUILD=${VREC_FUZZ_BUILD_DIR:-build-fuzz}
OUT=${VREC_FUZZ_OUT:-$BUILD/runs}
ALL=(http ps record csv events)

build=1 mode=run
case "${1:-}" in
  --build) mode=build-only; shift ;;
  --no-build) build=0; shift ;;
  --seeds) mode=seeds; shift ;;
  ""|-h|--help) sed -n '2,17p' "$0"; exit 2 ;;
esac

# clang with libFuzzer and the sanitizers, or skip.
if ! command -v clang++ >/dev/null || ! command -v clang >/dev/null; then
  echo "fuzz: clang++ not found (Debian: apt-get install clang); skipping" >&2
  exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe/probe.cc"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/probe.cc" -o "$probe/probe" 2>"$probe/log"; then
  echo "fuzz: clang++ cannot link a libFuzzer target (Debian: libclang-rt-14-dev); skipping" >&2
  cat "$probe/log" >&2
  exit 77
fi

if [ "$build" = 1 ]; then
  mkdir -p "$BUILD"
  if [ ! -f "$BUILD/build.ninja" ]; then
    # -O1 without NDEBUG: fast enough to fuzz, and every DCHECK and Eigen
    # assertion stays armed.
    if ! cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
        -DVREC_FUZZ=ON -DVREC_BUILD_TESTS=OFF -DVREC_BUILD_BENCHMARKS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 \
        -DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 >"$BUILD/configure.log" 2>&1; then
      cat "$BUILD/configure.log" >&2
      exit 1
    fi
  fi
  if ! cmake --build "$BUILD" --target vrec_fuzz -j"${VREC_FUZZ_JOBS:-$(nproc)}" \
      >"$BUILD/build.log" 2>&1; then
    grep -E -B2 -A8 'error|Error' "$BUILD/build.log" | head -100 >&2 || tail -50 "$BUILD/build.log" >&2
    echo "fuzz: build failed; full log: $BUILD/build.log" >&2
    exit 1
  fi
fi
BIN=$BUILD/tests/fuzz

case "$mode" in
  build-only) exit 0 ;;
  seeds)
    rm -rf tests/fuzz/corpus
    "$BIN/fuzz_seeds" tests/fuzz/corpus
    du -sh tests/fuzz/corpus
    exit 0 ;;
esac

SECONDS_EACH=${1:?SECONDS}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
mkdir -p "$OUT"
# Scratch files of the targets (rewritten every input) in memory when possible.
scratch_root=/dev/shm
[ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
export VREC_FUZZ_SCRATCH
VREC_FUZZ_SCRATCH=$(mktemp -d "$scratch_root/vrec-fuzz.XXXXXX")
trap 'rm -rf "$probe" "$VREC_FUZZ_SCRATCH"' EXIT

failed=0
for t in "${targets[@]}"; do
  [ -x "$BIN/fuzz_$t" ] || { echo "fuzz: no target '$t' (have: ${ALL[*]})" >&2; exit 2; }
  mkdir -p "$OUT/corpus/$t"
  args=(-max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$OUT/$t-")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  log=$OUT/$t.log
  start=$(date +%s)
  rc=0
  "$BIN/fuzz_$t" "${args[@]}" "$OUT/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(find "$OUT/corpus/$t" "tests/fuzz/corpus/$t" -type f | wc -l)
  if [ "$rc" = 0 ]; then
    echo "fuzz_$t: ${execs:-?} executions in $(( $(date +%s) - start )) s, corpus $corpus inputs, no findings"
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "fuzz_$t: FINDING after ${execs:-?} executions (exit $rc); input: ${artifact:-see log}" >&2
    grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz check failed' \
      "$log" | head -60 >&2 || tail -60 "$log" >&2
    echo "fuzz_$t: reproduce with $BIN/fuzz_$t ${artifact:-INPUT}; full log: $log" >&2
  fi
done
exit "$failed"
