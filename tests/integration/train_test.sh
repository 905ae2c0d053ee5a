#!/usr/bin/env bash
# vrec train and vrec eval end to end, in one process: a tiny world, two
# servers and two workers for two epochs; the last stdout line is a JSON
# summary with every example trained, a saved model and an evaluation that
# beats the popularity baseline; `vrec eval` of the saved folder gives the
# same figures; bad flags exit 2; a folder that is not a model is a clear
# error.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=5

"$VREC" train --data="$SCRATCH/world" --model_dir="$SCRATCH/model" --servers=2 --workers=2 \
  --epochs=2 --progress_seconds=1 "${TINY_MODEL[@]}" >"$SCRATCH/train.out" 2>"$SCRATCH/train.err"
grep -q '^\[train\]' "$SCRATCH/train.err" || fail "no progress line"
[[ -s "$SCRATCH/model/model.pb" && -s "$SCRATCH/model/metrics.jsonl" ]] ||
  fail "model folder incomplete: $(ls -R "$SCRATCH/model")"

"$VREC" eval --model_dir="$SCRATCH/model" --data="$SCRATCH/world" >"$SCRATCH/eval.out" \
  2>"$SCRATCH/eval.err"

"$PYTHON" - "$SCRATCH/train.out" "$SCRATCH/eval.out" "$SCRATCH/world/manifest.json" <<'PY'
import json, sys
train = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ev = json.loads(open(sys.argv[2]).read().splitlines()[-1])
manifest = json.load(open(sys.argv[3]))
records = sum(int(s["records"]) for s in manifest["candidate_train"])
assert train["examples"] == 2 * records, (train["examples"], records)
assert train["model_dir"].endswith("model"), train
e = train["eval"]
for k in ["recall@1", "recall@10", "recall@50", "recall@100", "map"]:
    assert 0 <= e[k] <= 1, (k, e[k])
    assert ev[k] == e[k], ("eval of the saved model differs", k, ev[k], e[k])
assert e["recall@1"] <= e["recall@10"] <= e["recall@50"] <= e["recall@100"], e
assert e["recall@50"] > e["popularity"]["recall@50"], e
assert "oracle" in e and e["oracle"]["recall@100"] > 0, e
PY

# A validation slice under mpirun: its examples are held out of training
# (each epoch trains the rest), the job validates every epoch, the model
# folder holds the best validated model, and `vrec eval` of it gives the
# final evaluation's figures.
"${MPIRUN[@]}" -np 3 "$VREC" train --data="$SCRATCH/world" --model_dir="$SCRATCH/vmodel" --servers=1 \
  --epochs=3 --progress_seconds=1 "${TINY_MODEL[@]}" --validation_users=40 --patience=0 \
  >"$SCRATCH/vtrain.out" 2>"$SCRATCH/vtrain.err" || fail_log "$SCRATCH/vtrain.err" "validated run"
[[ $(grep -c '^\[valid\] epoch' "$SCRATCH/vtrain.err") -ge 3 ]] ||
  fail_log "$SCRATCH/vtrain.err" "fewer than 3 validation lines"
"$VREC" eval --model_dir="$SCRATCH/vmodel" --data="$SCRATCH/world" >"$SCRATCH/veval.out" \
  2>"$SCRATCH/veval.err" || fail_log "$SCRATCH/veval.err" "eval of the validated model"
"$PYTHON" - "$SCRATCH/vtrain.out" "$SCRATCH/veval.out" "$SCRATCH/world/manifest.json" \
  "$SCRATCH/vmodel/metrics.jsonl" <<'PY'
import json, sys
train = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ev = json.loads(open(sys.argv[2]).read().splitlines()[-1])
manifest = json.load(open(sys.argv[3]))
records = sum(int(s["records"]) for s in manifest["candidate_train"])
v = train["validation"]
assert 0 < v["examples"] <= 40, v
assert train["examples"] == 3 * (records - v["examples"]), (train["examples"], records, v)
assert v["validations"] >= 3 and not v["stopped_early"], v
curve = [json.loads(l)["validation"] for l in open(sys.argv[4]) if '"validation"' in l]
assert len(curve) == v["validations"], curve
assert max(c["score"] for c in curve) == v["best"], (curve, v)
for k in ["recall@10", "recall@50", "map"]:
    assert ev[k] == train["eval"][k], ("eval of the kept model differs", k, ev[k], train["eval"][k])
PY

