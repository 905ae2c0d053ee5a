#!/usr/bin/env bash
# vrec bench ps measures pull, push and pullpush (a worker's step: the
# batch's rows pulled, then gradients pushed to them), in memory and under a
# memory budget, one JSON line each; an unknown operation is refused.
source "$(dirname "$0")/lib.sh"
check() {  # JSON lines on stdin; $1: the ops expected in order
  "$PYTHON" -c '
import json, sys
want = sys.argv[1].split(",")
lines = [json.loads(l) for l in sys.stdin if l.startswith("{")]
got = [r["op"] for r in lines]
assert got == want, f"ops {got}, expected {want}"
for r in lines:
    assert r["keys_per_s"] > 0 and r["requests"] > 0, r
    assert r["batch"] == 100 and r["dim"] == 8, r
    assert 0 < r["memory_hit_rate"] <= 1, r
    assert r["p50_us"] > 0 and r["p99_us"] >= r["p50_us"], r
' "$1" || fail "bench ps $1"
}
"$VREC" bench ps --rows=2000 --dim=8 --batch=100 --zipf=1.1 --ops=pull,push,pullpush \
  --seconds=0.2 2>/dev/null | check pull,push,pullpush
"$VREC" bench ps --rows=20000 --dim=8 --batch=100 --zipf=1.1 --ops=pullpush,push --seconds=0.2 \
  --budget_mb=1 --spill_dir="$SCRATCH/spill" 2>/dev/null | check pullpush,push
set +e
err=$("$VREC" bench ps --rows=1000 --dim=8 --batch=100 --ops=pull,pul --seconds=0.1 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" = 2 ] || fail "an unknown op exited $rc"
[[ "$err" == *"--ops takes pull, push and/or pullpush, got 'pul'"* ]] || fail "message: $err"
echo "bench ps: ok"
