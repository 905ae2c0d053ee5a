#!/usr/bin/env bash
# vrec train under mpirun: datagen, then a job of 1 coordinator, 2 servers
# and 2 workers (oversubscribed, as root where needed), then vrec eval of the
# saved model. Every training example is trained once per epoch, the saved
# model evaluates as the job did, and a launch with too few ranks is a clear
# error.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=9

"${MPIRUN[@]}" -np 5 "$VREC" train --data="$SCRATCH/world" --model_dir="$SCRATCH/model" \
  --servers=2 --epochs=2 --progress_seconds=1 "${TINY_MODEL[@]}" >"$SCRATCH/train.out" \
  2>"$SCRATCH/train.err" || fail_log "$SCRATCH/train.err" "mpirun train"
"$VREC" eval --model_dir="$SCRATCH/model" --data="$SCRATCH/world" >"$SCRATCH/eval.out" \
  2>"$SCRATCH/eval.err"

"$PYTHON" - "$SCRATCH/train.out" "$SCRATCH/eval.out" "$SCRATCH/world/manifest.json" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.startswith("{")]
assert len(lines) == 1, "exactly one rank prints the summary: %r" % lines
train = json.loads(lines[0])
ev = json.loads(open(sys.argv[2]).read().splitlines()[-1])
manifest = json.load(open(sys.argv[3]))
records = sum(int(s["records"]) for s in manifest["candidate_train"])
assert train["launcher"] == "mpirun" and train["workers"] == 2 and train["servers"] == 2, train
assert train["examples"] == 2 * records, (train["examples"], records)
for k in ["recall@1", "recall@10", "recall@50", "recall@100", "map"]:
    assert ev[k] == train["eval"][k], ("saved model evaluates differently", k)
assert train["eval"]["recall@50"] > train["eval"]["popularity"]["recall@50"], train["eval"]
PY

# The ranking model under mpirun: quantiles fitted by the coordinator and
# broadcast; the saved folder evaluates as the job did.
"${MPIRUN[@]}" -np 4 "$VREC" train --model=ranking --data="$SCRATCH/world" \
  --model_dir="$SCRATCH/ranking" --servers=1 --epochs=2 --batch_size=64 --embedding_dim=8 --tower=16 \
  --optimizer=adam --learning_rate=0.003 --num_quantiles=20 >"$SCRATCH/rtrain.out" \
  2>"$SCRATCH/rtrain.err" || fail_log "$SCRATCH/rtrain.err" "mpirun ranking"
"$VREC" eval --model_dir="$SCRATCH/ranking" --data="$SCRATCH/world" >"$SCRATCH/reval.out" \
  2>"$SCRATCH/reval.err"
"$PYTHON" - "$SCRATCH/rtrain.out" "$SCRATCH/reval.out" <<'PY'
import json, sys
train = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
ev = json.loads(open(sys.argv[2]).read().splitlines()[-1])
assert train["model"] == "ranking", train
e = train["eval"]
assert 0 < e["weighted_per_user_loss"] < 0.5 and 0.5 < e["auc"] <= 1, e
for k in ["weighted_per_user_loss", "auc"]:
    assert ev[k] == e[k], ("saved ranking model evaluates differently", k, ev[k], e[k])
PY

set +e
"${MPIRUN[@]}" -np 2 "$VREC" train --data="$SCRATCH/world" --servers=1 >/dev/null \
  2>"$SCRATCH/few.err"
rc=$?
set -e
[[ $rc != 0 ]] && grep -q "at least --servers + 2" "$SCRATCH/few.err" ||
  fail_log "$SCRATCH/few.err" "too few ranks: rc $rc"
echo "mpi_train_test: OK"
