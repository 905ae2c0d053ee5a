# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables below are for the tests that source this
# The prologue of every integration test (tests/integration/*_test.sh; this
# file is not one: CTest runs only *_test.sh). CTest runs each test as
# `bash SCRIPT VREC SCRATCH_DIR` (tests/CMakeLists.txt), and each starts with
#
#   source "$(dirname "$0")/lib.sh"
#
# It sources scripts/lib/prologue.sh: strict mode (set -euo pipefail),
# PYTHON (Debian's /usr/bin/python3 when present), MPIRUN (an array: mpirun as
# root, oversubscribed, unbound), make_world, start_server / stop_server (a
# server still running when the test exits is stopped), VREC_ROOT (the
# repository). It defines:
#
#   VREC          the vrec binary (argument 1), as an absolute path
#   SCRATCH       the scratch folder (argument 2), absolute, emptied
#   fail MESSAGE  "FAIL: MESSAGE" on stderr, exit 1
#   fail_log FILE MESSAGE
#                 the same, then the end of FILE (a command's stderr)
#   TINY_WORLD    datagen flags (but --seed) of a world that trains in seconds
#   TINY_MODEL    vrec train flags of a candidate model that learns it in seconds
#                 (no validation slice: a later --validation_users wins)
#   tiny_world DIR FLAG...
#                 make_world DIR TINY_WORLD FLAG... (a later flag wins), or fail
#   json_field FILE KEY
#                 the KEY of the JSON object on FILE's last line (FILE -: stdin)
#   tagged_ranks TAG [RANK]
#                 pids of the vrec processes of a job launched with
#                 `VREC_TEST_TAG=TAG mpirun -x VREC_TEST_TAG ...` (so that a
#                 test signals only its own ranks: others run beside it);
#                 with RANK, only that MPI rank
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/prologue.sh"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

fail_log() {
  local log=$1
  shift
  echo "FAIL: $*" >&2
  echo "-- the end of $log:" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
}

[[ $# -ge 2 && -n "$1" && -n "$2" ]] || fail "usage: $SCRIPT_NAME VREC SCRATCH_DIR"
VREC=$(realpath "$1")
SCRATCH=$(realpath -m "$2")
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"

TINY_WORLD=(--num_videos=800 --num_users=1200 --num_tokens=400 --num_topics=8 --num_days=10
            --test_users=200 --shards=3)
# shellcheck disable=SC2054  # --tower takes a comma list
# No validation slice: every training example is trained for --epochs (the
# default slice and early stopping have tests of their own: train_test.sh).
TINY_MODEL=(--embedding_dim=16 --tower=32,16 --negatives=64 --batch_size=64 --learning_rate=0.01
            --validation_users=0)

tiny_world() {
  make_world "$1" "${TINY_WORLD[@]}" "${@:2}" || fail_log "$1.datagen.log" "vrec datagen --out=$1"
}

json_field() {
  tail -n 1 "$1" | "$PYTHON" -c 'import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$2"
}

tagged_ranks() {
  local pid env
  for pid in $(pgrep -x vrec || true); do
    env=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" || true)
    grep -qx "VREC_TEST_TAG=$1" <<<"$env" || continue
    [ -z "${2:-}" ] || grep -qx "OMPI_COMM_WORLD_RANK=$2" <<<"$env" || continue
    echo "$pid"
  done
}