# The validation curve is drawn (when matplotlib is there).
if "$PYTHON" -c "import matplotlib" 2>/dev/null; then
  "$PYTHON" "$VREC_ROOT/scripts/plot_metrics.py" "$SCRATCH/vmodel" --out="$SCRATCH/v.png" \
    >"$SCRATCH/plot.out" 2>"$SCRATCH/plot.err" || fail_log "$SCRATCH/plot.err" "plot_metrics"
  grep -q '"validation_records": [3-9]' "$SCRATCH/plot.out" ||
    fail_log "$SCRATCH/plot.out" "plot_metrics read no validation records"
fi

# The defaults, no flag but the data and the model folder: a validation slice,
# training until it stops improving (the rule of train/early_stopping.h), the
# best model kept and evaluated, each step said in the progress lines.
"$VREC" train --data="$SCRATCH/world" --model_dir="$SCRATCH/dmodel" >"$SCRATCH/dtrain.out" \
  2>"$SCRATCH/dtrain.err" || fail_log "$SCRATCH/dtrain.err" "train with the default flags"
grep -q '^\[valid\] stopping: validation recall@50, the mean of the last 3, has not improved' \
  "$SCRATCH/dtrain.err" || grep -q '^\[valid\] epoch 99\.' "$SCRATCH/dtrain.err" ||
  fail_log "$SCRATCH/dtrain.err" "the default run did not say why it stopped"
"$VREC" eval --model_dir="$SCRATCH/dmodel" --data="$SCRATCH/world" >"$SCRATCH/deval.out" \
  2>"$SCRATCH/deval.err" || fail_log "$SCRATCH/deval.err" "eval of the default model"
"$PYTHON" - "$SCRATCH/dtrain.out" "$SCRATCH/deval.out" "$SCRATCH/dmodel/metrics.jsonl" <<'PY'
import json, sys
train = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ev = json.loads(open(sys.argv[2]).read().splitlines()[-1])
v = train["validation"]
assert v["examples"] > 0, v
curve = [json.loads(l)["validation"] for l in open(sys.argv[3]) if '"validation"' in l]
assert len(curve) == v["validations"], (len(curve), v)
# It stopped by the rule (or ran to the 100-epoch cap: then the last line
# says nothing of stopping): the best mean of 3 scores is at least max(3,
# its own count) validations old, the best score is above popularity on the
# slice, and the model kept is the best score's.
means = [c["smoothed"] for c in curve]
mean_at = means.index(max(means)) + 1
if v["stopped_early"]:
    assert len(curve) - mean_at >= max(3, mean_at), (mean_at, len(curve), means)
else:
    assert len(curve) >= 100, (len(curve), v)
assert abs(means[2] - sum(c["score"] for c in curve[:3]) / 3) < 1e-9, curve[:3]
assert v["best"] == max(c["score"] for c in curve), (v, curve)
assert v["best"] > curve[-1]["popularity"], (v, curve[-1])
assert v["best_epoch"] >= 2, v  # one epoch is far from learned, even here
e = train["eval"]
assert e["recall@50"] > e["popularity"]["recall@50"] + 0.1, e
for k in ["recall@10", "recall@50", "map"]:
    assert ev[k] == e[k], ("eval of the kept model differs", k, ev[k], e[k])
PY

# Bad flags and a folder that is not a model.
set +e
"$VREC" train --model_dir="$SCRATCH/x" >/dev/null 2>"$SCRATCH/bad1.err"; rc1=$?
"$VREC" train --data="$SCRATCH/world" --tower=32,abc >/dev/null 2>"$SCRATCH/bad2.err"; rc2=$?
"$VREC" eval --model_dir="$SCRATCH/world" --data="$SCRATCH/world" >/dev/null \
  2>"$SCRATCH/bad3.err"; rc3=$?
set -e
[[ $rc1 == 2 ]] && grep -q -- "--data is required" "$SCRATCH/bad1.err" ||
  fail_log "$SCRATCH/bad1.err" "missing --data: rc $rc1"
[[ $rc2 == 2 ]] && grep -q "abc" "$SCRATCH/bad2.err" ||
  fail_log "$SCRATCH/bad2.err" "bad --tower: rc $rc2"
[[ $rc3 == 1 ]] && grep -q "model.pb" "$SCRATCH/bad3.err" ||
  fail_log "$SCRATCH/bad3.err" "eval of a non-model: rc $rc3"
"$VREC" train --help >"$SCRATCH/help.out" 2>&1
grep -q -- "--staleness" "$SCRATCH/help.out" || fail "train --help"
echo "train_test: OK"
