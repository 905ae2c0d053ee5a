#!/usr/bin/env bash
# vrec serve under hostile requests (issue 20's probes): a 50 MB body is
# refused (413) before it is read, a 1M-item watch history is refused (400,
# naming the limit) even with the body limit raised to 64 MB, odd paths and
# bodies get JSON errors, and the server's peak memory (VmHWM) grows by less
# than 256 MB through all of it; afterwards it still serves.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=8
"$VREC" train --data="$SCRATCH/world" "${TINY_MODEL[@]}" --model_dir="$SCRATCH/model" \
  >"$SCRATCH/train.out" 2>"$SCRATCH/train.err" || fail_log "$SCRATCH/train.err" "vrec train"
"$VREC" export --checkpoint="$SCRATCH/model" --out="$SCRATCH/bundle" --data="$SCRATCH/world" \
  >"$SCRATCH/export.out" 2>"$SCRATCH/export.err" || fail_log "$SCRATCH/export.err" "vrec export"
URL=""
hwm_mb() { awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$SERVER/status"; }
code() {  # code CURL_ARGS...: the HTTP status (000: no reply)
  curl -s -o "$SCRATCH/reply" -w '%{http_code}' "$@" || true
}
post() {  # post BODY_FILE: the status of POST /v1/recommend with it
  code -X POST -H 'Content-Type: application/json' --data-binary @"$1" "$URL/v1/recommend"
}
serves() {
  local got
  got=$(code -X POST -H 'Content-Type: application/json' -d '{"watch_history": [1, 2], "num": 5}' \
    "$URL/v1/recommend")
  [ "$got" = 200 ] || fail_log "$SCRATCH/serve.err" "a plain request got $got"
}
"$PYTHON" -c 'import json; print(json.dumps({"watch_history": list(range(1, 1000001))}))' \
  >"$SCRATCH/million.json"  # 1M ids: about 7 MB
"$PYTHON" -c 'print("{\"watch_history\": [1], \"x\": \"" + "a" * 50000000 + "\"}")' \
  >"$SCRATCH/fifty.json"   # 50 MB of JSON

# 1. The default limits (1 MiB bodies): both refused unread.
start_server "$SCRATCH/serve.out" "$SCRATCH/serve.err" --model="$SCRATCH/bundle"
URL="http://127.0.0.1:$PORT"
serves
before=$(hwm_mb)
for f in fifty million; do
  got=$(post "$SCRATCH/$f.json")
  [ "$got" = 413 ] || fail_log "$SCRATCH/serve.err" "$f.json got $got, not 413"
  grep -q "over 1048576 bytes" "$SCRATCH/reply" || fail "the 413 does not name the limit"
done
# Odd paths and bodies: JSON errors, never a crash.
for path in '/%FF' '/%00' '/v1/recommend/%C0%80' '/..%2F..%2Fetc%2Fpasswd'; do
  got=$(code "$URL$path")
  [ "$got" = 404 ] || fail "GET $path got $got"
  "$PYTHON" -c 'import json, sys; json.load(open(sys.argv[1]))' "$SCRATCH/reply" ||
    fail "GET $path: the reply is not JSON"
done
for body in '{"watch_history": [1e400]}' '{"watch_history": [-1]}' '{"num": 1e12}' \
  '{"search_tokens": [[[[[[[[[[1]]]]]]]]]]}' $'{"x": "\xff\xfe"}' '{"age": "NaN"}'; do
  got=$(code -X POST -H 'Content-Type: application/json' --data-binary "$body" "$URL/v1/recommend")
  [ "$got" = 400 ] || [ "$got" = 200 ] || fail_log "$SCRATCH/serve.err" "POST $body got $got"
done
serves
after=$(hwm_mb)
echo "default limits: peak memory $before MB before the hostile requests, $after MB after"
[ $((after - before)) -lt 32 ] || fail "peak memory grew by $((after - before)) MB"
stop_server

# 2. Bodies up to 64 MB: the 1M-item history is parsed and refused naming
# the id limit, the 50 MB body too; peak memory stays within a small multiple
# of the body limit (docs/serving.md).
start_server "$SCRATCH/serve.out" "$SCRATCH/serve.err" --model="$SCRATCH/bundle" --max_body_mb=64
URL="http://127.0.0.1:$PORT"
serves
before=$(hwm_mb)
got=$(post "$SCRATCH/million.json")
[ "$got" = 400 ] || fail_log "$SCRATCH/serve.err" "a 1M-item history got $got, not 400"
grep -q "at most 10000" "$SCRATCH/reply" || fail "the 400 does not name the id limit"
million=$(hwm_mb)
got=$(post "$SCRATCH/fifty.json")
[ "$got" = 400 ] || fail_log "$SCRATCH/serve.err" "a 50 MB JSON body got $got, not 400"
serves
after=$(hwm_mb)
echo "64 MB bodies: peak memory $before MB, $million MB after 1M ids, $after MB after 50 MB of JSON"
[ $((million - before)) -lt 128 ] || fail "1M ids took the peak up by $((million - before)) MB"
[ $((after - before)) -lt 512 ] || fail "50 MB of JSON took the peak up by $((after - before)) MB"
stop_server
echo "serve limits: ok"
