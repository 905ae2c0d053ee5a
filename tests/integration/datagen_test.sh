#!/usr/bin/env bash
# vrec datagen end to end: a tiny world twice with the same seed (different
# thread counts) must give identical files; the last stdout line is a JSON
# summary whose oracle figures are in [0, 1] with recall@1 <= @10 <= @50 <= @100;
# the dataset is complete (manifest, truth.json, videos.rec); bad flags exit 2.
source "$(dirname "$0")/lib.sh"

TINY=(--seed=7 --num_videos=3000 --num_users=1500 --num_tokens=2000 --num_topics=30
      --num_days=14 --test_users=300 --shards=3 --fsync=false)

"$VREC" datagen --out="$SCRATCH/a" --threads=1 "${TINY[@]}" >"$SCRATCH/a.out" 2>"$SCRATCH/a.err"
"$VREC" datagen --out="$SCRATCH/b" --threads=2 "${TINY[@]}" >"$SCRATCH/b.out" 2>"$SCRATCH/b.err"

for f in candidate/train-00000-of-00003.rec candidate/train-00002-of-00003.rec \
         candidate/test-00001-of-00003.rec ranking/train-00001-of-00003.rec \
         ranking/test-00000-of-00003.rec videos.rec manifest.pb; do
  cmp "$SCRATCH/a/$f" "$SCRATCH/b/$f" || fail "$f differs between runs"
done
for f in truth.json manifest.json videos.rec; do
  [[ -s "$SCRATCH/a/$f" ]] || fail "$f missing or empty"
done

tail -n 1 "$SCRATCH/a.out" | "$PYTHON" -c '
import json, sys
s = json.loads(sys.stdin.read())
o = s["oracle"]
keys = ["recall@1", "recall@10", "recall@50", "recall@100", "weighted_per_user_loss"]
for k in keys:
    v = o[k]
    assert 0.0 <= v <= 1.0, (k, v)
assert o["recall@1"] <= o["recall@10"] <= o["recall@50"] <= o["recall@100"], o
assert 0.0 < o["recall@100"] < 1.0, o
assert 0.0 < o["weighted_per_user_loss"] < 0.5, o
assert o["test_examples"] > 200, o
c = s["counts"]
assert c["users"] == 1500 and c["candidate_train"] > 0 and c["ranking_test"] > 0, c
assert s["examples_per_s"] > 0
'
"$PYTHON" -c '
import json, sys
t = json.load(open(sys.argv[1]))
assert "recall@10" in t["oracle"] and t["world"]["num_videos"] == 3000, t
' "$SCRATCH/a/truth.json"

# A different seed gives a different world.
"$VREC" datagen --out="$SCRATCH/c" --threads=2 "${TINY[@]}" --seed=8 >/dev/null 2>&1
if cmp -s "$SCRATCH/a/candidate/train-00000-of-00003.rec" "$SCRATCH/c/candidate/train-00000-of-00003.rec"; then
  fail "seeds 7 and 8 gave identical data"
fi

# Bad flags: exit 2 with a message naming the flag.
set +e
"$VREC" datagen --out="$SCRATCH/d" --num_videos=5 --num_topics=30 >/dev/null 2>"$SCRATCH/bad.err"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "bad --num_videos exited $rc, want 2"
grep -q num_videos "$SCRATCH/bad.err" || fail_log "$SCRATCH/bad.err" "error does not name num_videos"
set +e
"$VREC" datagen >/dev/null 2>"$SCRATCH/noout.err"
rc=$?
set -e
[[ $rc -eq 2 ]] || fail "missing --out exited $rc, want 2"
# Every user held out: a warning says the ranking model gets nothing, and
# training it says why it cannot.
"$VREC" datagen --out="$SCRATCH/e" --num_users=150 --test_users=150 --num_videos=300 \
  --num_tokens=100 --num_topics=5 --shards=1 >/dev/null 2>"$SCRATCH/e.err" ||
  fail_log "$SCRATCH/e.err" "datagen with every user held out"
grep -q "warning: --test_users=150 holds out all 150 users" "$SCRATCH/e.err" ||
  fail_log "$SCRATCH/e.err" "no warning for --test_users >= --num_users"
if "$VREC" train --model=ranking --data="$SCRATCH/e" --progress_seconds=0 >/dev/null \
  2>"$SCRATCH/e_train.err"; then
  fail "trained a ranking model without ranking training examples"
fi
grep -q "no ranking training examples.*regenerate it with fewer" "$SCRATCH/e_train.err" ||
  fail_log "$SCRATCH/e_train.err" "the ranking error does not say why"
echo "datagen integration test passed"
