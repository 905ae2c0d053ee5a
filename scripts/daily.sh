#!/usr/bin/env bash
# Day after day (docs/training.md, "Day after day"): a generated world's logs
# split by day, then
#   the first day   vrec convert -> vrec train -> vrec export -> vrec serve (background)
#   each next day   vrec convert -> vrec train --init_from (yesterday's checkpoint)
#                   -> vrec export into the same bundle folder -> the server reloads it
# and, each day, yesterday's model scored on today's held-out examples beside
# today's model (what warm starting bought).
#
#   scripts/daily.sh [--days=3] [--work=DIR] [--world="DATAGEN FLAGS"] [--logs=DIR]
#                    [--history_days=7] [--convert="CONVERT FLAGS"]
#                    [--train="TRAIN FLAGS"] [--min_count=SPEC] [--expire_after=SPEC]
#                    [--serve=1] [--mpi=0] [--warm=1]
#
#   --days          days to run: the world has this many; of --logs, the first
#                   this many days that have events
#   --work          keep everything in DIR (default: a temporary folder, removed)
#   --world         more vrec datagen flags (the world; a later flag wins)
#   --logs          take DIR/events.csv, DIR/items.csv and DIR/users.csv if
#                   there (docs/data_format.md; day d = unix time
#                   [d*86400, (d+1)*86400)) instead of a generated world's
#                   (`vrec datagen --logs`): your own logs, or an earlier run's
#                   WORK/logs (the same days for several settings)
#   --history_days  each day is converted with the days before it, this many
#                   in all, as history only (`vrec convert --label_from`): a
#                   day's examples see the user's earlier days
#   --convert       more vrec convert flags (default for generated logs:
#                   --clicks_are_watches=false, as datagen's README says)
#   --train         more vrec train flags (every day's)
#   --min_count, --expire_after   passed to every day's vrec train
#   --serve         0: no export and no server (measurements)
#   --mpi           1: train under mpirun (1 server, 2 workers) instead of one process
#   --warm          0: train each day from scratch (no --init_from), for comparison
#
# Prints one JSON line per day on stdout: day, train_examples, test_examples,
# steps, seconds, tables (each table's rows and step clock at the day's last
# checkpoint), "recall@50" (today's model on today's held-out examples),
# "previous_recall@50" (yesterday's model on them), and with --serve bundle
# (the version exported) and served (the version the server then answers
# with). Fails if the server does not take the new bundle.
source "$(dirname "$0")/lib/prologue.sh"

DAYS=3 WORK_DIR="" WORLD_FLAGS="" LOGS="" TRAIN_FLAGS="" MIN_COUNT="" EXPIRE_AFTER="" SERVE=1 MPI=0 WARM=1
HISTORY_DAYS=7 CONVERT_FLAGS=""
parse_flags days:DAYS work:WORK_DIR world:WORLD_FLAGS logs:LOGS train:TRAIN_FLAGS \
  min_count:MIN_COUNT expire_after:EXPIRE_AFTER serve:SERVE mpi:MPI warm:WARM \
  history_days:HISTORY_DAYS convert:CONVERT_FLAGS -- "$@"
[[ "$HISTORY_DAYS" =~ ^[1-9][0-9]*$ ]] || die "--history_days=$HISTORY_DAYS: give a whole number >= 1"
[[ "$DAYS" =~ ^[1-9][0-9]*$ ]] || die "--days=$DAYS: give a whole number >= 1"
find_vrec
VREC=$(realpath "$VREC")
if [[ -n "$WORK_DIR" ]]; then
  WORK=$(realpath -m "$WORK_DIR")
  rm -rf "$WORK"
  mkdir -p "$WORK"
else
  make_work daily
fi
read -r -a WORLD <<<"$WORLD_FLAGS"
read -r -a TRAIN <<<"$TRAIN_FLAGS"
# A small world whose catalogue churns: 60% of the videos upload during the
# window, fresh ones are popular for about two days.
DEFAULT_WORLD=(--num_videos=2000 --num_users=2000 --num_tokens=1000 --num_topics=20
               --mean_actions_per_user=$((20 * DAYS)) --seed=1)
# shellcheck disable=SC2054  # --tower takes a comma list
DEFAULT_TRAIN=(--embedding_dim=32 --tower=64,32 --negatives=128 --batch_size=128
               --learning_rate=0.01 --epochs=3 --validation_users=0 --progress_seconds=60)
POLICY=()
[[ -z "$MIN_COUNT" ]] || POLICY+=(--min_count="$MIN_COUNT")
[[ -z "$EXPIRE_AFTER" ]] || POLICY+=(--expire_after="$EXPIRE_AFTER")

# The logs: events.csv, items.csv, users.csv (docs/data_format.md).
if [[ -n "$LOGS" ]]; then
  [[ -f "$LOGS/events.csv" && -f "$LOGS/items.csv" ]] || die "--logs=$LOGS: no events.csv and items.csv"
  LOGS=$(realpath "$LOGS")
