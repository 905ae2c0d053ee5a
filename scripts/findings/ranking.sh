#!/usr/bin/env bash
# Finding 4 of the paper (Covington et al. 2016, Table 1): the ranking
# model's hidden layers against weighted per-user loss, and weighted logistic
# regression against a click-trained (unweighted) one, with the share of
# clickbait each puts first.
#
#   scripts/findings/ranking.sh [--seed=1] [--epochs=3] [--out=docs/results]
#
# On the world of `vrec datagen --seed=SEED` (defaults; 3% of videos are
# clickbait: clicked more, watched much less), trains the ranking model with
# the paper's towers (none, 256, 512, 1024, 512-256, 1024-512, 1024-512-256),
# weighted by watch time, and the deepest also click-trained; evaluates each
# on the held-out pages: weighted per-user loss (the paper's metric: the
# watch time of mis-ordered pairs over the total), AUC of clicks, and the
# share of pages whose top-ranked impression is clickbait, beside the
# oracle's. Writes OUT/ranking.json and OUT/ranking.png and prints a table.
# About 8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEED=1; EPOCHS=3; OUT=docs/results
for arg in "$@"; do
  case "$arg" in
    --seed=*) SEED="${arg#*=}" ;;
    --epochs=*) EPOCHS="${arg#*=}" ;;
    --out=*) OUT="${arg#*=}" ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "ranking.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
VREC=${VREC:-${VREC_BUILD_DIR:-build}/vrec}
[[ -x "$VREC" ]] || { echo "ranking.sh: no $VREC; run scripts/build.sh first" >&2; exit 2; }
WORK=$(mktemp -d /tmp/vrec-ranking.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
echo "== world: vrec datagen --seed=$SEED" >&2
"$VREC" datagen --out="$WORK/world" --seed="$SEED" --fsync=false >/dev/null 2>&1
: >"$WORK/runs.jsonl"
run() {  # name tower weighted
  echo "== $1 (tower '$2', weighted=$3)" >&2
  "$VREC" train --model=ranking --data="$WORK/world" --workers=2 --epochs="$EPOCHS" \
    --tower="$2" --weighted="$3" --ps_stats_seconds=0 --progress_seconds=60 \
    2>"$WORK/$1.log" | tail -n 1 | /usr/bin/python3 -c "
import json, sys
d = json.load(sys.stdin); d['name'] = '$1'; d['tower'] = '$2'; d['weighted'] = '$3' == 'true'
print(json.dumps(d))" >>"$WORK/runs.jsonl"
}
run none "" true
run 256 256 true
run 512 512 true
run 1024 1024 true
run 512-256 512,256 true
run 1024-512 1024,512 true
run 1024-512-256 1024,512,256 true
run "1024-512-256, click-trained" 1024,512,256 false
/usr/bin/python3 - "$WORK/runs.jsonl" "$OUT" "$SEED" "$EPOCHS" <<'PY'
import json, os, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
out, seed, epochs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
oracle = runs[0]["eval"].get("oracle", {}).get("weighted_per_user_loss")
cb = runs[0]["eval"].get("clickbait", {})
json.dump({"finding": "ranking", "seed": seed, "epochs": epochs,
           "world": "vrec datagen --seed=%d (defaults)" % seed, "oracle_weighted_per_user_loss": oracle,
           "runs": runs}, open(os.path.join(out, "ranking.json"), "w"), indent=1)
print("| hidden layers | training | weighted per-user loss | click AUC | top-ranked clickbait |")
print("|---|---|---|---|---|")
for r in runs:
    e = r["eval"]
    print("| %s | %s | %.4f | %.4f | %.1f%% |" % (r["tower"].replace(",", "-") or "none",
          "weighted" if r["weighted"] else "clicks only", e["weighted_per_user_loss"], e["auc"],
          100 * e.get("clickbait", {}).get("top1_share", float("nan"))))
print("| oracle | | %.4f | | %.1f%% |" % (oracle, 100 * cb.get("oracle_top1_share", float("nan"))))
print("clickbait share of all impressions: %.1f%%" % (100 * cb.get("impressions_share", float("nan"))))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.8))
    names = [r["name"] for r in runs]
    losses = [r["eval"]["weighted_per_user_loss"] for r in runs]
    colors = ["C0" if r["weighted"] else "C3" for r in runs]
    ax.bar(range(len(runs)), losses, color=colors)
    ax.axhline(oracle, ls=":", c="k", label="oracle")
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([n.replace(", ", "\n") for n in names], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="weighted per-user loss (lower is better)",
           title="Ranking towers (world seed %d, %d epochs; red: click-trained)" % (seed, epochs))
    lo = min(losses + [oracle])
    ax.set_ylim(lo * 0.9, max(losses) * 1.03)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ranking.png"), dpi=110)
except ImportError:
    print("(no matplotlib: no plot)", file=sys.stderr)
PY
