#!/usr/bin/env bash
# Finding 3 of the paper (Covington et al. 2016, section 3.4, Figure 5):
# training on the next watch, with only what came before it as context,
# predicts the future better than training on randomly held-out watches
# whose context includes later watches, both evaluated on the next watch.
#
#   scripts/findings/labels.sh [--seed=1] [--epochs=10] [--runs=3] [--out=docs/results]
#
# Generates the world of `vrec datagen --seed=SEED` twice, identical but for
# the training labels (`--random_labels`: a random watch, the history every
# other watch and search of the user), trains the same candidate model on
# each (tower 256-128, 64-d embeddings, Adam, 2 workers) and evaluates both on
# the same held-out next watches, --runs times with model seeds 1..runs
# (medians, and the range). Writes OUT/labels.json and OUT/labels.png (the
# medians of recall@K and MAP with their ranges, oracle and popularity
# beside them) and prints a table. About 4 minutes on 2 cores.
# --plot_only=1 redraws the table and the plot from an existing
# OUT/labels.json without training.
source "$(dirname "$0")/../lib/prologue.sh"
cd "$VREC_ROOT"
SEED=1; EPOCHS=10; RUNS=3; OUT=docs/results; PLOT_ONLY=0
parse_flags seed:SEED epochs:EPOCHS runs:RUNS out:OUT plot_only:PLOT_ONLY -- "$@"
make_work labels
mkdir -p "$OUT"
if [[ "$PLOT_ONLY" == 1 ]]; then
  [[ -f "$OUT/labels.json" ]] || die "--plot_only=1 needs $OUT/labels.json (run without it first)"
else
  find_vrec
fi
for mode in next random; do
  [[ "$PLOT_ONLY" == 1 ]] && break
  flag=""; [[ "$mode" == random ]] && flag="--random_labels"
  echo "== world seed $SEED, $mode-watch labels" >&2
  make_world "$WORK/$mode" --seed="$SEED" $flag
  for run in $(seq "$RUNS"); do
    "$VREC" train --data="$WORK/$mode" --workers=2 --epochs="$EPOCHS" --seed="$run" \
      --ps_stats_seconds=0 --progress_seconds=60 2>"$WORK/train-$mode-$run.log" |
      tail -n 1 >"$WORK/$mode-$run.json"
  done
done
"$PYTHON" - "$WORK" "$OUT" "$SEED" "$EPOCHS" "$RUNS" "$PLOT_ONLY" <<'PY'
import json, os, statistics, sys
work, out, seed, epochs, nruns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if sys.argv[6] == "1":
    saved = json.load(open(os.path.join(out, "labels.json")))
    runs, nruns = saved["runs"], len(saved["model_seeds"])
else:
    runs = {m: [json.load(open(os.path.join(work, "%s-%d.json" % (m, r)))) for r in range(1, nruns + 1)]
            for m in ("next", "random")}
    json.dump({"finding": "labels", "seed": seed, "epochs": epochs, "model_seeds": list(range(1, nruns + 1)),
               "world": "vrec datagen --seed=%d (defaults), with and without --random_labels" % seed,
               "runs": runs}, open(os.path.join(out, "labels.json"), "w"), indent=1)
keys = ("recall@1", "recall@10", "recall@50", "recall@100", "map")
print("| training labels (median of %d runs, range) | recall@1 | recall@10 | recall@50 | recall@100 | MAP |" % nruns)
print("|---|---|---|---|---|---|")
for m, name in (("next", "next watch (history before it)"),
                ("random", "random held-out watch (history all around it)")):
    cells = []
    for k in keys:
        v = [r["eval"][k] for r in runs[m]]
        cells.append("%.3f (%.3f-%.3f)" % (statistics.median(v), min(v), max(v)))
    print("| %s | %s |" % (name, " | ".join(cells)))
e = runs["next"][0]["eval"]
o, p = e.get("oracle", {}), e.get("popularity", {})
if o:
    print("| oracle | %.3f | %.3f | %.3f | %.3f | |" % (o["recall@1"], o["recall@10"], o["recall@50"],
          o["recall@100"]))
if p:
    print("| popularity | %.3f | %.3f | %.3f | %.3f | %.3f |" % (p["recall@1"], p["recall@10"],
          p["recall@50"], p["recall@100"], p["map"]))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.36
    for i, (m, name) in enumerate((("next", "next watch"), ("random", "random held-out watch"))):
        med = [statistics.median(r["eval"][k] for r in runs[m]) for k in keys]
        lo = [med[j] - min(r["eval"][k] for r in runs[m]) for j, k in enumerate(keys)]
        hi = [max(r["eval"][k] for r in runs[m]) - med[j] for j, k in enumerate(keys)]
        xs = [j + (i - 0.5) * width for j in range(len(keys))]
        ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label="trained on " + name)
    for j, k in enumerate(keys):
        if k in o:
            ax.plot([j - 0.45, j + 0.45], [o[k]] * 2, "k-", lw=1.5, label="oracle" if j == 0 else None)
        if k in p:
            ax.plot([j - 0.45, j + 0.45], [p[k]] * 2, "k:", lw=1.5,
                    label="popularity" if j == 0 else None)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys)
    ax.set_ylabel("on held-out next watches")
    ax.set_title("Next-watch vs randomly held-out training labels (median of %d runs, range)" % nruns,
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "labels.png"), dpi=110)
except ImportError:
    print("(no matplotlib: no plot)", file=sys.stderr)
PY
