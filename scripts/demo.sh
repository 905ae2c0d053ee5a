#!/usr/bin/env bash
# The journey, as far as it exists today: install what is missing, build,
# generate a small synthetic world and print what its oracle can reach, train
# the candidate model under mpirun and evaluate it.
# Idempotent: reruns reuse the build and regenerate the world in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
VREC=${VREC_BUILD_DIR:-build}/vrec
OUT=${VREC_DEMO_OUT:-out/demo}
rm -rf "$OUT/world"
mkdir -p "$OUT"

echo "== 1. generate a small world (vrec datagen) into $OUT/world"
"$VREC" datagen --out="$OUT/world" --seed=1 2>"$OUT/datagen.log" | tee "$OUT/datagen.out" | tail -n 1 >"$OUT/datagen.json"
/usr/bin/python3 - "$OUT/datagen.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
o = d["oracle"]
print("   the best any model can do on this world's held-out users:")
for k in ("recall@1", "recall@10", "recall@50", "recall@100"):
    print(f"     oracle {k:<11} {o[k]:.3f}")
print(f"     oracle weighted per-user loss {o['weighted_per_user_loss']:.3f}")
PY

echo "== 2. check the files (vrec inspect)"
"$VREC" inspect --show=0 "$OUT/world" | tail -n 1

echo "== 3. train the candidate model under mpirun: 1 coordinator, 1 server, 2 workers"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$OUT/model"
mpirun --oversubscribe --bind-to none -np 4 "$VREC" train --data="$OUT/world" \
  --model_dir="$OUT/model" --servers=1 --epochs=10 --optimizer=adam --learning_rate=0.003 \
  --eval_every_seconds=10 --progress_seconds=5 2> >(grep -v '^[IW][0-9]' >&2) |
  tail -n 1 >"$OUT/train.json"
/usr/bin/python3 - "$OUT/train.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["eval"]
print(f"   trained {d['examples']:,} examples in {d['seconds']:.0f} s "
      f"({d['examples_per_s']:,.0f}/s, {d['workers']} workers)")
print("   held-out next watch     model   popularity   oracle")
for k in ("recall@1", "recall@10", "recall@50", "recall@100"):
    print(f"     {k:<20} {e[k]:7.3f}   {e['popularity'][k]:10.3f}   {e['oracle'][k]:6.3f}")
print(f"     {'MAP':<20} {e['map']:7.3f}   {e['popularity']['map']:10.3f}")
PY
if [[ -x scripts/plot_metrics.py ]]; then
  /usr/bin/python3 scripts/plot_metrics.py "$OUT/model/metrics.jsonl" --out="$OUT/training.png" \
    >/dev/null && echo "   loss and recall curves: $OUT/training.png"
fi
echo "done: the world is in $OUT/world, the model in $OUT/model (vrec eval --model_dir=$OUT/model --data=$OUT/world)"
