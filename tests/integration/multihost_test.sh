#!/usr/bin/env bash
# A multi-host rehearsal: mpirun across three "hosts" that are Linux network
# namespaces, each with its own host name (a UTS namespace) and an address in
# the test's cluster network (10.77.0.N/24 on eth0), joined by a bridge in a
# fourth namespace (the switch). Each host also has a decoy interface listed
# before eth0 (198.18.N.1/24, reachable from no other host), as a machine's
# docker0 would be: an address picked as "the first interface that is up"
# would strand the job, so the servers must take theirs from --bind_network,
# and Open MPI its own from btl_tcp_if_include / oob_tcp_if_include.
#
# mpirun runs inside h1 with a hostfile of the hosts' addresses; its remote
# shell (plm_rsh_agent) is a script that runs the command inside the host's
# namespace, as ssh would on it. The journey: datagen; a network a server's
# host has no address in, refused with a message naming it; training with
# checkpoints on 2 servers (h1, h2) and 3 workers, each server serving at its
# own host's address; every process of h2 killed (its orted too: a lost
# machine); the job ends, non-zero, within seconds; a --resume on the
# machines left (h1, h3) onto 3 servers completes the examples; export.
#
# Nothing is created outside the namespaces but the scratch folder; they, the
# processes in them and Open MPI's files of their host names are removed on
# exit, on failure too (and those of an earlier run that was killed). Skips
# (exit 77), saying why, where namespaces cannot be made (not root, no ip).
source "$(dirname "$0")/lib.sh"

skip() {
  echo "multihost_test: SKIPPED: $*" >&2
  exit 77
}

NET=10.77.0      # the cluster network, NET.0/24; host N is NET.N
ID="vrmh$$"      # names of this run: namespaces ID-sw, ID-h1..; the bridge ID-br (<= 15 chars)
HOSTS=(h1 h2 h3)

# Everything of one run named ID: the processes in its namespaces, the
# namespaces (their interfaces and bridge go with them), and what Open MPI
# leaves behind under its hosts' names when its daemons are killed.
remove_run() {
  local id=$1 ns pids
  for ns in $(ip netns list 2>/dev/null | awk -v p="^$id-" '$1 ~ p { print $1 }'); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086  # a list of pids
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk -v p="^$id-" '$1 ~ p { print $1 }'); do
    for _ in 1 2 3 4 5; do
      ip netns del "$ns" 2>/dev/null && break
      sleep 0.2
    done
  done
  rm -rf /tmp/ompi."$id"-h* /dev/shm/vader_segment."$id"-h*
}

# The EXIT trap: remove_run, then the prologue's own, with the exit status.
cleanup() {
  local rc=$?
  remove_run "$ID"
  return "$rc"
}

[ "$EUID" = 0 ] || skip "network namespaces need root (uid $EUID)"
command -v ip >/dev/null || skip "no ip command (Debian package iproute2)"
command -v unshare >/dev/null || skip "no unshare command (util-linux)"
# A run killed before its cleanup (SIGKILL at ctest's timeout) left its
# namespaces behind: remove those whose test is gone.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^vrmh[0-9]+-/ { print $1 }'); do
  old=${ns%%-*}
  kill -0 "${old#vrmh}" 2>/dev/null || remove_run "$old"
done
trap 'cleanup; _prologue_on_exit' EXIT
trap 'exit 143' TERM INT

# The switch: a namespace holding the bridge. Then each host: a namespace, a
# decoy interface, and eth0, a veth pair's end whose other end is a port of
# the bridge.
ip netns add "$ID-sw" 2>"$SCRATCH/netns.err" || skip "ip netns add failed: $(cat "$SCRATCH/netns.err")"
unshare --uts true 2>"$SCRATCH/netns.err" || skip "unshare --uts failed: $(cat "$SCRATCH/netns.err")"
ip -n "$ID-sw" link add "$ID-br" type bridge
ip -n "$ID-sw" link set "$ID-br" up
for i in "${!HOSTS[@]}"; do
  n=$((i + 1)) h=${HOSTS[i]}
  ip netns add "$ID-$h"
  ip -n "$ID-$h" link set lo up
  ip -n "$ID-$h" link add decoy0 type veth peer name decoy1
  ip -n "$ID-$h" addr add "198.18.$n.1/24" dev decoy0
  ip -n "$ID-$h" link set decoy0 up
  ip -n "$ID-$h" link set decoy1 up
  ip link add "$h" netns "$ID-sw" type veth peer name eth0 netns "$ID-$h"
  ip -n "$ID-sw" link set "$h" master "$ID-br" up
  ip -n "$ID-$h" addr add "$NET.$n/24" dev eth0
  ip -n "$ID-$h" link set eth0 up
