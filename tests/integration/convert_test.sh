#!/usr/bin/env bash
# vrec convert end to end: a small MovieLens-style CSV (quoted titles with
# commas and quotes, permuted columns, CRLF) becomes a dataset whose summary
# JSON has the expected counts; a bad row fails with its line number; skip mode
# counts it. Usage: convert_test.sh VREC SCRATCH_DIR
source "$(dirname "$0")/lib.sh"

# Users 1 (4 watches), 2 (3 watches, two tied), 3 (1 watch). Items 10..16, 20.
printf '%s\r\n' \
  'movieId,title,userId,rating,timestamp,genres' \
  '10,"American President, The (1995)",1,4.0,1000,Comedy|Drama' \
  '11,"""Great Performances"" Cats (1998)",1,3.5,2000,Musical' \
  '12,Heat (1995),1,5.0,3000,Action' \
  '13,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",1,2.0,4000,Fantasy' \
  '14,Up (2009),2,4.0,500,Animation' \
  '15,"Bird Cage, The (1996)",2,4.0,500,Comedy' \
  '16,Alien (1979),2,1.0,600,Horror' \
  '20,Solo (2018),3,3.0,700,Action' > "$SCRATCH/ratings.csv"

"$VREC" convert --csv="$SCRATCH/ratings.csv" --out="$SCRATCH/ds" --shards=2 --progress_seconds=0 \
  > "$SCRATCH/out.txt" 2> "$SCRATCH/err.txt" || fail_log "$SCRATCH/err.txt" "convert exited $?"
[ "$(json_field "$SCRATCH/out.txt" users)" = 3 ] || fail "users: $(tail -n 1 "$SCRATCH/out.txt")"
[ "$(json_field "$SCRATCH/out.txt" items)" = 8 ] || fail "items: $(tail -n 1 "$SCRATCH/out.txt")"
# user 1: 11, 12 train, 13 test; user 2: 15 train, 16 test; user 3: none.
[ "$(json_field "$SCRATCH/out.txt" train_examples)" = 3 ] || fail "train: $(tail -n 1 "$SCRATCH/out.txt")"
[ "$(json_field "$SCRATCH/out.txt" test_examples)" = 2 ] || fail "test: $(tail -n 1 "$SCRATCH/out.txt")"
[ "$(json_field "$SCRATCH/out.txt" skipped_rows)" = 0 ] || fail "skipped: $(tail -n 1 "$SCRATCH/out.txt")"
[ -f "$SCRATCH/ds/manifest.pb" ] || fail "no manifest.pb"
[ -f "$SCRATCH/ds/manifest.json" ] || fail "no manifest.json"
[ -f "$SCRATCH/ds/candidate/train-00000-of-00002.rec" ] || fail "no train shard 0"
[ -f "$SCRATCH/ds/candidate/train-00001-of-00002.rec" ] || fail "no train shard 1"
[ -f "$SCRATCH/ds/candidate/test-00000-of-00001.rec" ] || fail "no test shard"
[ -f "$SCRATCH/ds/videos.rec" ] || fail "no videos.rec"

# --min_rating drops watches rated below it.
"$VREC" convert --csv="$SCRATCH/ratings.csv" --out="$SCRATCH/ds_rated" --min_rating=3.5 \
  --progress_seconds=0 > "$SCRATCH/out_rated.txt" 2> "$SCRATCH/err_rated.txt" \
  || fail_log "$SCRATCH/err_rated.txt" "convert --min_rating failed"
[ "$(json_field "$SCRATCH/out_rated.txt" filtered_rows)" = 3 ] || fail "filtered: $(tail -n 1 "$SCRATCH/out_rated.txt")"

# A bad row (line 4: non-numeric movieId) fails and names its line.
cat > "$SCRATCH/bad.csv" <<'CSV'
userId,movieId,rating,timestamp
1,10,4.0,100
1,11,4.0,200
1,twelve,4.0,300
1,13,4.0,400
CSV
rc=0
"$VREC" convert --csv="$SCRATCH/bad.csv" --out="$SCRATCH/bad" --progress_seconds=0 \
  > "$SCRATCH/bad_out.txt" 2> "$SCRATCH/bad_err.txt" || rc=$?
[ "$rc" -ne 0 ] || fail "a bad row did not fail the conversion"
grep -q "bad.csv:4: movieId 'twelve'" "$SCRATCH/bad_err.txt" ||
  fail_log "$SCRATCH/bad_err.txt" "error does not name line 4"
[ ! -f "$SCRATCH/bad/manifest.pb" ] || fail "a failed conversion left a manifest"

