#!/usr/bin/env bash
# Training on a dataset written without its training files
# (`vrec datagen --write_train=false`): `vrec train` refuses it without
# --stream and says so; with --stream both models train on examples
# simulated on the fly, every one of them once per epoch; the popularity
# baseline (from the label counts kept in videos.rec) and a saved model's
# evaluation equal those on the full dataset of the same seed.
source "$(dirname "$0")/lib.sh"
tiny_world "$SCRATCH/full" --seed=5
tiny_world "$SCRATCH/held" --seed=5 --write_train=false
ls "$SCRATCH/held/candidate" | grep -q '^train-' &&
  fail "--write_train=false wrote training files: $(ls -R "$SCRATCH/held")"

set +e
"$VREC" train --data="$SCRATCH/held" --model_dir="$SCRATCH/m0" "${TINY_MODEL[@]}" >/dev/null \
  2>"$SCRATCH/nostream.err"; rc=$?
set -e
[[ $rc != 0 ]] && grep -q -- "--stream" "$SCRATCH/nostream.err" ||
  fail_log "$SCRATCH/nostream.err" "training without --stream: rc $rc"

"$VREC" train --data="$SCRATCH/held" --stream --model_dir="$SCRATCH/cand" --servers=1 --workers=2 \
  --epochs=1 "${TINY_MODEL[@]}" >"$SCRATCH/cand.out" 2>"$SCRATCH/cand.err" ||
  fail_log "$SCRATCH/cand.err" "candidate --stream"
"$VREC" train --data="$SCRATCH/held" --stream --model=ranking --model_dir="$SCRATCH/rank" \
  --servers=1 --workers=2 --epochs=1 --batch_size=256 >"$SCRATCH/rank.out" 2>"$SCRATCH/rank.err" ||
  fail_log "$SCRATCH/rank.err" "ranking --stream"
"$VREC" eval --model_dir="$SCRATCH/cand" --data="$SCRATCH/full" >"$SCRATCH/eval_full.out" \
  2>/dev/null
"$VREC" eval --model_dir="$SCRATCH/cand" --data="$SCRATCH/held" >"$SCRATCH/eval_held.out" \
  2>/dev/null

"$PYTHON" - "$SCRATCH" <<'PY'
import json, sys
d = sys.argv[1]
last = lambda f: json.loads(open(f"{d}/{f}").read().splitlines()[-1])
full = json.load(open(f"{d}/full/manifest.json"))
held = json.load(open(f"{d}/held/manifest.json"))
assert held.get("train_streamed") is True, held
cand_records = sum(int(s["records"]) for s in full["candidate_train"])
rank_records = sum(int(s["records"]) for s in full["ranking_train"])
assert int(held["candidate_train_examples"]) == cand_records, (held, cand_records)
assert int(held["ranking_train_examples"]) == rank_records, (held, rank_records)
cand, rank = last("cand.out"), last("rank.out")
assert cand["examples"] == cand_records, (cand["examples"], cand_records)
assert rank["examples"] == rank_records, (rank["examples"], rank_records)
ef, eh = last("eval_full.out"), last("eval_held.out")
for k in ["recall@1", "recall@10", "recall@50", "recall@100", "map"]:
    assert ef[k] == eh[k], ("held-out examples differ", k, ef[k], eh[k])
    assert ef["popularity"][k] == eh["popularity"][k], ("label counts differ", k)
print("stream_train_test: OK")
PY
