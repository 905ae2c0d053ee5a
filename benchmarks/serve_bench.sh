#!/usr/bin/env bash
# Serving latency and throughput of a 1M-video bundle under wrk.
#
#   benchmarks/serve_bench.sh [--videos=1000000] [--users=20000] [--train_seconds=40]
#                             [--seconds=20] [--runs=3] [--clients="4 50"] [--threads=2]
#                             [--out=docs] [--keep=0] [--bundle=DIR]
#
# Generates a world with --videos videos, trains the candidate model (paper
# tower 1024-512-256, 256-d embeddings) and the ranking model (tower
# 1024-512-256) for --train_seconds each (weights, not quality, matter here),
# times `vrec export` (IVF index, recall@100 vs exact recorded), then serves
# the bundle (300 candidates ranked per request) and drives POST
# /v1/recommend with wrk at each client count, --runs times; before the
# server starts, `vrec bench serve` times one request by stage in process.
# Prints and writes OUT/serving.json: p50/p90/p99 latency and requests/s
# (medians over runs) beside the towers' arithmetic bound on these cores, and
# the stage profile. Needs wrk
# (apt-get install wrk). Takes roughly 10 minutes. --keep=1 keeps the work
# folder; --bundle=DIR measures an existing bundle (export time then 0).
source "$(dirname "$0")/../scripts/lib/prologue.sh"
cd "$VREC_ROOT"
VIDEOS=1000000; USERS=20000; TRAIN_SECONDS=40; SECONDS_=20; RUNS=3; CLIENTS="4 50"; THREADS=2
OUT=docs; KEEP=0; BUNDLE=""
parse_flags videos:VIDEOS users:USERS train_seconds:TRAIN_SECONDS seconds:SECONDS_ runs:RUNS \
  clients:CLIENTS threads:THREADS out:OUT keep:KEEP bundle:BUNDLE -- "$@"
find_vrec
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
make_work serve-bench "$KEEP"
mkdir -p "$OUT"

if [[ -n "$BUNDLE" ]]; then
  mkdir -p "$WORK"
  ln -s "$(realpath "$BUNDLE")" "$WORK/bundle"
  cp "$BUNDLE/bundle.json" "$WORK/bundle.json.pretty"
  "$PYTHON" -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))" \
    "$BUNDLE/bundle.json" >"$WORK/bundle.json"
  EXPORT_SECONDS=0
else
echo "== world: $VIDEOS videos, $USERS users ($WORK)" >&2
make_world "$WORK/world" --seed=5 --num_videos="$VIDEOS" --num_users="$USERS" --test_users=1000
echo "== train both models for ${TRAIN_SECONDS}s each" >&2
"$VREC" train --data="$WORK/world" --checkpoint_dir="$WORK/ckpt" --workers=2 \
  --embedding_dim=256 --tower=1024,512,256 --negatives=2048 --max_seconds="$TRAIN_SECONDS" \
  --epochs=0 --eval_examples=200 --ps_stats_seconds=0 >/dev/null 2>"$WORK/train.log"
"$VREC" train --model=ranking --data="$WORK/world" --checkpoint_dir="$WORK/rckpt" --workers=2 \
  --embedding_dim=64 --tower=1024,512,256 --max_seconds="$TRAIN_SECONDS" --epochs=0 \
  --eval_examples=2000 --ps_stats_seconds=0 >/dev/null 2>"$WORK/rtrain.log"
echo "== export" >&2
START=$(date +%s.%N)
"$VREC" export --checkpoint="$WORK/ckpt" --ranking="$WORK/rckpt" --out="$WORK/bundle" \
  >"$WORK/bundle.json" 2>"$WORK/export.log"
EXPORT_SECONDS=$(echo "$(date +%s.%N) - $START" | bc)
tail -n 3 "$WORK/export.log" >&2
fi

echo "== one request by stage (vrec bench serve)" >&2
"$VREC" bench serve --serve_bundle="$WORK/bundle" --serve_requests=200 >"$WORK/profile.json" \
  2>"$WORK/profile.log"
start_server "$WORK/serve.out" "$WORK/serve.log" --model="$WORK/bundle" --reload_seconds=0
# A request body: a user who watched ten videos the service itself recommended.
"$PYTHON" - "$PORT" "$WORK/body.json" <<'PY'
import json, sys, urllib.request
url = "http://127.0.0.1:%s/v1/recommend" % sys.argv[1]
ask = lambda b: json.loads(urllib.request.urlopen(urllib.request.Request(
    url, data=json.dumps(b).encode(), headers={"Content-Type": "application/json"}), timeout=60).read())
seen = [i["video"] for i in ask({"num": 10})["items"]]
json.dump({"watch_history": seen, "search_tokens": [3, 14, 15], "region": 2, "device": 1,
           "age": 30, "gender": 0.5, "num": 20}, open(sys.argv[2], "w"))