# Skip mode: the row is counted and the rest converted.
"$VREC" convert --csv="$SCRATCH/bad.csv" --out="$SCRATCH/bad" --skip_bad_rows --progress_seconds=0 \
  > "$SCRATCH/skip_out.txt" 2> "$SCRATCH/skip_err.txt" || fail_log "$SCRATCH/skip_err.txt" "skip mode failed"
[ "$(json_field "$SCRATCH/skip_out.txt" skipped_rows)" = 1 ] || fail "skipped_rows: $(tail -n 1 "$SCRATCH/skip_out.txt")"
[ "$(json_field "$SCRATCH/skip_out.txt" train_examples)" = 1 ] || fail "skip train: $(tail -n 1 "$SCRATCH/skip_out.txt")"
grep -q "bad.csv:4:" "$SCRATCH/skip_err.txt" || fail "skip mode does not report the skipped line"

# Usage errors exit 2.
rc=0
"$VREC" convert --csv="$SCRATCH/ratings.csv" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "missing --out exited $rc, want 2"
rc=0
"$VREC" convert --csv="$SCRATCH/missing.csv" --out="$SCRATCH/x" > /dev/null 2> "$SCRATCH/missing_err.txt" || rc=$?
[ "$rc" -eq 1 ] || fail "missing CSV exited $rc, want 1"
grep -q "missing.csv" "$SCRATCH/missing_err.txt" || fail "missing CSV error does not name the file"

# A log without rewatches (every user rates a movie once) is a task of
# unwatched videos: convert marks it, and train and eval exclude watched
# videos unless told otherwise; one rewatch and they do not.
"$PYTHON" - "$SCRATCH/once.csv" "$SCRATCH/again.csv" <<'PY'
import random, sys
rng = random.Random(5)
rows = ["userId,movieId,timestamp"]
for u in range(1, 61):
    for k, m in enumerate(rng.sample(range(1, 201), 12)):
        rows.append("%d,%d,%d" % (u, m, 1000 * u + k))
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
rows.append("1,%s,999999" % rows[1].split(",")[1])  # user 1 watches a movie again
open(sys.argv[2], "w").write("\n".join(rows) + "\n")
PY
SMALL=(--embedding_dim=8 --tower=16 --negatives=16 --batch_size=32 --validation_users=0
       --progress_seconds=0 --ps_stats_seconds=0)
for log in once again; do
  "$VREC" convert --csv="$SCRATCH/$log.csv" --out="$SCRATCH/$log" >"$SCRATCH/$log.conv" 2>&1 ||
    fail_log "$SCRATCH/$log.conv" "convert $log.csv"
  "$VREC" train --data="$SCRATCH/$log" --model_dir="$SCRATCH/$log-m" "${SMALL[@]}" \
    >"$SCRATCH/$log.train" 2>"$SCRATCH/$log.train.err" || fail_log "$SCRATCH/$log.train.err" "train $log"
  "$VREC" eval --model_dir="$SCRATCH/$log-m" --data="$SCRATCH/$log" >"$SCRATCH/$log.eval" 2>&1 ||
    fail_log "$SCRATCH/$log.eval" "eval $log"
  "$VREC" eval --model_dir="$SCRATCH/$log-m" --data="$SCRATCH/$log" --exclude_watched=false \
    >"$SCRATCH/$log.eval_kept" 2>&1 || fail_log "$SCRATCH/$log.eval_kept" "eval $log, watched kept"
done
"$PYTHON" - "$SCRATCH" <<'PY'
import json, sys
d = sys.argv[1]
last = lambda f: json.loads(open(d + "/" + f).read().splitlines()[-1])
assert json.load(open(d + "/once/manifest.json")).get("watches_unique") is True
assert not json.load(open(d + "/again/manifest.json")).get("watches_unique", False)
assert last("once.conv")["rewatches"] == 0 and last("again.conv")["rewatches"] == 1
assert last("once.train")["eval"]["exclude_watched"] is True
assert last("once.eval")["exclude_watched"] is True
assert last("once.eval_kept")["exclude_watched"] is False
assert last("again.train")["eval"]["exclude_watched"] is False
assert last("again.eval")["exclude_watched"] is False
PY

