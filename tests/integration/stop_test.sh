#!/usr/bin/env bash
# docs/operations.md's clean stop, as an operator runs it: find rank 0 with
# `pgrep -x vrec` and its OMPI_COMM_WORLD_RANK, send it SIGTERM; the job
# (without end: --epochs=0) stops cleanly: exit 0, the summary says
# "stopped": true, the model is saved. (The recipe is limited to this test's
# processes by a tag, since other tests run beside it.)
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=3
TAG="stop-$$-$RANDOM"
VREC_TEST_TAG=$TAG "${MPIRUN[@]}" -x VREC_TEST_TAG -np 4 "$VREC" train --data="$SCRATCH/world" \
  --servers=1 --epochs=0 --progress_seconds=1 --ps_stats_seconds=0 "${TINY_MODEL[@]}" \
  --model_dir="$SCRATCH/model" >"$SCRATCH/train.out" 2>"$SCRATCH/train.err" &
job=$!
for _ in $(seq 150); do
  grep -q 'examples' "$SCRATCH/train.err" 2>/dev/null && break
  kill -0 $job 2>/dev/null || break
  sleep 0.2
done
# The recipe of docs/operations.md ("Stopping a job"), plus the tag.
sent=0
for p in $(pgrep -x vrec); do
  grep -qz "^VREC_TEST_TAG=$TAG\$" "/proc/$p/environ" 2>/dev/null || continue
  grep -qz '^OMPI_COMM_WORLD_RANK=0$' "/proc/$p/environ" && kill -TERM "$p" && sent=$((sent + 1))
done
[ "$sent" = 1 ] || { kill $job 2>/dev/null; fail "the recipe found $sent rank-0 processes, not 1"; }
rc=0
wait $job || rc=$?
[ "$rc" = 0 ] || fail_log "$SCRATCH/train.err" "the stopped job exited $rc"
[ "$(json_field "$SCRATCH/train.out" stopped)" = True ] ||
  fail_log "$SCRATCH/train.err" "the summary does not say the job was stopped"
[ -f "$SCRATCH/model/model.pb" ] || fail "no model saved after the clean stop"
echo "stop: ok"
