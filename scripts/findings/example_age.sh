#!/usr/bin/env bash
# Finding 2 of the paper (Covington et al. 2016, Figure 4): with the example
# age as a feature, the candidate model follows the share of watches that go
# to fresh uploads; without it, it predicts the average over the window.
#
#   scripts/findings/example_age.sh [--seed=1] [--epochs=10] [--out=docs/results]
#
# On the world of `vrec datagen --seed=SEED` (defaults: 20k videos, 10k users;
# popularity of a new upload starts 20x above its long-run level and halves
# every 2 days), trains the candidate model (tower 256-128, 64-d embeddings,
# Adam, 2 workers) with and without --use_example_age, then for each held-out
# next watch sums the model's full softmax over the corpus by video age (days
# since upload at the example's time; the model scored at the example's own
# example age) beside where the next watches actually fell
# (`vrec eval --video_age_shares`). Writes OUT/example_age.json and
# OUT/example_age.png and prints a table. About 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEED=1; EPOCHS=10; OUT=docs/results
for arg in "$@"; do
  case "$arg" in
    --seed=*) SEED="${arg#*=}" ;;
    --epochs=*) EPOCHS="${arg#*=}" ;;
    --out=*) OUT="${arg#*=}" ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "example_age.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
VREC=${VREC:-${VREC_BUILD_DIR:-build}/vrec}
[[ -x "$VREC" ]] || { echo "example_age.sh: no $VREC; run scripts/build.sh first" >&2; exit 2; }
WORK=$(mktemp -d /tmp/vrec-example-age.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
echo "== world: vrec datagen --seed=$SEED" >&2
"$VREC" datagen --out="$WORK/world" --seed="$SEED" --fsync=false >/dev/null 2>&1
for age in true false; do
  echo "== train --use_example_age=$age ($EPOCHS epochs)" >&2
  "$VREC" train --data="$WORK/world" --model_dir="$WORK/model-$age" --workers=2 \
    --epochs="$EPOCHS" --use_example_age="$age" --eval_examples=1 --ps_stats_seconds=0 \
    --progress_seconds=30 >/dev/null 2>"$WORK/train-$age.log"
  "$VREC" eval --model_dir="$WORK/model-$age" --data="$WORK/world" --video_age_shares \
    2>/dev/null | tail -n 1 >"$WORK/eval-$age.json"
done
/usr/bin/python3 - "$WORK" "$OUT" "$SEED" "$EPOCHS" <<'PY'
import json, os, sys
work, out, seed, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ev = {a: json.load(open(os.path.join(work, "eval-%s.json" % a))) for a in ("true", "false")}
with_age, without = ev["true"]["video_age_shares"], ev["false"]["video_age_shares"]
days, emp = with_age["days"], with_age["empirical"]
def l1(s):  # total variation distance to the empirical shares
    return 0.5 * (sum(abs(a - b) for a, b in zip(s["predicted"], s["empirical"]))
                  + abs(s["not_yet_uploaded"] - s["empirical_not_yet_uploaded"]))
result = {"finding": "example_age", "seed": seed, "epochs": epochs,
          "world": "vrec datagen --seed=%d (defaults)" % seed,
          "with_example_age": with_age, "without_example_age": without,
          "recall@100": {"with": ev["true"]["recall@100"], "without": ev["false"]["recall@100"],
                         "oracle": ev["true"].get("oracle", {}).get("recall@100")},
          "total_variation": {"with": l1(with_age), "without": l1(without)}}
json.dump(result, open(os.path.join(out, "example_age.json"), "w"), indent=1)
print("| days since upload | next watches (held out) | model with example age | without |")
print("|---|---|---|---|")
for b in list(range(0, 8)) + [10, 15, 20, 29]:
    label = "%d+" % b if b == days[-1] else str(b)
    print("| %s | %.3f | %.3f | %.3f |" % (label, emp[b], with_age["predicted"][b], without["predicted"][b]))
print("| not yet uploaded | %.3f | %.3f | %.3f |" % (with_age["empirical_not_yet_uploaded"],
      with_age["not_yet_uploaded"], without["not_yet_uploaded"]))
print("total variation distance to the next watches: with %.3f, without %.3f; recall@100 with "
      "%.3f, without %.3f (oracle %s)" % (result["total_variation"]["with"],
      result["total_variation"]["without"], result["recall@100"]["with"],
      result["recall@100"]["without"], result["recall@100"]["oracle"]))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(days, emp, "k-", lw=2, label="held-out next watches")
    ax.plot(days, with_age["predicted"], "o-", ms=3, label="model with example age")
    ax.plot(days, without["predicted"], "s--", ms=3, label="model without")
    ax.set(xlabel="days since upload (at the example's time; last bucket: older)",
           ylabel="share of probability", title="Example age (world seed %d, %d epochs)" % (seed, epochs))
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "example_age.png"), dpi=110)
except ImportError:
    print("(no matplotlib: no plot)", file=sys.stderr)
PY