done
# The decoy comes first: what `--bind_host='*'` would advertise.
first=$(ip -n "$ID-h2" -4 -o addr show up scope global | awk '{ print $4; exit }')
[ "$first" = 198.18.2.1/24 ] || fail "h2's first address is $first, not the decoy's"

# on_host H CMD...: CMD on host H (inside its namespace, with its host name).
on_host() {
  local h=$1
  shift
  # shellcheck disable=SC2016  # expanded by that sh
  ip netns exec "$ID-$h" unshare --uts sh -c 'echo "$0" >/proc/sys/kernel/hostname && exec "$@"' \
    "$ID-$h" "$@"
}
# mpirun's remote shell: "HOST COMMAND..." (HOST as the hostfile names it, an
# address) runs COMMAND through sh on that host, as ssh does.
AGENT="$SCRATCH/rsh_agent.sh"
cat >"$AGENT" <<EOF
#!/bin/bash
case "\$1" in
  $NET.[1-9]) h=h\${1##*.} ;;
  *) echo "rsh_agent: unknown host '\$1'" >&2; exit 255 ;;
esac
shift
exec ip netns exec "$ID-\$h" unshare --uts \\
  sh -c 'echo "\$0" >/proc/sys/kernel/hostname && exec sh -c "\$1"' "$ID-\$h" "\$*"
EOF
chmod +x "$AGENT"

# pids_on H: the processes running on host H.
pids_on() { ip netns pids "$ID-$1" 2>/dev/null || true; }

# servers_at LOG ADDRESS...: server i must serve at ADDRESS number i.
servers_at() {
  local log=$1 i=0 a
  shift
  for a in "$@"; do
    grep -Eq "parameter server $i serving at tcp://$a:[0-9]+\$" "$log" ||
      fail_log "$log" "server $i does not serve at its host's address $a"
    i=$((i + 1))
  done
  ! grep -q "parameter server $i serving" "$log" || fail_log "$log" "more than $# servers"
}

tiny_world "$SCRATCH/world" --seed=12

TOTAL=120000
MPI=("${MPIRUN[@]}" --mca plm_rsh_agent "$AGENT" --mca btl_tcp_if_include "$NET.0/24"
     --mca oob_tcp_if_include "$NET.0/24")
# shellcheck disable=SC2054  # --tower takes a comma list
TRAIN=(train --data="$SCRATCH/world" --model_dir="$SCRATCH/model" "${TINY_MODEL[@]}"
       --bind_network="$NET.0/24" --epochs=0 --max_examples="$TOTAL" --progress_seconds=1
       --ps_stats_seconds=0 --eval_examples=50 --checkpoint_dir="$SCRATCH/ckpt"
       --checkpoint_every=20000)
mkdir -p "$SCRATCH/model"

# 0. A network the server's host has no address in: the job stops at once,
# naming the flag, the host and its addresses.
printf '%s slots=%s\n' "$NET.1" 1 "$NET.2" 1 "$NET.3" 2 >"$SCRATCH/hosts.0"
if on_host h1 "${MPI[@]}" --hostfile "$SCRATCH/hosts.0" -np 4 "$VREC" "${TRAIN[@]}" --servers=1 \
  --bind_network=10.78.0.0/24 >"$SCRATCH/wrong.out" 2>"$SCRATCH/wrong.err"; then
  fail "a job ran with --bind_network=10.78.0.0/24"
fi
grep -q "server 0: --bind_network=10.78.0.0/24: on host $ID-h2: no IPv4 address .* (all: .*eth0 $NET.2" \
  "$SCRATCH/wrong.err" || fail_log "$SCRATCH/wrong.err" "no error naming the flag, h2 and its addresses"

