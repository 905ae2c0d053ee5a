#!/usr/bin/env bash
# Finding 2 of the paper (Covington et al. 2016, Figure 4): with the example
# age as a feature, the candidate model follows the share of watches that go
# to fresh uploads; without it, it predicts the average over the window.
#
#   scripts/findings/example_age.sh [--seed=1] [--epochs=10] [--runs=3] [--out=docs/results]
#
# On the world of `vrec datagen --seed=SEED` (defaults: 20k videos, 10k users;
# popularity of a new upload starts 20x above its long-run level and halves
# every 2 days), trains the candidate model (tower 256-128, 64-d embeddings,
# Adam, 2 workers) with and without --use_example_age, then for each held-out
# next watch sums the model's full softmax over the corpus by video age (days
# since upload at the example's time; the model scored at the example's own
# example age) beside where the next watches actually fell
# (`vrec eval --video_age_shares`), --runs times with model seeds 1..runs.
# Writes OUT/example_age.json (every run) and OUT/example_age.png (the run
# with the median distance) and prints a table. About 1 minute a run on 2
# cores.
source "$(dirname "$0")/../lib/prologue.sh"
cd "$VREC_ROOT"
SEED=1; EPOCHS=10; RUNS=3; OUT=docs/results
parse_flags seed:SEED epochs:EPOCHS runs:RUNS out:OUT -- "$@"
find_vrec
make_work example-age
mkdir -p "$OUT"
echo "== world: vrec datagen --seed=$SEED" >&2
make_world "$WORK/world" --seed="$SEED"
for run in $(seq "$RUNS"); do
  for age in true false; do
    echo "== run $run/$RUNS: train --use_example_age=$age --seed=$run ($EPOCHS epochs)" >&2
    "$VREC" train --data="$WORK/world" --model_dir="$WORK/model-$age-$run" --workers=2 \
      --epochs="$EPOCHS" --seed="$run" --use_example_age="$age" --eval_examples=1 \
      --ps_stats_seconds=0 --progress_seconds=30 >/dev/null 2>"$WORK/train-$age-$run.log"
    "$VREC" eval --model_dir="$WORK/model-$age-$run" --data="$WORK/world" --video_age_shares \
      2>/dev/null | tail -n 1 >"$WORK/eval-$age-$run.json"
  done
done
"$PYTHON" - "$WORK" "$OUT" "$SEED" "$EPOCHS" "$RUNS" <<'PY'
import json, os, statistics, sys
work, out, seed, epochs, nruns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def l1(s):  # total variation distance to the empirical shares
    return 0.5 * (sum(abs(a - b) for a, b in zip(s["predicted"], s["empirical"]))
                  + abs(s["not_yet_uploaded"] - s["empirical_not_yet_uploaded"]))
runs = []
for r in range(1, nruns + 1):
    ev = {a: json.load(open(os.path.join(work, "eval-%s-%d.json" % (a, r)))) for a in ("true", "false")}
    w, wo = ev["true"]["video_age_shares"], ev["false"]["video_age_shares"]
    runs.append({"model_seed": r, "with_example_age": w, "without_example_age": wo,
                 "recall@100": {"with": ev["true"]["recall@100"], "without": ev["false"]["recall@100"],
                                "oracle": ev["true"].get("oracle", {}).get("recall@100")},
                 "total_variation": {"with": l1(w), "without": l1(wo)}})
tv_with = [r["total_variation"]["with"] for r in runs]
tv_without = [r["total_variation"]["without"] for r in runs]
# The run whose distance with the feature is the median one draws the table and the plot.
shown = sorted(runs, key=lambda r: r["total_variation"]["with"])[(nruns - 1) // 2]
with_age, without = shown["with_example_age"], shown["without_example_age"]
days, emp = with_age["days"], with_age["empirical"]
result = {"finding": "example_age", "seed": seed, "epochs": epochs,
          "world": "vrec datagen --seed=%d (defaults)" % seed, "model_seeds": list(range(1, nruns + 1)),
          "shown_model_seed": shown["model_seed"], "runs": runs,
          "total_variation_median": {"with": statistics.median(tv_with),
                                     "without": statistics.median(tv_without)},
          "total_variation_range": {"with": [min(tv_with), max(tv_with)],
                                    "without": [min(tv_without), max(tv_without)]}}
json.dump(result, open(os.path.join(out, "example_age.json"), "w"), indent=1)
print("model seed %d of %d (the median distance with the feature):" % (shown["model_seed"], nruns))
print("| days since upload | next watches (held out) | model with example age | without |")
print("|---|---|---|---|")
for b in list(range(0, 8)) + [10, 15, 20, 29]:
    label = "%d+" % b if b == days[-1] else str(b)
    print("| %s | %.3f | %.3f | %.3f |" % (label, emp[b], with_age["predicted"][b], without["predicted"][b]))
print("| not yet uploaded | %.3f | %.3f | %.3f |" % (with_age["empirical_not_yet_uploaded"],
      with_age["not_yet_uploaded"], without["not_yet_uploaded"]))
print("total variation distance to the next watches, median of %d runs (range): with %.3f "
      "(%.3f-%.3f), without %.3f (%.3f-%.3f)" % (nruns, statistics.median(tv_with), min(tv_with),
      max(tv_with), statistics.median(tv_without), min(tv_without), max(tv_without)))
r100 = [r["recall@100"] for r in runs]
print("recall@100 median: with %.3f, without %.3f (oracle %s)" % (
      statistics.median(x["with"] for x in r100), statistics.median(x["without"] for x in r100),
      r100[0]["oracle"]))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(days, emp, "k-", lw=2, label="held-out next watches")
    ax.plot(days, with_age["predicted"], "o-", ms=3, label="model with example age")
    ax.plot(days, without["predicted"], "s--", ms=3, label="model without")
    ax.set(xlabel="days since upload (at the example's time; last bucket: older)",
           ylabel="share of probability", title="Example age (world seed %d, %d epochs, model seed %d of %d)"
              % (seed, epochs, shown["model_seed"], nruns))
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "example_age.png"), dpi=110)
except ImportError:
    print("(no matplotlib: no plot)", file=sys.stderr)
PY