PY
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/body.json")
wrk.body = f:read("*a")
f:close()
LUA
# Warm up, then measure.
wrk -t"$THREADS" -c4 -d3s -s "$WORK/post.lua" "http://127.0.0.1:$PORT/v1/recommend" >/dev/null
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
LINES="$WORK/runs.txt"
: >"$LINES"
for c in $CLIENTS; do
  for r in $(seq "$RUNS"); do
    echo "== wrk: $c clients, run $r" >&2
    t=$THREADS; (( c < t )) && t=$c
    # The server's CPU time (user + system clock ticks) around the run: CPU
    # per request is steadier than a rate on a shared machine.
    cpu0=$(server_ticks)
    wrk -t"$t" -c"$c" -d"${SECONDS_}s" --latency -s "$WORK/post.lua" \
      "http://127.0.0.1:$PORT/v1/recommend" >"$WORK/wrk-$c-$r.txt"
    echo "$c $WORK/wrk-$c-$r.txt $(( $(server_ticks) - cpu0 ))" >>"$LINES"
  done
done
curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" 2>/dev/null || true
"$PYTHON" - "$LINES" "$WORK/bundle.json" "$EXPORT_SECONDS" "$OUT/serving.json" \
  "$WORK/bundle/candidate/model.json" "$WORK/bundle/ranking/model.json" "$WORK/profile.json" <<'PY'
import json, re, statistics, subprocess, sys
runs_file, bundle_file, export_s, out = sys.argv[1:5]
bundle = json.loads(open(bundle_file).read().splitlines()[-1])
profile = json.loads(open(sys.argv[7]).read().splitlines()[-1])

def ms(text):
    v, unit = float(text[:-2] if text.endswith(("ms", "us")) else text[:-1]), text[-2:]
    return v / 1000 if unit == "us" else v if unit == "ms" else v * 1000

TICK = float(subprocess.check_output(["getconf", "CLK_TCK"]).decode())

def parse(path, ticks):
    t = open(path).read()
    done = int(re.search(r"(\d+) requests in", t).group(1))
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", t, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return {"p50_ms": ms(lat["50"]), "p90_ms": ms(lat["90"]), "p99_ms": ms(lat["99"]),
            "requests_per_s": rps, "non_2xx": int(errors.group(1)) if errors else 0,
            "server_cpu_ms_per_request": 1e3 * ticks / TICK / max(done, 1)}

by_c = {}
for line in open(runs_file):
    c, path, ticks = line.split()
    by_c.setdefault(int(c), []).append(parse(path, int(ticks)))

# The arithmetic of one request (2 FLOP per multiply-add): the user tower
# once; the ranking tower (input -> 1024 -> 512 -> 256 -> 1) on the 300
# candidates as serving runs it, the user's columns of layer 1 once per
# request (`vrec bench serve` counts it: ranking_page_mflop; every column
# for every candidate was ranking_plain_mflop); the index rows the request
# read (IVF: every centroid and the probed lists, d+1 floats each).
def tower_flops(model_json, rows):
    m = json.load(open(model_json))
    w = sum(int(d["size"]) for d in m["dense"] if d["block"].endswith("/w"))
    return 2 * w * rows
cand = tower_flops(sys.argv[5], 1)
rank = profile["ranking_page_mflop"] * 1e6
rank_plain = profile["ranking_plain_mflop"] * 1e6
idx = bundle["index"]
scan = 2 * int(idx["dim"]) * int(profile["index_rows"])
flops = cand + rank + scan
cores = int(subprocess.check_output(["nproc"]).decode())
peak = 145e9 * cores  # sgemm per core, measured (../shared/ENV.md)
bound = peak / flops
result = {"bench": "serve", "videos": int(bundle["num_videos"]), "index": idx,
          "export_seconds": float(export_s), "flops_per_request": flops,
          "flops": {"user_tower": cand, "ranking_300": rank, "index_scan": scan,
                    "ranking_300_every_column": rank_plain},
          "cores": cores, "arithmetic_bound_requests_per_s": bound,
          "arithmetic_bound_every_column": peak / (flops - rank + rank_plain),
          "profile": profile, "runs": by_c, "median": {}}
print("| clients | p50 ms | p90 ms | p99 ms | requests/s | of the arithmetic bound |"
      " server CPU ms/request |")
print("|---|---|---|---|---|---|---|")
for c, rs in sorted(by_c.items()):
    med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
    result["median"][c] = med
    print("| %d | %.2f | %.2f | %.2f | %.0f | %.2f | %.2f |" % (c, med["p50_ms"], med["p90_ms"],
          med["p99_ms"], med["requests_per_s"], med["requests_per_s"] / bound,
          med["server_cpu_ms_per_request"]))
print("arithmetic: %.0f MFLOP/request (user tower %.1f, ranking 300 candidates %.0f [every"
      " column for each: %.0f], index scan %.1f over %d rows);"
      " %d cores x 145 GFLOP/s -> %.0f requests/s bound; export %.0f s"
      % (flops / 1e6, cand / 1e6, rank / 1e6, rank_plain / 1e6, scan / 1e6,
         profile["index_rows"], cores, bound, float(export_s)))
st = profile["stages_ms"]
print("one request alone, in process (ms): %.2f with JSON in and out; user tower %.2f, index %.2f,"
      " ranking inputs %.2f, layer 1 %.2f, layers 2.. %.2f, order %.2f"
      % (profile["handle_ms"], st["user_tower"], st["search"], st["ranking_input"],
         st["ranking_layer1"], st["ranking_other_layers"], st["order"]))
json.dump(result, open(out, "w"), indent=1)
print(json.dumps(result))
PY
