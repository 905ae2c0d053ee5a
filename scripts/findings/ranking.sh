#!/usr/bin/env bash
# Finding 4 of the paper (Covington et al. 2016, Table 1): the ranking
# model's hidden layers against weighted per-user loss, and weighted logistic
# regression against a click-trained (unweighted) one, with the share of
# clickbait each puts first.
#
#   scripts/findings/ranking.sh [--seed=1] [--epochs=3] [--runs=3] [--out=docs/results]
#
# On the world of `vrec datagen --seed=SEED` (defaults; 3% of videos are
# clickbait: clicked more, watched much less), trains the ranking model with
# the paper's towers (none, 256, 512, 1024, 512-256, 1024-512, 1024-512-256),
# weighted by watch time, and the deepest also click-trained; evaluates each
# on the held-out pages: weighted per-user loss (the paper's metric: the
# watch time of mis-ordered pairs over the total), AUC of clicks, and the
# share of pages whose top-ranked impression is clickbait, beside the
# oracle's; --runs times with model seeds 1..runs (medians and ranges).
# Writes OUT/ranking.json and OUT/ranking.png and prints a table. About 3
# minutes per run on 2 cores.
source "$(dirname "$0")/../lib/prologue.sh"
cd "$VREC_ROOT"
SEED=1; EPOCHS=3; RUNS=3; OUT=docs/results
parse_flags seed:SEED epochs:EPOCHS runs:RUNS out:OUT -- "$@"
find_vrec
make_work ranking
mkdir -p "$OUT"
echo "== world: vrec datagen --seed=$SEED" >&2
make_world "$WORK/world" --seed="$SEED"
: >"$WORK/runs.jsonl"
run() {  # name tower weighted seed
  echo "== $1 (tower '$2', weighted=$3), model seed $4" >&2
  "$VREC" train --model=ranking --data="$WORK/world" --workers=2 --epochs="$EPOCHS" \
    --tower="$2" --weighted="$3" --seed="$4" --ps_stats_seconds=0 --progress_seconds=60 \
    2>"$WORK/train.log" | tail -n 1 | "$PYTHON" -c "
import json, sys
d = json.load(sys.stdin); d['name'] = '$1'; d['tower'] = '$2'; d['weighted'] = '$3' == 'true'
d['model_seed'] = $4
print(json.dumps(d))" >>"$WORK/runs.jsonl"
}
for r in $(seq "$RUNS"); do
  run none "" true "$r"
  run 256 256 true "$r"
  run 512 512 true "$r"
  run 1024 1024 true "$r"
  run 512-256 512,256 true "$r"
  run 1024-512 1024,512 true "$r"
  run 1024-512-256 1024,512,256 true "$r"
  run "1024-512-256, click-trained" 1024,512,256 false "$r"
done
"$PYTHON" - "$WORK/runs.jsonl" "$OUT" "$SEED" "$EPOCHS" <<'PY'
import json, os, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
out, seed, epochs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
oracle = runs[0]["eval"].get("oracle", {}).get("weighted_per_user_loss")
cb = runs[0]["eval"].get("clickbait", {})
names = list(dict.fromkeys(r["name"] for r in runs))
rows = []
for n in names:
    rs = [r for r in runs if r["name"] == n]
    get = lambda f: [f(r["eval"]) for r in rs]
    loss = get(lambda e: e["weighted_per_user_loss"])
    auc = get(lambda e: e["auc"])
    top = get(lambda e: e.get("clickbait", {}).get("top1_share", float("nan")))
    rows.append({"name": n, "tower": rs[0]["tower"].replace(",", "-") or "none",
                 "weighted": rs[0]["weighted"], "runs": len(rs),
                 "loss": loss, "auc": auc, "clickbait_top1": top})
json.dump({"finding": "ranking", "seed": seed, "epochs": epochs,
           "world": "vrec datagen --seed=%d (defaults)" % seed, "oracle_weighted_per_user_loss": oracle,
           "clickbait": cb, "rows": rows, "runs": runs},
          open(os.path.join(out, "ranking.json"), "w"), indent=1)
med = statistics.median
print("| hidden layers | training | weighted per-user loss | click AUC | top-ranked clickbait |")
print("|---|---|---|---|---|")
for r in rows:
    print("| %s | %s | %.4f (%.4f-%.4f) | %.4f | %.1f%% |" % (r["tower"],
          "weighted" if r["weighted"] else "clicks only", med(r["loss"]), min(r["loss"]),
          max(r["loss"]), med(r["auc"]), 100 * med(r["clickbait_top1"])))
print("| oracle | | %.4f | | %.1f%% |" % (oracle, 100 * cb.get("oracle_top1_share", float("nan"))))
print("clickbait share of all impressions: %.1f%%; medians of %d runs (range)" % (
      100 * cb.get("impressions_share", float("nan")), rows[0]["runs"]))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.8))
    losses = [med(r["loss"]) for r in rows]
    err = [[med(r["loss"]) - min(r["loss"]) for r in rows], [max(r["loss"]) - med(r["loss"]) for r in rows]]
    colors = ["C0" if r["weighted"] else "C3" for r in rows]
    ax.bar(range(len(rows)), losses, color=colors, yerr=err, capsize=3)
    ax.axhline(oracle, ls=":", c="k", label="oracle")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["name"].replace(", ", "\n") for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="weighted per-user loss (lower is better)",
           title="Ranking towers (world seed %d, %d epochs, median of %d; red: click-trained)"
           % (seed, epochs, rows[0]["runs"]))
    ax.set_ylim(min(losses + [oracle]) * 0.9, max(max(r["loss"]) for r in rows) * 1.03)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ranking.png"), dpi=110)
except ImportError:
    print("(no matplotlib: no plot)", file=sys.stderr)
PY
