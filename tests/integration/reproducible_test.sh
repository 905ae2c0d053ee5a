#!/usr/bin/env bash
# Synchronous training is reproducible: with --staleness=0 and one worker,
# two `vrec train` runs of the same seed, in two processes, save
# bit-identical tables and the same model.pb (but its wall time), and print
# the same summary (but its timings), with two servers of two request
# threads each. Each of these once made runs differ: the next batch's pulls
# raced the current step's pushes, the dense buffers' alignment changed
# Eigen's summation order, and item-kNN summed in hash order. (Not covered:
# a validation slice, whose pause lands a timing-dependent number of steps
# after the epoch boundary, so the model kept differs; several workers,
# whose pushes of one step reach a server in either order.)
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=5

for run in a b; do
  "$VREC" train --data="$SCRATCH/world" --model_dir="$SCRATCH/$run" --servers=2 --server_threads=2 \
    --workers=1 --staleness=0 --epochs=3 --seed=7 "${TINY_MODEL[@]}" --eval_examples=100 \
    >"$SCRATCH/$run.out" 2>"$SCRATCH/$run.err" ||
    fail_log "$SCRATCH/$run.err" "training run $run"
done

for f in "$SCRATCH"/a/tables/*; do
  cmp "$f" "$SCRATCH/b/tables/$(basename "$f")" ||
    fail "the two runs saved different tables ($(basename "$f"))"
done
[[ -n $(ls "$SCRATCH/a/tables") ]] || fail "no tables saved"

"$PYTHON" - "$SCRATCH/a" "$SCRATCH/b" <<'PY'
import json, sys
a, b = sys.argv[1:]

def summary(run):
    return json.loads(open(run + ".out").read().splitlines()[-1])

def model(run):
    m = json.load(open(run + "/model.json"))
    m.pop("train_seconds")
    return m

# Timings, the folder, and final_loss: the mean loss since the last progress
# line, a window of wall time.
def untimed(x):
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items()
                if k not in ("seconds", "examples_per_s", "model_dir", "final_loss")}
    return x

assert model(a) == model(b), "model.json differs beyond train_seconds"
sa, sb = untimed(summary(a)), untimed(summary(b))
assert sa == sb, [k for k in sa if sa[k] != sb.get(k)]
PY
