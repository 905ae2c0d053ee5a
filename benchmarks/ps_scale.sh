#!/usr/bin/env bash
# The parameter server's scale run (issue: 1-billion-parameter table under a
# 6 GB budget): one server holds 8M rows of 128 floats with Adagrad state
# (8M x 256 floats = 8.2 GB of rows) with --budget_mb=6144, under a Zipf(1.1)
# pull and push load, against the same load on a 4M-row table that fits in
# memory, measured in the same run. Prints both JSON lines and a summary line
# with the ratio; takes several minutes (creating 8M rows, spilling ~2 GB).
#
#   benchmarks/ps_scale.sh [VREC_BINARY] [SPILL_DIR]
set -euo pipefail
VREC=${1:-build/vrec}
SPILL=${2:-/tmp/vrec_ps_scale}
COMMON=(--dim=128 --zipf=1.1 --optimizer=adagrad --warmup_seconds=30 --seconds=30)
rm -rf "$SPILL"
big=$("$VREC" bench ps --rows=8000000 --budget_mb=6144 --spill_dir="$SPILL" "${COMMON[@]}")
rm -rf "$SPILL"
fit=$("$VREC" bench ps --rows=4000000 "${COMMON[@]}")
echo "$big"
echo "$fit"
/usr/bin/python3 - "$big" "$fit" <<'PY'
import json, sys
big = {r["op"]: r for r in map(json.loads, sys.argv[1].splitlines())}
fit = {r["op"]: r for r in map(json.loads, sys.argv[2].splitlines())}
out = {"bench": "ps_scale", "peak_rss_gib": big["pull"]["peak_rss_bytes"] / 2**30}
for op in big:
    out[op + "_keys_per_s_budget"] = big[op]["keys_per_s"]
    out[op + "_keys_per_s_in_memory"] = fit[op]["keys_per_s"]
    out[op + "_ratio"] = big[op]["keys_per_s"] / fit[op]["keys_per_s"]
    out[op + "_memory_hit_rate"] = big[op]["memory_hit_rate"]
print(json.dumps(out))
PY
