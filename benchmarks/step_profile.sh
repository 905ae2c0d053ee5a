#!/usr/bin/env bash
# Where a training step's CPU goes, by thread and phase: perf samples
# `vrec bench train` after its warm-up and benchmarks/step_profile.py
# charges every sample to a phase (docs/benchmarks.md, "Where a training
# step's time goes").
#
#   benchmarks/step_profile.sh [--vrec=build/vrec] [--workers=1] [--seconds=10]
#                              [--warmup=25] [--freq=250] [--out=DIR] [-- BENCH_ARGS...]
#
# The warm-up should outlast the workers' first pass over the benchmark's
# examples (rows are created then; 20 s at ~2,000 examples/s). Needs perf
# (linux-perf) and the right to sample this user's processes. Writes
# OUT/perf.data, OUT/bench.json and OUT/profile.json; prints the bench line
# and the table (CPU milliseconds per step).
source "$(dirname "$0")/../scripts/lib/prologue.sh"
cd "$VREC_ROOT"
WORKERS=1; SECONDS_=10; WARMUP=25; FREQ=250; OUT=""
args=()
while [[ $# -gt 0 && "$1" != "--" ]]; do args+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
parse_flags vrec:VREC workers:WORKERS seconds:SECONDS_ warmup:WARMUP freq:FREQ out:OUT \
  -- "${args[@]+"${args[@]}"}"
find_vrec
command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
make_work step_profile 1
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
"$VREC" bench train --workers="$WORKERS" --servers=1 --seconds="$SECONDS_" \
  --train_warmup_seconds="$WARMUP" "$@" >"$OUT/bench.out" 2>/dev/null &
bench=$!
sleep "$WARMUP"
sleep 1  # the bench's own start (examples, servers) before its warm-up
perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,16384 -o "$OUT/perf.data" \
  -p "$bench" -- sleep "$((SECONDS_ - 2))" 2>/dev/null
wait "$bench"
grep '^{' "$OUT/bench.out" | tail -n 1 >"$OUT/bench.json"
cat "$OUT/bench.json"
steps=$("$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); \
print(d['examples_per_s'] * (float(sys.argv[2]) - 2) / d['batch'])" "$OUT/bench.json" "$SECONDS_")
perf script -i "$OUT/perf.data" -F comm,tid,period,ip,sym,dso 2>/dev/null |
  "$PYTHON" benchmarks/step_profile.py --steps="$steps" --json="$OUT/profile.json"
