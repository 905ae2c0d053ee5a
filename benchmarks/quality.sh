#!/usr/bin/env bash
# Candidate-generation quality of vrec with its DEFAULT training flags, beside
# popularity, item-kNN and a PyTorch peer (benchmarks/quality_peer.py), over
# several seeds and data sets.
#
#   benchmarks/quality.sh [--seeds=1,2,3] [--out=docs/quality.json]
#                         [--world=DATAGEN_FLAGS]... [--update_doc=docs/quality.md]
#                         [--peer_threads=2] [--keep_work=0] CSV...
#
# Each CSV (MovieLens layout) is converted (`vrec convert --csv=CSV --out=D`);
# each --world makes a generated world (`vrec datagen --out=W DATAGEN_FLAGS`,
# e.g. --world="--num_users=10000"; --world= is datagen's defaults). Then per
# data set and seed S: `vrec train --data=D --model_dir=M --seed=S` (no other
# flag: the defaults are what is measured), `vrec eval --model_dir=M --data=D`
# (vrec's figures and its popularity and item_knn baselines, on the same
# examples) and `quality_peer.py --data=D --seed=S`. A CSV's test examples are
# scored with the user's watched videos excluded (--exclude_watched: a
# MovieLens user rates a movie once, so a watched movie is never the next
# one); a generated world's are not (its users rewatch: series episodes and
# sticky favourites come back, and the generator's oracle scores them so).
#
# --out gets every run and, per data set and method (vrec, popularity,
# item_knn, peer; oracle for generated worlds), the median and range (min-max)
# over the seeds of recall@10, recall@50, recall@100 and MAP; the same as a
# markdown table on stdout. --update_doc=FILE replaces the lines between
# "<!-- quality.sh begin -->" and "<!-- quality.sh end -->" in FILE with the
# table. Progress on stderr. VREC (default build/vrec) names the binary.
source "$(dirname "$0")/../scripts/lib/prologue.sh"
cd "$VREC_ROOT" || exit 2
SEEDS=1,2,3
OUT=docs/quality.json
UPDATE_DOC=""
PEER_THREADS=2
KEEP_WORK=0
worlds=()
csvs=()
flags=()
for arg in "$@"; do
  case "$arg" in
    --world=*) worlds+=("${arg#--world=}") ;;
    -h | --help | --*) flags+=("$arg") ;;
    *) csvs+=("$arg") ;;
  esac
done
parse_flags seeds:SEEDS out:OUT update_doc:UPDATE_DOC peer_threads:PEER_THREADS \
  keep_work:KEEP_WORK -- "${flags[@]+"${flags[@]}"}"
