#!/usr/bin/env bash
# A worker rank frozen for good (SIGSTOP) under mpirun: the coordinator
# notices its silence after --failure_timeout and the job ends with a
# non-zero exit naming the worker, instead of hanging forever.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=5
# epochs=0: without end, so only the freeze can end it. Its ranks carry a
# tag of this test run, so that only they are touched (other tests run
# beside this one).
TAG="frozen-$$-$RANDOM"
ranks() { tagged_ranks "$TAG" "$@"; }  # this test's ranks; with an argument, that rank
VREC_TEST_TAG=$TAG "${MPIRUN[@]}" -x VREC_TEST_TAG -np 4 "$VREC" train --data="$SCRATCH/world" \
  --servers=1 --epochs=0 --failure_timeout=4 --progress_seconds=1 --ps_stats_seconds=0 "${TINY_MODEL[@]}" \
  >"$SCRATCH/train.out" 2>"$SCRATCH/train.err" &
job=$!
# Rank 2 is worker 0 (rank 0 coordinates, rank 1 serves).
worker=""
for _ in $(seq 100); do
  worker=$(ranks 2 | head -n 1)
  [ -n "$worker" ] && grep -q 'examples' "$SCRATCH/train.err" 2>/dev/null && break
  sleep 0.2
done
[ -n "$worker" ] || { kill "$job" 2>/dev/null; fail_log "$SCRATCH/train.err" "no worker rank found"; }
kill -STOP "$worker"
rc=0
for _ in $(seq 120); do  # at most 60 s
  kill -0 "$job" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "$job" 2>/dev/null; then
  kill -CONT "$worker" 2>/dev/null || true
  kill -9 "$job" $(ranks) 2>/dev/null || true
  fail_log "$SCRATCH/train.err" "the job still runs 60 s after a worker froze"
fi
wait "$job" || rc=$?
kill -9 "$worker" 2>/dev/null || true
[ "$rc" -ne 0 ] || fail_log "$SCRATCH/train.err" "the job exited 0 with a frozen worker"
grep -q "worker 0 sent nothing for\|worker 0 (rank 2 on host .*) has not answered" "$SCRATCH/train.err" ||
  fail_log "$SCRATCH/train.err" "no error naming the frozen worker"
echo "frozen worker: ok (exit $rc)"