# 1. Coordinator and server 0 on h1, server 1 and worker 0 on h2, workers 1
# and 2 on h3. Once a checkpoint is complete, h2 is lost.
printf '%s slots=2\n' "$NET.1" "$NET.2" "$NET.3" >"$SCRATCH/hosts.a"
on_host h1 "${MPI[@]}" --hostfile "$SCRATCH/hosts.a" -np 6 "$VREC" "${TRAIN[@]}" --servers=2 \
  >"$SCRATCH/a.out" 2>"$SCRATCH/a.err" &
job=$!
for _ in $(seq 600); do
  ls "$SCRATCH"/ckpt/ckpt-*/MANIFEST >/dev/null 2>&1 && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$job" 2>/dev/null || fail_log "$SCRATCH/a.err" "the job ended before h2 was lost"
ls "$SCRATCH"/ckpt/ckpt-*/MANIFEST >/dev/null 2>&1 || fail_log "$SCRATCH/a.err" "no checkpoint in 60 s"
servers_at "$SCRATCH/a.err" "$NET.1" "$NET.2"
lost=$(pids_on h2)
[ "$(wc -w <<<"$lost")" -ge 3 ] || fail "h2 runs $(wc -w <<<"$lost") processes, not orted and 2 ranks"
# shellcheck disable=SC2086  # a list of pids
kill -9 $lost
killed_at=$SECONDS
for _ in $(seq 300); do  # at most 30 s
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$job" 2>/dev/null && fail_log "$SCRATCH/a.err" "the job still runs 30 s after h2 was lost"
rc=0
wait "$job" || rc=$?
ended=$((SECONDS - killed_at))
[ "$rc" -ne 0 ] || fail_log "$SCRATCH/a.err" "the job exited 0 without h2"
! grep -q '^{' "$SCRATCH/a.out" || fail "the job printed a summary without h2"
for _ in $(seq 100); do  # mpirun takes the ranks left on h1 and h3 with it
  [ -z "$(pids_on h1)$(pids_on h3)" ] && break
  sleep 0.1
done
[ -z "$(pids_on h1)$(pids_on h3)" ] || fail "processes left on h1 or h3: $(pids_on h1) $(pids_on h3)"

# 2. Resumed on the hosts left, onto 3 servers: coordinator and servers 0
# and 1 on h1, server 2 and the 3 workers on h3.
newest=$(find "$SCRATCH/ckpt" -path '*/ckpt-*/MANIFEST' | sort | tail -n 1 | xargs dirname)
printf '%s slots=%s\n' "$NET.1" 3 "$NET.3" 4 >"$SCRATCH/hosts.b"
on_host h1 "${MPI[@]}" --hostfile "$SCRATCH/hosts.b" -np 7 "$VREC" "${TRAIN[@]}" --servers=3 \
  --resume >"$SCRATCH/b.out" 2>"$SCRATCH/b.err" || fail_log "$SCRATCH/b.err" "the resumed job"
grep -q "resuming from $newest" "$SCRATCH/b.err" || fail_log "$SCRATCH/b.err" "not resumed from $newest"
servers_at "$SCRATCH/b.err" "$NET.1" "$NET.1" "$NET.3"
[ "$(json_field "$SCRATCH/b.out" examples)" = "$TOTAL" ] || fail "examples: $(tail -n 1 "$SCRATCH/b.out")"
[ "$(json_field "$SCRATCH/b.out" servers)" = 3 ] || fail "servers: $(tail -n 1 "$SCRATCH/b.out")"
[ -f "$SCRATCH/model/model.pb" ] || fail "no model.pb"

# 3. Export the newest checkpoint.
"$VREC" export --checkpoint="$SCRATCH/ckpt" --out="$SCRATCH/bundle" >"$SCRATCH/export.out" \
  2>"$SCRATCH/export.err" || fail_log "$SCRATCH/export.err" "export"
[ "$(json_field "$SCRATCH/export.out" candidate_examples_trained)" = "$TOTAL" ] ||
  fail "export: $(tail -n 1 "$SCRATCH/export.out")"

echo "multihost_test: ok (h2 lost: the job ended in ${ended} s with exit $rc; resumed from" \
  "$(basename "$newest") onto 3 servers; ${SECONDS} s in all)"
