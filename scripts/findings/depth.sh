#!/usr/bin/env bash
# Finding 1 of the paper (Covington et al. 2016, Figure 6): a deeper
# candidate tower recalls the held-out next watch better, with diminishing
# returns.
#
#   scripts/findings/depth.sh [--seed=1] [--users=600000] [--test_users=10000]
#                             [--epochs=1] [--runs=1] [--out=docs/results]
#
# The paper trained on a stream of fresh examples, each seen about once; so
# does this: `vrec datagen --seed=SEED --num_users=USERS --write_train=false`
# (defaults otherwise: 20k videos; 600k users give 11.4M training examples,
# nothing of them on disk) and `vrec train --stream` for EPOCHS passes.
# Trains the candidate model with towers of depth 0 to 4 (the paper's widths
# divided by 4: none -> 64; 64; 128-64; 256-128-64; 512-256-128-64; 64-d
# embeddings, 256 negatives, Adam), evaluates each on the held-out users
# (exact recall@K and MAP over the whole corpus, each example at its own
# example age, as the oracle sees it) and writes OUT/depth.json, OUT/depth.png
# (MAP and recall@100 against depth, the oracle's recall@100 as a line) and
# prints a Markdown table (medians over --runs model seeds 1..runs, with the
# ranges of MAP and recall@100). About 8 minutes a run on 2 cores.
source "$(dirname "$0")/../lib/prologue.sh"
cd "$VREC_ROOT"
SEED=1; USERS=600000; TEST_USERS=10000; EPOCHS=1; RUNS=1; OUT=docs/results
parse_flags seed:SEED users:USERS test_users:TEST_USERS epochs:EPOCHS runs:RUNS out:OUT -- "$@"
find_vrec
make_work depth
mkdir -p "$OUT"
echo "== world: vrec datagen --seed=$SEED --num_users=$USERS --test_users=$TEST_USERS" >&2
make_world "$WORK/world" --seed="$SEED" --num_users="$USERS" --test_users="$TEST_USERS" \
  --write_train=false
TOWERS=("" "64" "128,64" "256,128,64" "512,256,128,64")
: >"$WORK/runs.jsonl"
for depth in 0 1 2 3 4; do
  for run in $(seq "$RUNS"); do
    echo "== depth $depth (tower '${TOWERS[$depth]}'), run $run" >&2
    "$VREC" train --data="$WORK/world" --stream --workers=2 --epochs="$EPOCHS" --embedding_dim=64 \
      --tower="${TOWERS[$depth]}" --output_dim=64 --negatives=256 --seed="$run" \
      --ps_stats_seconds=0 --progress_seconds=30 2>"$WORK/train-$depth-$run.log" |
      tail -n 1 | "$PYTHON" -c "
import json, sys
d = json.load(sys.stdin)
d['depth'] = $depth; d['tower'] = '${TOWERS[$depth]}'; d['run'] = $run
print(json.dumps(d))" >>"$WORK/runs.jsonl"
  done
done
"$PYTHON" - "$WORK/runs.jsonl" "$WORK/world.json" "$OUT" "$SEED" "$EPOCHS" "$USERS" "$TEST_USERS" <<'PY'
import json, os, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
world = json.load(open(sys.argv[2]))
out, seed, epochs = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
users, test_users = int(sys.argv[6]), int(sys.argv[7])
oracle = runs[0]["eval"].get("oracle", {})
rows = []
for depth in sorted({r["depth"] for r in runs}):
    rs = [r for r in runs if r["depth"] == depth]
    med = lambda k: statistics.median(r["eval"][k] for r in rs)
    rows.append({"depth": depth, "tower": rs[0]["tower"] or "(linear)",
                 "recall@1": med("recall@1"), "recall@10": med("recall@10"),
                 "recall@50": med("recall@50"), "recall@100": med("recall@100"), "map": med("map"),
                 "map_range": [min(r["eval"]["map"] for r in rs), max(r["eval"]["map"] for r in rs)],
                 "recall@100_range": [min(r["eval"]["recall@100"] for r in rs),
                                      max(r["eval"]["recall@100"] for r in rs)],
                 "examples_per_s": statistics.median(r["examples_per_s"] for r in rs),
                 "runs": len(rs)})
pop = runs[0]["eval"].get("popularity", {})
result = {"finding": "depth", "seed": seed, "epochs": epochs, "stream": True,
          "eval_example_age": "own",
          "world": {"seed": world.get("seed"), "datagen": "vrec datagen --seed=%d --num_users=%d --test_users=%d --write_train=false (defaults otherwise)" % (seed, users, test_users),
                    "counts": world.get("counts")},
          "oracle": oracle, "popularity": pop, "rows": rows, "runs": runs}
json.dump(result, open(os.path.join(out, "depth.json"), "w"), indent=1)
print("| depth | tower | recall@1 | recall@10 | recall@50 | recall@100 (range) | MAP (range) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print("| %d | %s | %.3f | %.3f | %.3f | %.3f (%.3f-%.3f) | %.3f (%.3f-%.3f) |" % (r["depth"],
          r["tower"], r["recall@1"], r["recall@10"], r["recall@50"], r["recall@100"],
          r["recall@100_range"][0], r["recall@100_range"][1], r["map"], r["map_range"][0],
          r["map_range"][1]))
if oracle:
    print("| oracle | | %.3f | %.3f | %.3f | %.3f | |" % (oracle["recall@1"], oracle["recall@10"],
          oracle["recall@50"], oracle["recall@100"]))
if pop:
    print("| popularity | | %.3f | %.3f | %.3f | %.3f | %.3f |" % (pop["recall@1"], pop["recall@10"],
          pop["recall@50"], pop["recall@100"], pop["map"]))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    d = [r["depth"] for r in rows]
    err = lambda key, rng: [[r[key] - r[rng][0] for r in rows], [r[rng][1] - r[key] for r in rows]]
    # MAP is the paper's measure (its Figure 6); the range is over model seeds.
    ax[0].errorbar(d, [r["map"] for r in rows], yerr=err("map", "map_range"), fmt="o-",
                   capsize=3, label="vrec")
    if pop:
        ax[0].axhline(pop["map"], ls="-.", c="gray", alpha=0.6, label="popularity")
    ax[0].set(xlabel="tower depth", ylabel="holdout MAP", xticks=d)
    ax[0].legend()
    ax[1].errorbar(d, [r["recall@100"] for r in rows], yerr=err("recall@100", "recall@100_range"),
                   fmt="o-", capsize=3, label="vrec")
    if oracle:
        ax[1].axhline(oracle["recall@100"], ls=":", c="k", label="oracle")
    if pop:
        ax[1].axhline(pop["recall@100"], ls="-.", c="gray", alpha=0.6, label="popularity")
    ax[1].set(xlabel="tower depth", ylabel="holdout recall@100", xticks=d)
    ax[1].legend()
    fig.suptitle("Candidate tower depth (world seed %d, %d users streamed, %d epoch%s)"
                 % (seed, users, epochs, "" if epochs == 1 else "s"))
    fig.tight_layout()
    fig.savefig(os.path.join(out, "depth.png"), dpi=110)
except ImportError:
    print("(no matplotlib: no plot)", file=sys.stderr)
PY
