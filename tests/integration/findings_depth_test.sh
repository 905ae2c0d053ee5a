#!/usr/bin/env bash
# The depth finding's command (scripts/findings/depth.sh) end to end on a
# small streamed world: it trains all five towers, writes depth.json with a
# row per depth (medians, ranges, the oracle and the world it ran on) and
# prints the Markdown table docs/results.md shows. Keeps the script that
# regenerates a published figure from rotting; the figure itself takes ~24
# minutes and is not a test.
source "$(dirname "$0")/lib.sh"
# depth.sh runs from the repository root: VREC and SCRATCH are absolute.
VREC="$VREC" "$VREC_ROOT/scripts/findings/depth.sh" --users=3000 --test_users=200 --runs=1 \
  --out="$SCRATCH/out" >"$SCRATCH/table.md" 2>"$SCRATCH/stderr" ||
  fail_log "$SCRATCH/stderr" "depth.sh exited non-zero"
grep -q '^| depth | tower |' "$SCRATCH/table.md" || fail_log "$SCRATCH/table.md" "no table"
grep -q '^| oracle |' "$SCRATCH/table.md" || fail "no oracle row"
"$PYTHON" - "$SCRATCH/out/depth.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["stream"] is True and d["eval_example_age"] == "own", d.keys()
assert d["world"]["counts"]["users"] == 3000, d["world"]
assert "--num_users=3000 --test_users=200" in d["world"]["datagen"], d["world"]["datagen"]
assert [r["depth"] for r in d["rows"]] == [0, 1, 2, 3, 4], d["rows"]
assert [r["tower"] for r in d["rows"]] == ["(linear)", "64", "128,64", "256,128,64",
                                            "512,256,128,64"]
for r in d["rows"]:
    assert r["runs"] == 1
    assert 0 <= r["map"] <= 1 and 0 <= r["recall@100"] <= 1, r
    assert r["map_range"][0] <= r["map"] <= r["map_range"][1], r
    assert r["recall@1"] <= r["recall@10"] <= r["recall@50"] <= r["recall@100"], r
assert 0 < d["oracle"]["recall@100"] <= 1
# Every run trained on the streamed world, one pass over its examples.
train = d["world"]["counts"]["candidate_train"]
for run in d["runs"]:
    assert run["examples"] == train, (run["examples"], train)
print("depth finding: 5 towers trained, table and depth.json complete")
PY
