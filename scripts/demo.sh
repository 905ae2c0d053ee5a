#!/usr/bin/env bash
# The whole journey: install what is missing, build, generate a small
# synthetic world and print what its oracle can reach, train the candidate
# model under mpirun (with checkpoints) and evaluate it, train the ranking
# model, export a serving bundle, serve it and print recommendations for a
# sample user.
# Idempotent: reruns reuse the build and regenerate the world in out/demo/.
source "$(dirname "$0")/lib/prologue.sh"
cd "$VREC_ROOT"
scripts/install_deps.sh
scripts/build.sh
VREC=${VREC_BUILD_DIR:-build}/vrec
OUT=${VREC_DEMO_OUT:-out/demo}
rm -rf "$OUT/world"
mkdir -p "$OUT"

echo "== 1. generate a small world (vrec datagen) into $OUT/world"
"$VREC" datagen --out="$OUT/world" --seed=1 2>"$OUT/datagen.log" | tee "$OUT/datagen.out" | tail -n 1 >"$OUT/datagen.json"
"$PYTHON" - "$OUT/datagen.json" <<'PY'
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
echo "   (default flags: until the validation slice stops improving; the best model is kept)"
rm -rf "$OUT/model" "$OUT/ckpt" "$OUT/ranking" "$OUT/rckpt"
"${MPIRUN[@]}" -np 4 "$VREC" train --data="$OUT/world" \
  --model_dir="$OUT/model" --servers=1 \
  --checkpoint_dir="$OUT/ckpt" --checkpoint_every=10s \
  --eval_every_seconds=10 --progress_seconds=5 2> >(grep -v '^[IW][0-9]' >&2) |
  tail -n 1 >"$OUT/train.json"
"$PYTHON" - "$OUT/train.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["eval"]
print(f"   trained {d['examples']:,} examples in {d['seconds']:.0f} s "
      f"({d['examples_per_s']:,.0f}/s, {d['workers']} workers)")
v = d.get("validation")
if v:
    print(f"   best validation {v['metric']} {v['best']:.3f} at epoch {v['best_epoch']:.1f}; "
          f"{v.get('reason', 'the epoch cap was reached')}")
print("   held-out next watch     model   popularity   oracle")
for k in ("recall@1", "recall@10", "recall@50", "recall@100"):
    print(f"     {k:<20} {e[k]:7.3f}   {e['popularity'][k]:10.3f}   {e['oracle'][k]:6.3f}")
print(f"     {'MAP':<20} {e['map']:7.3f}   {e['popularity']['map']:10.3f}")
PY
if [[ -x scripts/plot_metrics.py ]]; then
  "$PYTHON" scripts/plot_metrics.py "$OUT/model/metrics.jsonl" --out="$OUT/training.png" \
    >/dev/null && echo "   loss and recall curves: $OUT/training.png"
fi

echo "== 4. train the ranking model (weighted logistic regression) in one process"
"$VREC" train --model=ranking --data="$OUT/world" --model_dir="$OUT/ranking" \
  --checkpoint_dir="$OUT/rckpt" --epochs=2 --workers=2 --progress_seconds=5 \
  2> >(grep -v '^[IW][0-9]' >&2) | tail -n 1 >"$OUT/ranking.json"
"$PYTHON" - "$OUT/ranking.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["eval"]
print(f"   weighted per-user loss {e['weighted_per_user_loss']:.3f} (oracle "
      f"{e['oracle']['weighted_per_user_loss']:.3f}), AUC {e['auc']:.3f}")
PY

echo "== 5. export a serving bundle from the newest checkpoints (vrec export)"
"$VREC" export --checkpoint="$OUT/ckpt" --ranking="$OUT/rckpt" --out="$OUT/bundle" \
  2>"$OUT/export.log" | tail -n 1 >"$OUT/bundle.json"
"$PYTHON" - "$OUT/bundle.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
i = b["index"]
print(f"   bundle {b['version']}: {b['num_videos']} videos, {i['kind']} index, "
      f"recall@100 {i['recall_at_100']:.3f} vs exact ({i['queries']} {i['query_source']})")
PY

echo "== 6. serve it (vrec serve) and ask for recommendations"
start_server "$OUT/serve.out" "$OUT/serve.log" --model="$OUT/bundle"
"$PYTHON" - "$PORT" <<'PY'
import json, sys, urllib.request
port = int(sys.argv[1])
url = "http://127.0.0.1:%d/v1/recommend" % port
def ask(body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())
seen = [i["video"] for i in ask({"num": 3})["items"]]
user = {"watch_history": seen, "region": 3, "device": 1, "age": 27, "gender": 0.2, "num": 5}
print(f"   POST {url}")
print(f"     {json.dumps(user)}")
for i in ask(user)["items"]:
    print(f"     video {i['video']:>20}  expected watch time {i['expected_watch_time']:6.1f} s")
PY
stop_server
echo "done: the world is in $OUT/world, the models in $OUT/model and $OUT/ranking, checkpoints in"
echo "      $OUT/ckpt, the bundle in $OUT/bundle (vrec serve --model=$OUT/bundle --port=8080)"
