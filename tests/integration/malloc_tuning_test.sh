#!/usr/bin/env bash
# vrec re-executes itself once with its heap settings (transparent huge
# pages for malloc, arenas that keep freed memory: src/common/malloc_tuning.h)
# unless the caller chose otherwise; every benchmark line records the
# tunables it ran with.
source "$(dirname "$0")/lib.sh"
tunables() {  # the glibc_tunables field of a tiny bench ps run; extra flags appended
  "$VREC" bench ps --rows=1000 --dim=8 --batch=100 --ops=pull --seconds=0.1 "$@" 2>/dev/null |
    json_field - glibc_tunables
}
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)
thresholds=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432
all=$thresholds
if [[ "$thp" == *"[always]"* || "$thp" == *"[madvise]"* ]]; then
  all=glibc.malloc.hugetlb=1:$thresholds
fi
got=$(unset GLIBC_TUNABLES; tunables)
[ "$got" = "$all" ] || fail "default run has tunables '$got', want '$all'"
got=$(GLIBC_TUNABLES=glibc.malloc.arena_max=4 tunables)
[ "$got" = "glibc.malloc.arena_max=4:$all" ] || fail "appended: '$got'"
got=$(GLIBC_TUNABLES=glibc.malloc.hugetlb=0 tunables)
[ "$got" = "glibc.malloc.hugetlb=0:$thresholds" ] ||
  fail "the caller's hugetlb=0 was overridden: '$got'"
got=$(unset GLIBC_TUNABLES; VREC_MALLOC_TUNING=0 tunables)
[ -z "$got" ] || fail "VREC_MALLOC_TUNING=0 still re-executed: '$got'"
# Under a memory budget the process keeps glibc's default (resident size).
got=$(unset GLIBC_TUNABLES; tunables --budget_mb=64 --spill_dir="$SCRATCH/spill")
[ -z "$got" ] || fail "a run with --budget_mb re-executed with '$got'"
# The re-executed process keeps its name (an operator's `pgrep -x vrec`).
"$VREC" bench ps --rows=1000 --dim=8 --batch=100 --ops=pull --seconds=3 >/dev/null 2>&1 &
bench=$!
sleep 1
name=$(cat "/proc/$bench/comm" 2>/dev/null || true)
wait "$bench" || true
[ "$name" = "$(basename "$(readlink -f "$VREC")")" ] || fail "the process is named '$name'"
echo "malloc tuning: ok"
