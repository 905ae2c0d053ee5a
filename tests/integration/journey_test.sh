#!/usr/bin/env bash
# The whole journey under mpirun: datagen, train with checkpoints, kill -9,
# resume, export, serve, a real HTTP request.
#
# Checkpoints under mpirun (and in one process): a job (2 servers, 2 workers) checkpointing every
# second is killed with SIGKILL (every rank and mpirun) once a checkpoint is
# complete, then resumed onto 3 servers. Proof of exact resume: each
# worker's trained example ids, the killed run's up to the checkpoint plus
# the resumed run's, equal those of an uninterrupted run, step by step. The
# metrics carry on from the checkpoint, old checkpoints are pruned, and
# mismatched flags are refused.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=4 --num_videos=500 --num_users=600 --num_tokens=300 \
  --test_users=100

# wait_for_checkpoint DIR PID: until DIR holds a complete checkpoint or PID
# has exited (at most 60 s).
wait_for_checkpoint() {
  for _ in $(seq 600); do
    ls "$1"/ckpt-*/MANIFEST >/dev/null 2>&1 && break
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
}

TOTAL=250000
# No validation slice: early stopping would end each run where its scores
# say (timing-dependent), and the runs are compared example by example.
TRAIN=(train --data="$SCRATCH/world" --embedding_dim=16 --tower=32,16 --negatives=32
       --batch_size=32 --learning_rate=0.01 --epochs=0 --max_examples=$TOTAL --progress_seconds=1
       --eval_examples=50 --validation_users=0)

# The reference: uninterrupted.
"${MPIRUN[@]}" -np 5 "$VREC" "${TRAIN[@]}" --servers=2 --example_log_dir="$SCRATCH/log_ref" \
  >"$SCRATCH/ref.out" 2>"$SCRATCH/ref.err" || fail_log "$SCRATCH/ref.err" "reference run"

# Killed once a checkpoint is complete.
"${MPIRUN[@]}" -np 5 "$VREC" "${TRAIN[@]}" --servers=2 --example_log_dir="$SCRATCH/log_a" \
  --checkpoint_dir="$SCRATCH/ckpt" --checkpoint_every=1s --keep_checkpoints=2 \
  --model_dir="$SCRATCH/model" >"$SCRATCH/a.out" 2>"$SCRATCH/a.err" &
JOB=$!
wait_for_checkpoint "$SCRATCH/ckpt" "$JOB"
pkill -9 -f -- "--example_log_dir=$SCRATCH/log_a" || true
wait $JOB 2>/dev/null || true
if grep -q '^{' "$SCRATCH/a.out"; then fail "the job finished before it was killed"; fi
ls "$SCRATCH"/ckpt/ckpt-*/MANIFEST >/dev/null || fail_log "$SCRATCH/a.err" "no complete checkpoint"

# A resume with other data settings is refused, before anything runs.
if "$VREC" "${TRAIN[@]}" --batch_size=64 --checkpoint_dir="$SCRATCH/ckpt" --resume --workers=2 \
  >/dev/null 2>"$SCRATCH/bad.err"; then fail "resumed with another batch size"; fi
grep -q "batch_size=32, this run has 64" "$SCRATCH/bad.err" ||
  fail_log "$SCRATCH/bad.err" "a resume with another batch size: no message naming it"

# Resumed onto 3 servers.
NEWEST=$(ls -d "$SCRATCH"/ckpt/ckpt-* | sort | tail -1)
[ -f "$NEWEST/MANIFEST" ] || NEWEST=$(ls -d "$SCRATCH"/ckpt/ckpt-*/MANIFEST | sort | tail -1 | xargs dirname)
cp "$NEWEST/manifest.json" "$SCRATCH/resumed_from.json"
"${MPIRUN[@]}" -np 6 "$VREC" "${TRAIN[@]}" --servers=3 --example_log_dir="$SCRATCH/log_b" \
  --checkpoint_dir="$SCRATCH/ckpt" --checkpoint_every=1s --keep_checkpoints=2 --resume \
  --model_dir="$SCRATCH/model" >"$SCRATCH/b.out" 2>"$SCRATCH/b.err" \
  || fail_log "$SCRATCH/b.err" "resumed run"
grep -q "resuming from $NEWEST" "$SCRATCH/b.err" || fail "not resumed from $NEWEST"

# The same in one process (servers and workers on threads): killed, then
# resumed onto 1 server.
"$VREC" "${TRAIN[@]}" --servers=2 --workers=2 --example_log_dir="$SCRATCH/log_la" \
  --checkpoint_dir="$SCRATCH/lckpt" --checkpoint_every=1s --model_dir="$SCRATCH/lmodel" \
  >"$SCRATCH/la.out" 2>"$SCRATCH/la.err" &
JOB=$!
wait_for_checkpoint "$SCRATCH/lckpt" "$JOB"
kill -9 $JOB
wait $JOB 2>/dev/null || true
if grep -q '^{' "$SCRATCH/la.out"; then fail "the local job finished before it was killed"; fi
LNEWEST=$(ls -d "$SCRATCH"/lckpt/ckpt-*/MANIFEST | sort | tail -1 | xargs dirname)
cp "$LNEWEST/manifest.json" "$SCRATCH/lresumed_from.json"
"$VREC" "${TRAIN[@]}" --servers=1 --workers=2 --example_log_dir="$SCRATCH/log_lb" \
  --checkpoint_dir="$SCRATCH/lckpt" --resume --model_dir="$SCRATCH/lmodel" \
  >"$SCRATCH/lb.out" 2>"$SCRATCH/lb.err" || fail_log "$SCRATCH/lb.err" "local resume"

