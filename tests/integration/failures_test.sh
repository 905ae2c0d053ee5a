#!/usr/bin/env bash
# Failures found within --failure_timeout at any point, and --max_seconds
# kept as a promise, under mpirun (frozen_worker_test.sh has the frozen
# worker):
#   1. a parameter server frozen (SIGSTOP) mid-run: the job ends non-zero,
#      naming the server, its rank and host;
#   2. the coordinator (rank 0) frozen: the other ranks find it and the job
#      ends non-zero, naming it;
#   3. a worker frozen with liveness off (--failure_timeout=0) and
#      --max_seconds=3 --max_seconds_grace=3: the job still ends, by about 6 s.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=6
TAG="failures-$$-$RANDOM"
ranks() { tagged_ranks "$TAG" "$@"; }  # this test's ranks; with an argument, that rank

# freeze NAME RANK WITHIN FLAGS...: starts a job without end, SIGSTOPs rank
# RANK once it trains, and checks the job ends non-zero within WITHIN s.
freeze() {
  local name=$1 rank=$2 within=$3
  shift 3
  VREC_TEST_TAG=$TAG "${MPIRUN[@]}" -x VREC_TEST_TAG -np 4 "$VREC" train --data="$SCRATCH/world" \
    --servers=1 --epochs=0 --progress_seconds=1 --ps_stats_seconds=0 "${TINY_MODEL[@]}" "$@" \
    >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" &
  local job=$! pid=""
  for _ in $(seq 100); do
    pid=$(ranks "$rank" | head -n 1)
    [ -n "$pid" ] && grep -q 'examples' "$SCRATCH/$name.err" 2>/dev/null && break
    sleep 0.2
  done
  [ -n "$pid" ] || { kill "$job" 2>/dev/null; fail_log "$SCRATCH/$name.err" "$name: no rank $rank"; }
  kill -STOP "$pid"
  local start=$SECONDS rc=0
  while kill -0 "$job" 2>/dev/null && ((SECONDS - start < within)); do sleep 0.5; done
  if kill -0 "$job" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true
    kill -9 "$job" $(ranks) 2>/dev/null || true
    fail_log "$SCRATCH/$name.err" "$name: the job still runs $within s after rank $rank froze"
  fi
  wait "$job" || rc=$?
  kill -9 "$pid" $(ranks) 2>/dev/null || true
  [ "$rc" -ne 0 ] || fail_log "$SCRATCH/$name.err" "$name: the job exited 0"
  echo "$name: ended $((SECONDS - start)) s after the freeze (exit $rc)"
}

# 1. Rank 1 is parameter server 0.
freeze server 1 30 --failure_timeout=4
grep -q "parameter server 0 (rank 1 on host .*) has not answered for" "$SCRATCH/server.err" ||
  fail_log "$SCRATCH/server.err" "no error naming the frozen server"

# 2. Rank 0 is the coordinator; the workers and the server find it.
freeze coordinator 0 30 --failure_timeout=4
grep -q "the coordinator (rank 0 on host .*) has not answered for .*this rank ends" \
  "$SCRATCH/coordinator.err" || fail_log "$SCRATCH/coordinator.err" "no error naming the coordinator"

# 3. Rank 2 is worker 0; nothing watches it, but the deadline holds.
freeze deadline 2 20 --failure_timeout=0 --max_seconds=3 --max_seconds_grace=3
grep -q "has not ended 6 s after it started (--max_seconds=3 plus --max_seconds_grace); ending it" \
  "$SCRATCH/deadline.err" || fail_log "$SCRATCH/deadline.err" "no message of the promise kept"
echo "failures: ok"