# An events table of string ids (JSON Lines, gzip): the same watches as
# once.csv, converted, trained on, evaluated; every id comes back.
"$PYTHON" - "$SCRATCH/once.csv" "$SCRATCH/events.jsonl" <<'PY'
import csv, json, sys
with open(sys.argv[2], "w") as out:
    for r in csv.DictReader(open(sys.argv[1])):
        out.write(json.dumps({"user": "user %s" % r["userId"], "item": "film/%s" % r["movieId"],
                              "timestamp": int(r["timestamp"]), "event": "watch"}) + "\n")
        out.write(json.dumps({"user": "user %s" % r["userId"], "item": "ad-1",
                              "timestamp": int(r["timestamp"]), "event": "impression"}) + "\n")
PY
gzip -f "$SCRATCH/events.jsonl"
"$VREC" convert --events="$SCRATCH/events.jsonl.gz" --out="$SCRATCH/events" >"$SCRATCH/events.conv" \
  2>&1 || fail_log "$SCRATCH/events.conv" "convert --events"
"$VREC" train --data="$SCRATCH/events" --model_dir="$SCRATCH/events-m" "${SMALL[@]}" \
  >"$SCRATCH/events.train" 2>"$SCRATCH/events.train.err" ||
  fail_log "$SCRATCH/events.train.err" "train on the events"
"$PYTHON" - "$SCRATCH" <<'PY'
import json, sys
d = sys.argv[1]
last = lambda f: json.loads(open(d + "/" + f).read().splitlines()[-1])
once, events = last("once.conv"), last("events.conv")
for k in ("users", "train_examples", "test_examples", "rewatches"):
    assert once[k] == events[k], (k, once[k], events[k])
assert events["items"] == once["items"] + 1, events  # the impressed ad too
assert events["other_events"] == events["rows"] // 2, events
assert events["impressions"] == events["rows"] // 2, events
assert events["ranking_train_examples"] + events["ranking_test_examples"] == events["impressions"]
ids = sorted(l.split("\t")[1].strip() for l in open(d + "/events/ids/items.tsv"))
assert len(ids) == once["items"] + 1 and ids[0] == "ad-1", ids[:3]
assert all(i.startswith("film/") for i in ids[1:]), ids[:3]
assert last("events.train")["examples"] > 0
PY
# The evaluation's dump names users and items by the team's ids, and its
# ranks agree with the metrics.
"$VREC" eval --model_dir="$SCRATCH/events-m" --data="$SCRATCH/events" --dump="$SCRATCH/dump.jsonl" \
  --dump_top=7 >"$SCRATCH/events.eval" 2>&1 || fail_log "$SCRATCH/events.eval" "eval --dump"
"$PYTHON" - "$SCRATCH" <<'PY'
import json, sys
d = sys.argv[1]
ev = json.loads(open(d + "/events.eval").read().splitlines()[-1])
rows = [json.loads(l) for l in open(d + "/dump.jsonl")]
assert len(rows) == ev["examples"] == ev["dump"]["examples"], (len(rows), ev)
assert all(r["user"].startswith("user ") and r["label"].startswith("film/") for r in rows), rows[0]
assert all(len(r["top"]) == 7 and len(set(r["top"])) == 7 for r in rows), rows[0]
r10 = sum(1 for r in rows if r["rank"] is not None and r["rank"] <= 10) / len(rows)
assert abs(r10 - ev["recall@10"]) < 1e-9, (r10, ev["recall@10"])
top1 = [r for r in rows if r["rank"] == 1]
assert all(r["top"][0] == r["label"] for r in top1), top1[:1]
PY
# Served under the team's ids: a history of string ids and search text in,
# items named by the team's ids out.
"$VREC" export --checkpoint="$SCRATCH/events-m" --data="$SCRATCH/events" \
  --out="$SCRATCH/events-bundle" >"$SCRATCH/events.export" 2>&1 ||
  fail_log "$SCRATCH/events.export" "export the events model"
start_server "$SCRATCH/serve.out" "$SCRATCH/serve.err" --model="$SCRATCH/events-bundle"
"$PYTHON" - "$PORT" "$SCRATCH/events/ids/items.tsv" <<'PY'
import json, sys, urllib.request
port, ids = sys.argv[1], [l.split("\t")[1].strip() for l in open(sys.argv[2])]
body = json.dumps({"watch_history": ids[:3], "search_query": "Funny cats", "num": 5}).encode()
req = urllib.request.Request("http://127.0.0.1:%s/v1/recommend" % port, body,
                             {"Content-Type": "application/json"})
items = json.load(urllib.request.urlopen(req))["items"]
assert len(items) == 5 and all(i["item"] in ids for i in items), items
assert not set(i["item"] for i in items) & set(ids[:3]), "watched items came back"
PY
stop_server
echo "convert_test: OK"
