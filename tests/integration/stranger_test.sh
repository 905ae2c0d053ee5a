#!/usr/bin/env bash
# A stranger on the data plane (issue 20's probe): while an mpirun job
# trains, a process on the same machine speaks the parameter server's
# protocol to its port (tests/tools/ps_stranger: STATS, then pushes of +1.0
# into every table), plain and with CURVE keys of its own. By default the
# job's servers answer none of it, log the refusals, and the job ends well.
# With --insecure_data_plane the same stranger is answered: the tool works,
# and the flag means what it says.
source "$(dirname "$0")/lib.sh"

STRANGER=${VREC_TEST_TOOLS:-}/ps_stranger
[ -x "$STRANGER" ] || fail "no ps_stranger tool (VREC_TEST_TOOLS=${VREC_TEST_TOOLS:-unset})"
tiny_world "$SCRATCH/world" --seed=9

# Trains for --max_seconds with the stranger at its server; prints the
# stranger's JSON line. $1: a name, then extra train flags.
attacked_run() {
  local name=$1
  shift
  "${MPIRUN[@]}" -np 3 "$VREC" train --data="$SCRATCH/world" --servers=1 --epochs=0 \
    --max_seconds=12 --progress_seconds=1 --ps_stats_seconds=0 "${TINY_MODEL[@]}" "$@" \
    >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" &
  local job=$! endpoint=""
  for _ in $(seq 150); do
    endpoint=$(sed -n 's/.*parameter server 0 serving at \(tcp:[^ ]*\).*/\1/p' \
      "$SCRATCH/$name.err" 2>/dev/null | head -n 1)
    [ -n "$endpoint" ] && break
    sleep 0.2
  done
  [ -n "$endpoint" ] || { kill "$job" 2>/dev/null; fail_log "$SCRATCH/$name.err" "no server endpoint"; }
  "$STRANGER" "$endpoint" 4 >"$SCRATCH/$name.stranger" ||
    { kill "$job" 2>/dev/null; fail "ps_stranger failed"; }
  local rc=0
  wait "$job" || rc=$?
  [ "$rc" -eq 0 ] || fail_log "$SCRATCH/$name.err" "the $name job exited $rc"
  cat "$SCRATCH/$name.stranger"
}

field() {  # field JSON_LINE WAY KEY
  "$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])' "$@"
}

line=$(attacked_run secure)
for way in plain own_keys; do
  calls=$(field "$line" $way calls)
  [ "$calls" -gt 0 ] || fail "the stranger made no $way calls: $line"
  for reply in stats_replies push_replies; do
    [ "$(field "$line" $way $reply)" -eq 0 ] ||
      fail_log "$SCRATCH/secure.err" "a stranger without the job's keys got $way $reply: $line"
  done
done
grep -q "refused a connection" "$SCRATCH/secure.err" ||
  fail_log "$SCRATCH/secure.err" "the server did not log the refused stranger"
grep -q "does not speak CURVE\|no CURVE" "$SCRATCH/secure.err" ||
  fail_log "$SCRATCH/secure.err" "the plain stranger's refusal does not say why"
grep -q "does not hold the job's server key\\|not the job's client key" "$SCRATCH/secure.err" ||
  fail_log "$SCRATCH/secure.err" "the keyed stranger's refusal does not say why"
echo "secure: $line"

line=$(attacked_run insecure --insecure_data_plane)
[ "$(field "$line" plain stats_replies)" -gt 0 ] ||
  fail_log "$SCRATCH/insecure.err" "with --insecure_data_plane the plain stranger got no stats: $line"
[ "$(field "$line" plain push_replies)" -gt 0 ] ||
  fail_log "$SCRATCH/insecure.err" "with --insecure_data_plane the plain stranger's pushes were refused: $line"
grep -q "insecure_data_plane: the parameter servers answer anyone" "$SCRATCH/insecure.err" ||
  fail_log "$SCRATCH/insecure.err" "no warning for --insecure_data_plane"
echo "insecure: $line"
echo "stranger: ok"