else
  make_world "$WORK/world" "${DEFAULT_WORLD[@]}" --num_days="$DAYS" "${WORLD[@]}" \
    --logs="$WORK/logs" || die "vrec datagen: $(tail -n 5 "$WORK/world.datagen.log")"
  LOGS=$WORK/logs
  [[ -n "$CONVERT_FLAGS" ]] || CONVERT_FLAGS=--clicks_are_watches=false
fi
read -r -a CONVERT <<<"$CONVERT_FLAGS"
"$PYTHON" "$VREC_ROOT/scripts/lib/day_logs.py" split "$LOGS" "$WORK/days" \
  --history_days="$HISTORY_DAYS" >/dev/null

# Field KEY (a.b for nested ones) of the JSON object on FILE's last line.
field() {
  tail -n 1 "$1" | "$PYTHON" -c '
import json, sys
v = json.loads(sys.stdin.read())
for k in sys.argv[1].split("."):
    v = v[k]
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$2"
}

# The version the server at PORT answers a recommendation with (after
# asking it to reload its bundle).
served_version() {
  "$PYTHON" - "$PORT" <<'PY'
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
urllib.request.urlopen(urllib.request.Request(base + "/v1/reload", data=b"", method="POST")).read()
req = urllib.request.Request(base + "/v1/recommend", data=b'{"num": 5}',
                             headers={"Content-Type": "application/json"})
print(json.loads(urllib.request.urlopen(req).read())["version"])
PY
}

train() {
  if [[ "$MPI" == 1 ]]; then
    "${MPIRUN[@]}" -np 4 "$VREC" train --servers=1 "$@"
  else
    "$VREC" train "$@"
  fi
}

# The first --days days that have events, in order.
mapfile -t RUN_DAYS < <(find "$WORK/days" -mindepth 1 -maxdepth 1 -name 'day-*' -printf '%f\n' |
  sort -V | head -n "$DAYS")
((${#RUN_DAYS[@]} > 0)) || die "no day of the logs has events"
previous=""
for day in "${RUN_DAYS[@]}"; do
  d=$((10#${day#day-}))
  users=()
  [[ ! -f "$WORK/days/$day/users.csv" ]] || users=(--users="$WORK/days/$day/users.csv")
  "$VREC" convert --events="$WORK/days/$day/events.csv" --items="$WORK/days/$day/items.csv" \
    "${users[@]}" --label_from="$(cat "$WORK/days/$day/label_from")" "${CONVERT[@]}" \
    --out="$WORK/data/$day" >"$WORK/$day.convert.json" 2>"$WORK/$day.convert.log" ||
    die "$day: vrec convert: $(tail -n 3 "$WORK/$day.convert.log")"
  # One checkpoint folder for every day: with --resume and --init_from a
  # checkpoint of today's data continues an interrupted day, yesterday's
  # starts today's (the first day: none, from scratch).
  start=()
  [[ -z "$previous" || "$WARM" != 1 ]] || start=(--init_from="$WORK/ckpt")
  ckpt=$WORK/ckpt
  [[ "$WARM" == 1 ]] || ckpt=$WORK/ckpt/$day
  train --data="$WORK/data/$day" --model_dir="$WORK/model/$day" --checkpoint_dir="$ckpt" \
    --resume "${start[@]}" "${DEFAULT_TRAIN[@]}" "${TRAIN[@]}" "${POLICY[@]}" \
    >"$WORK/$day.train.json" 2>"$WORK/$day.train.log"
  prev_recall=null
  if [[ -n "$previous" ]]; then
    "$VREC" eval --model_dir="$WORK/model/$previous" --data="$WORK/data/$day" \
      >"$WORK/$day.previous.json" 2>"$WORK/$day.previous.log"
    prev_recall=$(field "$WORK/$day.previous.json" recall@50)
  fi
  bundle=null served=null
  if [[ "$SERVE" == 1 ]]; then
    "$VREC" export --checkpoint="$WORK/model/$day" --data="$WORK/data/$day" --out="$WORK/bundle" \
      >"$WORK/$day.export.json" 2>"$WORK/$day.export.log"
    bundle=$(field "$WORK/$day.export.json" version)
    if [[ -z "$SERVER" ]]; then
      start_server "$WORK/serve.out" "$WORK/serve.log" --model="$WORK/bundle" --reload_seconds=3600
    fi
    served=$(served_version)
    [[ "$served" == "$bundle" ]] || die "$day: the server answers with bundle $served, not the new $bundle"
    bundle="\"$bundle\"" served="\"$served\""
  fi
  echo "{\"day\": $d, \"train_examples\": $(field "$WORK/$day.convert.json" train_examples)," \
    "\"test_examples\": $(field "$WORK/$day.convert.json" test_examples)," \
    "\"steps\": $(field "$WORK/$day.train.json" steps), \"seconds\": $(field "$WORK/$day.train.json" seconds)," \
    "\"tables\": $(field "$WORK/$day.train.json" tables)," \
    "\"recall@50\": $(field "$WORK/$day.train.json" eval.recall@50), \"previous_recall@50\": $prev_recall," \
    "\"bundle\": $bundle, \"served\": $served}"
  previous=$day
done
if [[ -n "$SERVER" ]]; then stop_server; fi