"$PYTHON" - "$SCRATCH" "$TOTAL" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
total = int(sys.argv[2])
ckpt = json.load(open(os.path.join(d, "resumed_from.json")))
at = {int(w.get("worker", 0)): int(w.get("steps", 0)) for w in ckpt["workers"]}
ckpt_examples = int(ckpt["model"]["examples_trained"])
assert 0 < ckpt_examples < total, ckpt_examples

def steps(folder, worker):
    out = {}
    path = os.path.join(d, folder, "worker-%05d.log" % worker)
    if not os.path.exists(path):
        return out
    for line in open(path):
        if not line.endswith("\n"):
            continue  # torn by the kill
        f = line.split()
        assert int(f[0]) == worker
        step = int(f[1])
        assert step not in out, (folder, worker, step, "logged twice")
        out[step] = f[2:]
    return out

def check(first, second, at, label):
    for w in range(2):
        ref = steps("log_ref", w)
        a = {s: ids for s, ids in steps(first, w).items() if s <= at[w]}
        b = steps(second, w)
        assert len(a) == at[w], (label, w, len(a), at[w])
        assert not set(a) & set(b), (label, w, "steps trained twice")
        got = {**a, **b}
        assert sorted(got) == list(range(1, len(ref) + 1)), (label, w, "steps skipped or extra")
        for s in ref:
            assert got[s] == ref[s], (label, w, s, "different examples at this step")
        print("%s worker %d: %d steps, %d before the kill, %d after" % (label, w, len(ref), len(a), len(b)))

check("log_a", "log_b", at, "mpirun")
lckpt = json.load(open(os.path.join(d, "lresumed_from.json")))
check("log_la", "log_lb", {int(w.get("worker", 0)): int(w.get("steps", 0)) for w in lckpt["workers"]},
      "local")

ref = json.loads([l for l in open(os.path.join(d, "ref.out")) if l.startswith("{")][-1])
b = json.loads([l for l in open(os.path.join(d, "b.out")) if l.startswith("{")][-1])
assert b["examples"] == ref["examples"] == total, (b["examples"], ref["examples"])
assert b["servers"] == 3

# The metrics carry on from the checkpoint: examples never go back.
recs = [json.loads(l) for l in open(os.path.join(d, "model", "metrics.jsonl"))]
ex = [r["examples"] for r in recs if "examples" in r and "loss" in r]
assert ex == sorted(ex), ex
assert any(e <= ckpt_examples for e in ex) and ex[-1] == total, ex

complete = glob.glob(os.path.join(d, "ckpt", "ckpt-*", "MANIFEST"))
assert len(complete) == 2, complete  # --keep_checkpoints=2
assert not [p for p in glob.glob(os.path.join(d, "ckpt", "ckpt-*"))
            if not os.path.exists(os.path.join(p, "MANIFEST"))], "incomplete left behind"
PY
# Export (the candidate model from the resumed run's checkpoints, a ranking
# model trained here) and serve; a real HTTP request.
"$VREC" train --model=ranking --data="$SCRATCH/world" --checkpoint_dir="$SCRATCH/rckpt" \
  --epochs=1 --batch_size=64 --embedding_dim=8 --tower=16 --num_quantiles=10 \
  >"$SCRATCH/rank.out" 2>"$SCRATCH/rank.err" || fail_log "$SCRATCH/rank.err" "ranking"
"$VREC" export --checkpoint="$SCRATCH/ckpt" --ranking="$SCRATCH/rckpt" --out="$SCRATCH/bundle" \
  >"$SCRATCH/export.out" 2>"$SCRATCH/export.err" || fail_log "$SCRATCH/export.err" "export"
start_server "$SCRATCH/serve.out" "$SCRATCH/serve.err" --model="$SCRATCH/bundle"
"$PYTHON" - "$SCRATCH" "$TOTAL" "$PORT" <<'PY'
import json, os, sys, urllib.request, urllib.error
d = sys.argv[1]
port = int(sys.argv[3])
bundle = json.loads(open(os.path.join(d, "export.out")).read().splitlines()[-1])
assert bundle["index"]["recall_at_100"] >= 0.95, bundle["index"]
assert int(bundle["candidate_examples_trained"]) == int(sys.argv[2]), bundle

def recommend(body):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/recommend" % port,
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())

first = recommend({"age": 25, "num": 5})
watched = [i["video"] for i in first["items"]]
out = recommend({"watch_history": watched, "search_tokens": [], "region": 1, "device": 1,
                 "age": 25, "gender": 0.5, "num": 10})
items = out["items"]
assert len(items) == 10, out
assert not set(watched) & {i["video"] for i in items}, "a watched video was recommended"
assert all(a["expected_watch_time"] >= b["expected_watch_time"] for a, b in zip(items, items[1:])), items
assert out["version"] == bundle["version"]
try:
    urllib.request.urlopen(urllib.request.Request(
        "http://127.0.0.1:%d/v1/recommend" % port, data=b'{"num": "ten"}'), timeout=10)
    raise AssertionError("a bad request was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 400 and b"num must be a number" in e.read()
health = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10).read())
assert health["status"] == "ok" and health["videos"] == 500, health
print("served", [i["video"] for i in items[:3]], "...")
PY
stop_server
echo "journey_test: ok"
