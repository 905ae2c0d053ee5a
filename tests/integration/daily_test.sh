#!/usr/bin/env bash
# Day after day (scripts/daily.sh, docs/training.md "Day after day") on two
# generated days, trained under mpirun: day 1's logs are converted, trained,
# exported and served; day 2's are converted, trained warm from day 1's
# checkpoint (--init_from, one checkpoint folder for both days, --resume),
# exported into the same bundle folder, and the running server answers with
# the new bundle. Day 2's model scores day 2's held-out examples far better
# than day 1's model does (the new day's videos are new to day 1's model).
# Also: a warm start from a model folder under mpirun onto another number of
# servers, admission keeping the tables smaller, and the flags' usage errors.
source "$(dirname "$0")/lib.sh"

export VREC
WORLD="--num_videos=800 --num_users=1200 --num_tokens=400 --num_topics=8"
# shellcheck disable=SC2054  # --tower takes a comma list
TRAIN="--embedding_dim=16 --tower=32,16 --negatives=64 --batch_size=64"
"$VREC_ROOT/scripts/daily.sh" --days=2 --work="$SCRATCH/daily" --world="$WORLD" --train="$TRAIN" \
  --mpi=1 >"$SCRATCH/daily.out" 2>"$SCRATCH/daily.err" || fail_log "$SCRATCH/daily.err" "daily.sh"
"$PYTHON" - "$SCRATCH/daily.out" "$SCRATCH/daily/day-001.train.log" <<'PY'
import json, sys
days = [json.loads(line) for line in open(sys.argv[1])]
assert len(days) == 2, days
one, two = days
assert one["previous_recall@50"] is None, one
# Warm starting on day 2 beats serving day 1's model on day 2's users, by far.
assert two["recall@50"] > two["previous_recall@50"] + 0.2, two
# The server took each day's bundle.
assert one["served"] == one["bundle"] and two["served"] == two["bundle"], days
assert two["bundle"] != one["bundle"], days
# The step clocks went on from day 1's.
assert two["tables"]["video"]["step"] > one["tables"]["video"]["step"] >= one["steps"] // 2, days
log = open(sys.argv[2]).read()
assert "warm start from checkpoint" in log and "optimizer state" in log, log[-2000:]
PY

# A model folder (weights only) under mpirun, onto two servers.
DAY1="$SCRATCH/daily/data/day-000" DAY2="$SCRATCH/daily/data/day-001"
read -r -a TRAIN_FLAGS <<<"$TRAIN"
"${MPIRUN[@]}" -np 5 "$VREC" train --servers=2 --data="$DAY2" --init_from="$SCRATCH/daily/bundle" \
  "${TRAIN_FLAGS[@]}" --validation_users=0 --max_examples=2000 --progress_seconds=60 \
  >"$SCRATCH/folder.out" 2>"$SCRATCH/folder.err" || fail_log "$SCRATCH/folder.err" "warm start from a bundle"
grep -q "warm start from model folder .*bundle/candidate.*optimizer state starts fresh" \
  "$SCRATCH/folder.err" || fail_log "$SCRATCH/folder.err" "no warm start line"
[[ "$(json_field "$SCRATCH/folder.out" warm_start)" == "$SCRATCH/daily/bundle/candidate" ]] ||
  fail "summary: $(tail -n 1 "$SCRATCH/folder.out")"

# Admission: ids seen fewer than 5 times take no row.
rows() {
  "$VREC" train --data="$DAY1" "${TRAIN_FLAGS[@]}" --validation_users=0 --epochs=1 \
    --checkpoint_dir="$SCRATCH/$1" --progress_seconds=60 "${@:2}" 2>"$SCRATCH/$1.err" |
    tail -n 1 | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["tables"]["video_out"]["rows"])'
}
all=$(rows all) admitted=$(rows admitted --min_count=video_out:5)
((admitted < all)) || fail "--min_count=video_out:5 kept $admitted rows of $all"

# Usage errors name the flag and what is wrong.
out=$("$VREC" train --data="$DAY1" --min_count=videos:3 2>&1) && fail "a bad table name was taken"
[[ $? -eq 2 && "$out" == *"no table 'videos'; its sparse tables: video, token"* ]] || fail "$out"
out=$("$VREC" train --data="$DAY1" --expire_after=soon 2>&1) && fail "a bad --expire_after was taken"
[[ "$out" == *"--expire_after=soon: 'soon' is not TABLE:NUMBER"* ]] || fail "$out"
out=$("$VREC" train --data="$DAY1" --init_from="$SCRATCH" --validation_users=0 2>&1) &&
  fail "a folder without a model was taken"
[[ "$out" == *"is neither a checkpoint"* ]] || fail "$out"
echo "daily_test: OK"
