#!/usr/bin/env bash
# vrec train and vrec eval end to end, in one process: a tiny world, two
# servers and two workers for two epochs; the last stdout line is a JSON
# summary with every example trained, a saved model and an evaluation that
# beats the popularity baseline; `vrec eval` of the saved folder gives the
# same figures; bad flags exit 2; a folder that is not a model is a clear
# error.
set -euo pipefail
VREC="$1"
SCRATCH="$2"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
PY=/usr/bin/python3

"$VREC" datagen --out="$SCRATCH/world" --seed=5 --num_videos=800 --num_users=1200 \
  --num_tokens=400 --num_topics=8 --num_days=10 --test_users=200 --shards=3 --fsync=false \
  >/dev/null 2>"$SCRATCH/datagen.err"

MODEL=(--embedding_dim=16 --tower=32,16 --negatives=64 --batch_size=64 --learning_rate=0.01)
"$VREC" train --data="$SCRATCH/world" --model_dir="$SCRATCH/model" --servers=2 --workers=2 \
  --epochs=2 --progress_seconds=1 "${MODEL[@]}" >"$SCRATCH/train.out" 2>"$SCRATCH/train.err"
grep -q '^\[train\]' "$SCRATCH/train.err" || { echo "FAIL: no progress line"; exit 1; }
[[ -s "$SCRATCH/model/model.pb" && -s "$SCRATCH/model/metrics.jsonl" ]] ||
  { echo "FAIL: model folder incomplete"; ls -R "$SCRATCH/model"; exit 1; }

"$VREC" eval --model_dir="$SCRATCH/model" --data="$SCRATCH/world" >"$SCRATCH/eval.out" \
  2>"$SCRATCH/eval.err"

$PY - "$SCRATCH/train.out" "$SCRATCH/eval.out" "$SCRATCH/world/manifest.json" <<'PY'
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

# Bad flags and a folder that is not a model.
set +e
"$VREC" train --model_dir="$SCRATCH/x" >/dev/null 2>"$SCRATCH/bad1.err"; rc1=$?
"$VREC" train --data="$SCRATCH/world" --tower=32,abc >/dev/null 2>"$SCRATCH/bad2.err"; rc2=$?
"$VREC" eval --model_dir="$SCRATCH/world" --data="$SCRATCH/world" >/dev/null \
  2>"$SCRATCH/bad3.err"; rc3=$?
set -e
[[ $rc1 == 2 ]] && grep -q -- "--data is required" "$SCRATCH/bad1.err" ||
  { echo "FAIL: missing --data: rc $rc1"; cat "$SCRATCH/bad1.err"; exit 1; }
[[ $rc2 == 2 ]] && grep -q "abc" "$SCRATCH/bad2.err" ||
  { echo "FAIL: bad --tower: rc $rc2"; cat "$SCRATCH/bad2.err"; exit 1; }
[[ $rc3 == 1 ]] && grep -q "model.pb" "$SCRATCH/bad3.err" ||
  { echo "FAIL: eval of a non-model: rc $rc3"; cat "$SCRATCH/bad3.err"; exit 1; }
"$VREC" train --help >"$SCRATCH/help.out" 2>&1
grep -q -- "--staleness" "$SCRATCH/help.out" || { echo "FAIL: train --help"; exit 1; }
echo "train_test: OK"
