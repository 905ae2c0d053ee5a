#!/usr/bin/env bash
# The journey, as far as it exists today: install what is missing, build,
# generate a small synthetic world and print what its oracle can reach.
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
echo "done: the world is in $OUT/world (manifest.json, truth.json, candidate/, ranking/)"
