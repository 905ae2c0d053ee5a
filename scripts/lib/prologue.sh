# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables below are for the scripts that source this
# The prologue the findings and benchmark drivers share (scripts/findings/*.sh,
# benchmarks/*.sh, scripts/demo.sh); tests/integration/lib.sh builds on it.
# Sourced, never run:
#
#   source "$(dirname "$0")/../lib/prologue.sh"
#
# Sourcing it turns on strict mode (set -euo pipefail) and installs an EXIT
# trap (it stops SERVER and removes WORK, below); it changes no folder and
# reads no argument. It defines:
#
#   VREC_ROOT    the repository's root, absolute (drivers `cd` there first, so
#                their relative defaults such as build/vrec and docs/ resolve)
#   SELF         the sourcing script, absolute; SCRIPT_NAME, its file name
#   PYTHON       /usr/bin/python3 when it exists (Debian's: it sees
#                python3-matplotlib and python3-torch, and starts fast), else
#                python3 on PATH
#   MPIRUN       an array: mpirun as root, with more ranks than cores, unbound
#                (mpirun --allow-run-as-root --oversubscribe --bind-to none)
#   die MESSAGE  "SCRIPT_NAME: MESSAGE" on stderr, exit 2 (bad usage or setup)
#   parse_flags NAME:VAR... -- ARG...
#                each ARG --NAME=VALUE sets VAR to VALUE (set the defaults
#                before); -h or --help prints the script's header comment (its
#                lines 2 to the first that is not a comment) and exits 0; any
#                other ARG dies "unknown argument"
#   find_vrec    VREC: $VREC, else ${VREC_BUILD_DIR:-build}/vrec from the
#                current folder; dies unless it is an executable
#   make_work NAME [KEEP]
#                WORK: a new folder /tmp/vrec-NAME.XXXXXX, removed on exit
#                unless KEEP is 1; when the script fails, the end of each
#                WORK/*.log goes to stderr first
#   make_world DIR DATAGEN_FLAG...
#                `$VREC datagen --out=DIR --fsync=false DATAGEN_FLAG...`: its
#                summary (the last stdout line) in DIR.json, its stderr in
#                DIR.datagen.log
#   start_server OUT ERR SERVE_FLAG...
#                `$VREC serve --port=0 SERVE_FLAG...` in the background, stdout
#                to OUT, stderr to ERR; sets SERVER (its pid) and, once it has
#                printed its port (at most 60 s), PORT; fails (the end of ERR on
#                stderr) when it printed none. A server still running at exit is
#                stopped.
#   stop_server  stops SERVER and waits for it; fails when it had already exited
set -euo pipefail

VREC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF=$(realpath "$0")
SCRIPT_NAME=$(basename "$0")
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
# Set here, not taken from the environment: the EXIT trap kills and removes them.
SERVER=""
_prologue_work=""
_prologue_keep_work=0

die() {
  echo "$SCRIPT_NAME: $*" >&2
  exit 2
}

parse_flags() {
  local -a specs=()
  while (($#)) && [[ $1 != -- ]]; do
    specs+=("$1")
    shift
  done
  (($#)) && shift
  local arg spec
  for arg in "$@"; do
    case "$arg" in
      -h | --help)
        awk 'NR > 1 { if (!/^#/) exit; print }' "$SELF"
        exit 0
        ;;
      --*=*)
        for spec in "${specs[@]}"; do
          if [[ "${arg%%=*}" == "--${spec%%:*}" ]]; then
            printf -v "${spec#*:}" '%s' "${arg#*=}"
            continue 2
          fi
        done
        ;;
    esac
    die "unknown argument '$arg' (see --help)"
  done
}

find_vrec() {
  VREC=${VREC:-${VREC_BUILD_DIR:-build}/vrec}
  [[ -x "$VREC" ]] || die "no $VREC; run scripts/build.sh first"
}

make_work() {
  WORK=$(mktemp -d "/tmp/vrec-$1.XXXXXX")
  _prologue_work=$WORK
  _prologue_keep_work=${2:-0}
}

make_world() {
  local dir=$1
  shift
  "$VREC" datagen --out="$dir" --fsync=false "$@" 2>"$dir.datagen.log" | tail -n 1 >"$dir.json"
}

start_server() {
  local out=$1 err=$2
  shift 2
  "$VREC" serve --port=0 "$@" >"$out" 2>"$err" &
  SERVER=$!
  for _ in $(seq 600); do
    grep -q port "$out" 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.1
  done
  if ! PORT=$("$PYTHON" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["port"])' \
    "$out" 2>/dev/null); then
    echo "$SCRIPT_NAME: vrec serve printed no port; the end of $err:" >&2
    tail -n 20 "$err" >&2
    return 1
  fi
}

stop_server() {
  local pid=$SERVER rc=0
  SERVER=""
  kill "$pid" 2>/dev/null || rc=$?
  wait "$pid" 2>/dev/null || true
  return "$rc"
}

_prologue_on_exit() {
  local rc=$? log
  if [[ -n "$SERVER" ]]; then stop_server || true; fi
  if [[ -n "$_prologue_work" ]]; then
    if ((rc != 0)); then
      for log in "$_prologue_work"/*.log; do
        if [[ -e "$log" ]]; then
          echo "-- $log" >&2
          tail -n 20 "$log" >&2
        fi
      done
    fi
    if [[ "$_prologue_keep_work" != 1 ]]; then rm -rf "$_prologue_work"; fi
  fi
}
trap _prologue_on_exit EXIT
