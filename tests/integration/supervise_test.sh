#!/usr/bin/env bash
# Failures survived without a person: `vrec supervise` runs an mpirun job
# (2 servers, 2 workers, a checkpoint every second) while this script kills
# (SIGKILL) or freezes (SIGSTOP) a random rank (the coordinator, a server or
# a worker) at random moments, three times. Each fault ends the job (a killed rank: mpirun; a
# frozen one: --failure_timeout), the supervisor starts it again with
# --resume, and it completes. Then every example was trained exactly once:
# each worker's trained example ids, step by step (a step replayed after a
# resume counts once: its last logging), equal those of an uninterrupted
# run. The seed of the faults is printed; VREC_FAULT_SEED repeats a run.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=7
SEED=${VREC_FAULT_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
echo "fault seed: $SEED (VREC_FAULT_SEED=$SEED repeats it)"
TOTAL=500000
TRAIN=(train --data="$SCRATCH/world" "${TINY_MODEL[@]}" --epochs=0 --max_examples=$TOTAL
       --servers=2 --progress_seconds=1 --ps_stats_seconds=0 --failure_timeout=3)

# The reference: uninterrupted.
"${MPIRUN[@]}" -np 5 "$VREC" "${TRAIN[@]}" --example_log_dir="$SCRATCH/log_ref" \
  >"$SCRATCH/ref.out" 2>"$SCRATCH/ref.err" || fail_log "$SCRATCH/ref.err" "reference run"

TAG="supervise-$$-$RANDOM"
ranks() { tagged_ranks "$TAG" "$@"; }  # this test's ranks; with an argument, that rank
newest_checkpoint() { { ls -d "$SCRATCH"/ckpt/ckpt-*/MANIFEST 2>/dev/null || true; } | sort | tail -n 1; }

VREC_TEST_TAG=$TAG "$VREC" supervise --restarts=5 --restart_delay_seconds=1 -- \
  "${MPIRUN[@]}" -x VREC_TEST_TAG -np 5 "$VREC" "${TRAIN[@]}" \
  --example_log_dir="$SCRATCH/log" --checkpoint_dir="$SCRATCH/ckpt" --checkpoint_every=1s \
  --model_dir="$SCRATCH/model" >"$SCRATCH/run.out" 2>"$SCRATCH/run.err" &
SUPERVISOR=$!
# At exit, this test's ranks are killed, then the prologue's own trap runs
# with the exit status.
trap 'rc=$?; set +e; kill -9 $(ranks) 2>/dev/null; (exit "$rc"); _prologue_on_exit' EXIT

faults=0
for fault in 1 2 3; do
  # Once this attempt has written a checkpoint of its own, after a random
  # 0.2-1.5 s: rank 0 (the coordinator), 1 or 2 (a server) or 3 or 4 (a
  # worker), killed or frozen.
  before=$(newest_checkpoint)
  for _ in $(seq 300); do
    kill -0 $SUPERVISOR 2>/dev/null || break
    now=$(newest_checkpoint)
    [ -n "$now" ] && [ "$now" != "$before" ] && [ -n "$(ranks 4)" ] && break
    sleep 0.1
  done
  kill -0 $SUPERVISOR 2>/dev/null || break
  sleep "$((RANDOM % 14 + 2))e-1"
  rank=$((RANDOM % 5))
  signal=$([ $((RANDOM % 2)) = 0 ] && echo KILL || echo STOP)
  pid=$(ranks $rank | head -n 1)
  [ -n "$pid" ] || continue
  echo "fault $fault: SIG$signal to rank $rank (pid $pid)"
  kill -s "$signal" "$pid" 2>/dev/null || continue
  faults=$((faults + 1))
  # Until this attempt has ended (the supervisor says it restarts).
  for _ in $(seq 300); do
    [ "$(grep -c '^\[supervise\] the job' "$SCRATCH/run.err")" -ge "$faults" ] && break
    kill -0 $SUPERVISOR 2>/dev/null || break
    sleep 0.1
  done
done
rc=0
wait $SUPERVISOR || rc=$?
[ "$rc" = 0 ] || fail_log "$SCRATCH/run.err" "the supervised job exited $rc after $faults faults"
restarts=$(grep -c 'restarting it in' "$SCRATCH/run.err" || true)
echo "faults: $faults, restarts: $restarts"
[ "$faults" -ge 1 ] && [ "$restarts" -ge 1 ] ||
  fail_log "$SCRATCH/run.err" "no fault led to a restart (faults $faults, restarts $restarts)"
grep -q "the job finished on attempt" "$SCRATCH/run.err" ||
  fail_log "$SCRATCH/run.err" "the supervisor did not report the finish"

"$PYTHON" - "$SCRATCH" <<'PY' || fail "examples trained: not exactly once"
import os, sys
d = sys.argv[1]

def steps(folder, worker):
    """step -> example ids; a step logged again (replayed after a resume) counts once, as its last logging."""
    out, replayed = {}, 0
    path = os.path.join(d, folder, "worker-%05d.log" % worker)
    for line in open(path):
        if not line.endswith("\n"):
            continue  # torn by a kill
        f = line.split()
        step = int(f[1])
        if step in out:
            replayed += 1
            assert out[step] == f[2:], (worker, step, "replayed with other examples")
        out[step] = f[2:]
    return out, replayed

for w in range(2):
    ref, _ = steps("log_ref", w)
    got, replayed = steps("log", w)
    assert got == ref, (w, len(got), len(ref), sorted(set(ref) ^ set(got))[:10])
    ids = [i for s in sorted(got) for i in got[s]]
    print(f"worker {w}: {len(got)} steps, {len(ids)} examples, each once "
          f"({replayed} steps replayed after resumes, same examples)")
PY
[ -f "$SCRATCH/model/model.pb" ] || fail "no model saved"
echo "supervise: ok"
