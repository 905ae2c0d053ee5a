#!/usr/bin/env bash
# A/B of two vrec binaries on one `vrec bench` load, in one sitting: runs
# alternate (A, B, A, B, ...) so that the shared machine's drift hits both
# alike, and the medians are compared.
#
#   benchmarks/ab.sh --a=OLD_BINARY --b=NEW_BINARY [--runs=3] [--out=FILE]
#                    -- BENCH_ARGS...
#
# BENCH_ARGS are `vrec bench` arguments, e.g. `train --workers=2 --seconds=20`
# or `ps --rows=1000000 --seconds=5 --ops=pull,push`. Every JSON line of
# every run goes to FILE (default: a work folder's lines, printed path), tagged
# "a RUN" or "b RUN"; a table of medians goes to stdout: examples_per_s or
# keys_per_s per operation and, where the bench reports it, the CPU
# microseconds per key of all threads together (steadier than a rate on a
# shared machine). A folder named by --spill_dir= in BENCH_ARGS is emptied
# before each run.
source "$(dirname "$0")/../scripts/lib/prologue.sh"
A=""; B=""; RUNS=3; OUT=""
args=()
while [[ $# -gt 0 && "$1" != "--" ]]; do args+=("$1"); shift; done
[[ $# -gt 0 ]] && shift  # the --
parse_flags a:A b:B runs:RUNS out:OUT -- "${args[@]+"${args[@]}"}"
[[ -x "$A" && -x "$B" ]] || die "--a and --b must name vrec binaries (see --help)"
[[ $# -gt 0 ]] || die "no bench arguments after -- (see --help)"
make_work ab 1
OUT=${OUT:-$WORK/lines}
: >"$OUT"
spill=""
for arg in "$@"; do [[ "$arg" == --spill_dir=* ]] && spill=${arg#--spill_dir=}; done
for r in $(seq "$RUNS"); do
  for side in a b; do
    bin=$A; [[ $side == b ]] && bin=$B
    echo "  run $r/$RUNS: $side ($("$bin" --version 2>/dev/null))" >&2
    [[ -n "$spill" ]] && rm -rf "$spill"
    "$bin" bench "$@" 2>/dev/null | grep '^{' | sed "s/^/$side $r /" >>"$OUT"
  done
done
[[ -n "$spill" ]] && rm -rf "$spill"
echo "lines: $OUT" >&2
"$PYTHON" - "$OUT" <<'PY'
import json, statistics, sys
rate, cpu = {}, {}
for line in open(sys.argv[1]):
    side, run, js = line.split(" ", 2)
    d = json.loads(js)
    op = d.get("op", d.get("bench", ""))
    value = d.get("examples_per_s", d.get("keys_per_s"))
    if value is None:
        continue
    rate.setdefault((op, side), []).append(value)
    if "cpu_us_per_key" in d:
        cpu.setdefault((op, side), []).append(sum(d["cpu_us_per_key"].values()))
print("| op | a (median) | b (median) | b / a | a CPU us/key | b CPU us/key |")
print("|---|---|---|---|---|---|")
for op in sorted({k[0] for k in rate}):
    a, b = rate.get((op, "a"), []), rate.get((op, "b"), [])
    if not a or not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    ca = "%.3f" % statistics.median(cpu[(op, "a")]) if (op, "a") in cpu else "-"
    cb = "%.3f" % statistics.median(cpu[(op, "b")]) if (op, "b") in cpu else "-"
    print("| %s | %.4g | %.4g | %.2f | %s | %s |" % (op, ma, mb, mb / ma, ca, cb))
PY
