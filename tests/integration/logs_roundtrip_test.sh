#!/usr/bin/env bash
# The round trip of issue 22: `vrec datagen --logs=DIR` writes its world as a
# team's log tables (docs/data_format.md, "Generated logs"); `vrec convert`
# turns them back (the command datagen prints) into a dataset whose
# examples are datagen's own, up to the ids, in all four splits
# (tests/tools/compare_logs_dataset). Also: the tables read without a bad row
# with the converter's default flags, and the comparison tool fails on a
# dataset whose ids were not mapped. Skipped (77) only while `vrec convert`
# lacks --held_out_users (the native split's flags).
# Usage: logs_roundtrip_test.sh VREC SCRATCH_DIR
source "$(dirname "$0")/lib.sh"

COMPARE=${VREC_TEST_TOOLS:-}/compare_logs_dataset
[ -x "$COMPARE" ] || fail "no compare_logs_dataset tool (VREC_TEST_TOOLS=${VREC_TEST_TOOLS:-unset})"

LOGS=$SCRATCH/logs
make_world "$SCRATCH/native" --seed=5 --num_videos=800 --num_users=300 --num_tokens=400 \
  --num_topics=8 --num_days=10 --test_users=60 --shards=3 --page_rate=0.2 \
  --max_examples_per_user=0 --logs="$LOGS" --progress_seconds=0 ||
  fail_log "$SCRATCH/native.datagen.log" "vrec datagen --logs failed"
for f in events.csv items.csv users.csv test_users.txt README; do
  [ -s "$LOGS/$f" ] || fail "$f missing or empty in $LOGS"
done
for part in "$LOGS"/*.part-*; do
  [ ! -e "$part" ] || fail "a shard's part left in $LOGS: $part"
done
head -n 1 "$LOGS/events.csv" | grep -qx 'user,item,timestamp,event,watch_seconds,query,position,device,region' ||
  fail "events.csv header: $(head -n 1 "$LOGS/events.csv")"
[ "$(wc -l <"$LOGS/test_users.txt")" = 60 ] || fail "test_users.txt has $(wc -l <"$LOGS/test_users.txt") lines"
COMMAND=$("$PYTHON" -c '
import json, sys
s = json.loads(open(sys.argv[1]).read())
logs, c = s["logs"], s["logs"]["counts"]
assert c["watches"] == s["counts"]["watches"], (c, s["counts"])
assert c["impressions"] == s["counts"]["ranking_train"] + s["counts"]["ranking_test"], c
assert c["users"] == 300 and c["test_users"] == 60 and c["items"] == 800, c
print(logs["convert_command"])' "$SCRATCH/native.json") || fail "datagen summary: $(cat "$SCRATCH/native.json")"
grep -qF -- "--held_out_users=$LOGS/test_users.txt" <<<"$COMMAND" || fail "convert command: $COMMAND"

# The converter of today reads every row (no bad row: it would fail).
"$VREC" convert --events="$LOGS/events.csv" --items="$LOGS/items.csv" --users="$LOGS/users.csv" \
  --out="$SCRATCH/plain" --progress_seconds=0 >"$SCRATCH/plain.out" 2>"$SCRATCH/plain.err" ||
  fail_log "$SCRATCH/plain.err" "vrec convert of the generated logs failed"
[ "$(json_field "$SCRATCH/plain.out" skipped_rows)" = 0 ] || fail "skipped rows: $(tail -n 1 "$SCRATCH/plain.out")"
[ "$(json_field "$SCRATCH/plain.out" users)" -gt 250 ] || fail "users: $(tail -n 1 "$SCRATCH/plain.out")"

# The tool can fail: the native dataset against itself, ids not mapped.
rc=0
"$COMPARE" "$SCRATCH/native" "$SCRATCH/native" "$LOGS" >"$SCRATCH/self.out" 2>"$SCRATCH/self.err" || rc=$?
[ "$rc" = 1 ] || fail_log "$SCRATCH/self.err" "comparing unmapped ids exited $rc, not 1"
grep -q "only in the \(native\|converted\) dataset" "$SCRATCH/self.err" || fail_log "$SCRATCH/self.err" "no difference named"

if ! "$VREC" convert --help 2>&1 | grep -q -- '--held_out_users ('; then
  echo "SKIP: vrec convert has no --held_out_users yet (issue 22: the native split's flags)"
  exit 77
fi

# The command datagen printed, as printed (its paths are plain).
CONVERTED=$LOGS/converted
eval "\"\$VREC\" ${COMMAND#vrec } --progress_seconds=0" >"$SCRATCH/convert.out" 2>"$SCRATCH/convert.err" ||
  fail_log "$SCRATCH/convert.err" "$COMMAND failed"
[ -f "$CONVERTED/manifest.pb" ] || fail "no manifest in $CONVERTED"
"$COMPARE" "$SCRATCH/native" "$CONVERTED" "$LOGS" >"$SCRATCH/compare.out" 2>"$SCRATCH/compare.err" ||
  fail_log "$SCRATCH/compare.err" "the converted logs differ from the native dataset: $(tail -n 1 "$SCRATCH/compare.out")"
"$PYTHON" -c '
import json, sys
s = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert s["match"], s
for split in ("candidate_train", "candidate_test", "ranking_train", "ranking_test"):
    r = s["splits"][split]
    assert r["matched"] == r["native"] == r["converted"] > 0, (split, r)
' "$SCRATCH/compare.out" || fail "compare summary: $(tail -n 1 "$SCRATCH/compare.out")"
echo "logs round trip: $(tail -n 1 "$SCRATCH/compare.out")"