((${#csvs[@]} + ${#worlds[@]} > 0)) || die "nothing to measure: give a CSV or a --world (see --help)"
for csv in "${csvs[@]+"${csvs[@]}"}"; do [[ -f "$csv" ]] || die "no CSV file $csv"; done
[[ "$SEEDS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--seeds=$SEEDS: a comma-separated list of integers"
if [[ -n "$UPDATE_DOC" ]]; then
  if ! grep -q '^<!-- quality.sh begin -->$' "$UPDATE_DOC" ||
    ! grep -q '^<!-- quality.sh end -->$' "$UPDATE_DOC"; then
    die "$UPDATE_DOC has no <!-- quality.sh begin --> / end markers"
  fi
fi
find_vrec
"$PYTHON" -c 'import torch' 2>/dev/null ||
  die "$PYTHON cannot import torch (run benchmarks/install_peer_deps.sh)"
make_work quality "$KEEP_WORK"
IFS=, read -r -a seeds <<<"$SEEDS"
RUNS=$WORK/runs.jsonl
: >"$RUNS"

progress() { echo "$SCRIPT_NAME: $*" >&2; }

# The last stdout line of a command that must succeed; its stderr in LOG.
last_line() {
  local log=$1
  shift
  "$@" 2>"$log" | tail -n 1
}

# measure NAME SOURCE DIR EXCLUDE(0/1)
measure() {
  local name=$1 source=$2 dir=$3 exclude=$4 seed model tag
  local -a ex=()
  ((exclude)) && ex=(--exclude_watched)
  for seed in "${seeds[@]}"; do
    tag=$(basename "$dir")-$seed
    model=$WORK/model-$tag
    progress "[$name] seed $seed: vrec train (default flags)"
    last_line "$WORK/train-$tag.log" "$VREC" train --data="$dir" --model_dir="$model" \
      --seed="$seed" >"$WORK/train-$tag.json"
    progress "[$name] seed $seed: vrec eval ${ex[*]}"
    last_line "$WORK/eval-$tag.log" "$VREC" eval --model_dir="$model" --data="$dir" \
      "${ex[@]+"${ex[@]}"}" >"$WORK/eval-$tag.json"
    progress "[$name] seed $seed: quality_peer.py ${ex[*]}"
    last_line "$WORK/peer-$tag.log" "$PYTHON" benchmarks/quality_peer.py --data="$dir" \
      --seed="$seed" --threads="$PEER_THREADS" "${ex[@]+"${ex[@]}"}" >"$WORK/peer-$tag.json"
    "$PYTHON" - "$name" "$source" "$seed" "$exclude" "$WORK/eval-$tag.json" \
      "$WORK/peer-$tag.json" "$WORK/train-$tag.json" >>"$RUNS" <<'PY'
import json, sys
name, source, seed, exclude, eval_file, peer_file, train_file = sys.argv[1:]
ev = json.loads(open(eval_file).read())
peer = json.loads(open(peer_file).read())
try:
    train = json.loads(open(train_file).read())
except ValueError:
    train = None
print(json.dumps({"dataset": name, "source": source, "seed": int(seed),
                  "exclude_watched": exclude == "1", "eval": ev, "peer": peer,
                  "train": train}))
PY
    rm -rf "$model"
  done
}

i=0
for csv in "${csvs[@]+"${csvs[@]}"}"; do
  i=$((i + 1))
  dir=$WORK/csv$i
  name=$(basename "$csv")
  name=${name%.csv}
  progress "[$name] vrec convert --csv=$csv"
  last_line "$WORK/convert-csv$i.log" "$VREC" convert --csv="$csv" --out="$dir" >/dev/null
  measure "$name" "vrec convert --csv=$csv" "$dir" 1
done
i=0
for world in "${worlds[@]+"${worlds[@]}"}"; do
  i=$((i + 1))
  dir=$WORK/world$i
  name="datagen ${world:-(defaults)}"
  progress "[$name] vrec datagen"
  # shellcheck disable=SC2086  # the world's flags are words
  make_world "$dir" $world || die "vrec datagen --out=$dir $world failed (see $dir.datagen.log)"
  measure "$name" "vrec datagen $world" "$dir" 0
done

mkdir -p "$(dirname "$OUT")"
TABLE=$WORK/table.md
"$PYTHON" - "$RUNS" "$OUT" "$TABLE" "$SEEDS" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  "$("$VREC" --version 2>/dev/null | head -n 1)" <<'PY'
import json, statistics, sys, time
runs_file, out_file, table_file, seeds, commit, version = sys.argv[1:]
runs = [json.loads(line) for line in open(runs_file)]
METRICS = ("recall@10", "recall@50", "recall@100", "map")
METHODS = ("vrec", "popularity", "item_knn", "peer", "oracle")


def figures(run):
    ev = run["eval"]
    out = {"vrec": ev, "peer": run["peer"]}
    for m in ("popularity", "item_knn", "oracle"):  # item_knn may be {"skipped": why}
        if isinstance(ev.get(m), dict) and any(k in ev[m] for k in METRICS):
            out[m] = ev[m]
    return out


datasets = []
for name in dict.fromkeys(r["dataset"] for r in runs):
    rs = [r for r in runs if r["dataset"] == name]
    methods = {}
    for method in METHODS:
        values = [figures(r)[method] for r in rs if method in figures(r)]
        if not values:
            continue
        methods[method] = {  # the oracle has no MAP
            k: {"median": statistics.median(v[k] for v in values),
                "min": min(v[k] for v in values), "max": max(v[k] for v in values)}
            for k in METRICS if all(k in v for v in values)}
        methods[method]["seeds"] = len(values)
    datasets.append({
        "dataset": name, "source": rs[0]["source"],
        "exclude_watched": rs[0]["exclude_watched"],
        "examples": rs[0]["eval"].get("examples"),
        "peer_epochs": [r["peer"]["best_epoch"] for r in rs],
        "methods": methods,
    })
summary = {"commit": commit, "vrec": version, "date": time.strftime("%Y-%m-%d"),
           "seeds": [int(s) for s in seeds.split(",")], "datasets": datasets, "runs": runs}
with open(out_file, "w") as f:
    json.dump(summary, f, indent=1)
    f.write("\n")

LABEL = {"vrec": "vrec (default flags)", "popularity": "popularity", "item_knn": "item-kNN",
         "peer": "PyTorch peer", "oracle": "oracle (the generator's truth)"}
lines = ["Medians over seeds %s (min-max), commit %s, %s." % (seeds, commit, summary["date"]), "",
         "| data | method | recall@10 | recall@50 | recall@100 | MAP |",
         "|---|---|---|---|---|---|"]
for d in datasets:
    where = "%s (%s examples, watched %s)" % (
        d["dataset"], d["examples"], "excluded" if d["exclude_watched"] else "not excluded")
    for method in METHODS:
        if method not in d["methods"]:
            continue
        m = d["methods"][method]
        cells = []
        for k in METRICS:
            f = m.get(k)
            if f is None:
                cells.append("-")
            elif f["min"] == f["max"]:
                cells.append("%.3f" % f["median"])
            else:
                cells.append("%.3f (%.3f-%.3f)" % (f["median"], f["min"], f["max"]))
        lines.append("| %s | %s | %s |" % (where, LABEL[method], " | ".join(cells)))
        where = ""
with open(table_file, "w") as f:
    f.write("\n".join(lines) + "\n")
PY
cat "$TABLE"
if [[ -n "$UPDATE_DOC" ]]; then
  "$PYTHON" - "$UPDATE_DOC" "$TABLE" <<'PY'
import sys
doc, table = sys.argv[1:]
text = open(doc).read()
begin, end = "<!-- quality.sh begin -->\n", "<!-- quality.sh end -->\n"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + open(table).read() + end + tail)
PY
  progress "updated $UPDATE_DOC"
fi
progress "wrote $OUT"
