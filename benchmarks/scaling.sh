#!/usr/bin/env bash
# Training throughput across worker counts, beside a PyTorch peer, in one run.
#
#   benchmarks/scaling.sh [--workers="1 2 4"] [--servers=1] [--seconds=20] [--runs=3]
#                         [--out=docs] [--peer=1] [--peer_tunables=TUNABLES]
#
# For each worker count W: `vrec bench train --workers=W --servers=S` (the
# paper-sized candidate model on in-memory examples, one process: S servers
# and W worker threads) and, with --peer=1, the same model, batch, negatives
# and optimizer in PyTorch on the CPU with W threads
# (benchmarks/torch_candidate_peer.py; needs benchmarks/install_peer_deps.sh).
# Each figure is the median of --runs runs, vrec and peer alternating. Writes
# OUT/scaling.json (every run and the medians) and OUT/scaling.png (examples/s
# and scaling efficiency against W), and prints a Markdown table.
#
# The peer runs with GLIBC_TUNABLES=--peer_tunables, by default the heap
# settings vrec gives itself (transparent huge pages for malloc, arenas that
# keep freed memory; src/common/malloc_tuning.h, docs/operations.md): both
# then page-fault alike and the comparison is of the programs, not of glibc's
# defaults (the peer runs ~2.5x slower without huge pages).
# --peer_tunables= (empty) measures the peer under glibc's defaults.
source "$(dirname "$0")/../scripts/lib/prologue.sh"
cd "$VREC_ROOT"
WORKERS="1 2 4"; SERVERS=1; SECONDS_=20; RUNS=3; OUT=docs; PEER=1
PEER_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432
parse_flags workers:WORKERS servers:SERVERS seconds:SECONDS_ runs:RUNS out:OUT peer:PEER \
  peer_tunables:PEER_TUNABLES -- "$@"
find_vrec
if [[ "$PEER" == 1 ]] && ! "$PYTHON" -c "import torch" 2>/dev/null; then
  die "PyTorch is missing; run benchmarks/install_peer_deps.sh (or --peer=0)"
fi
mkdir -p "$OUT"
make_work scaling
LINES="$WORK/lines"
for w in $WORKERS; do
  for r in $(seq "$RUNS"); do
    echo "  W=$w run $r/$RUNS: vrec" >&2
    "$VREC" bench train --workers="$w" --servers="$SERVERS" --seconds="$SECONDS_" \
      2>/dev/null | tail -n 1 | sed "s/^/vrec $w /" >>"$LINES"
    if [[ "$PEER" == 1 ]]; then
      echo "  W=$w run $r/$RUNS: PyTorch peer" >&2
      GLIBC_TUNABLES="$PEER_TUNABLES" \
        "$PYTHON" benchmarks/torch_candidate_peer.py --threads="$w" 2>/dev/null |
        tail -n 1 | sed "s/^/peer $w /" >>"$LINES"
    fi
  done
done
"$PYTHON" - "$LINES" "$OUT" "$SERVERS" <<'PY'
import json, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
lines, out, servers = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {"vrec": {}, "peer": {}}
raw = []
for line in open(lines):
    who, w, js = line.split(" ", 2)
    d = json.loads(js)
    raw.append({"who": who, "workers": int(w), **d})
    runs[who].setdefault(int(w), []).append(d["examples_per_s"])
med = {who: {w: statistics.median(v) for w, v in r.items()} for who, r in runs.items()}
ws = sorted(med["vrec"])
base = med["vrec"][ws[0]] / ws[0]
rows = []
for w in ws:
    v = med["vrec"][w]
    p = med["peer"].get(w)
    rows.append({"workers": w, "vrec_examples_per_s": v, "efficiency": v / (base * w),
                 "peer_examples_per_s": p, "vrec_over_peer": (v / p) if p else None})
json.dump({"servers": servers, "medians": rows, "runs": raw}, open(f"{out}/scaling.json", "w"),
          indent=1)
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
ax[0].plot(ws, [med["vrec"][w] for w in ws], "o-", label=f"vrec ({servers} server)")
if med["peer"]:
    pw = sorted(med["peer"])
    ax[0].plot(pw, [med["peer"][w] for w in pw], "s--", label="PyTorch peer (threads = W)")
ax[0].set_xlabel("workers W"); ax[0].set_ylabel("examples/s"); ax[0].legend(frameon=False)
ax[0].set_title("paper-sized candidate model, training throughput")
ax[1].plot(ws, [r["efficiency"] for r in rows], "o-")
ax[1].axhline(1.0, color="grey", lw=0.8, ls=":")
ax[1].set_ylim(0, 1.2); ax[1].set_xlabel("workers W"); ax[1].set_ylabel("efficiency")
ax[1].set_title("scaling efficiency: rate(W) / (W x rate(1))")
for a in ax:
    a.set_xticks(ws); a.grid(alpha=0.3)
fig.tight_layout(); fig.savefig(f"{out}/scaling.png", dpi=120)
print("| workers | vrec examples/s | efficiency | PyTorch peer examples/s | vrec / peer |")
print("|---|---|---|---|---|")
for r in rows:
    p = f"{r['peer_examples_per_s']:.0f}" if r["peer_examples_per_s"] else "-"
    x = f"{r['vrec_over_peer']:.2f}" if r["vrec_over_peer"] else "-"
    print(f"| {r['workers']} | {r['vrec_examples_per_s']:.0f} | {r['efficiency']:.2f} | {p} | {x} |")
PY
echo "wrote $OUT/scaling.json and $OUT/scaling.png" >&2
