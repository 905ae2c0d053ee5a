#!/usr/bin/env bash
# benchmarks/quality_peer.py on a tiny generated world: its --check (the
# hand-written record and protobuf decoder against `vrec inspect`, damaged
# files, the rank's tie rule, the validation-slice rule, the example age's
# CDF, and, when Debian's python3 imports torch, a short deterministic
# training run); then a damaged training file makes a real run fail naming
# the file and the record, before any training. Without torch the torch-free
# parts still run (the training check is skipped, saying so).
source "$(dirname "$0")/lib.sh"
PEER=$VREC_ROOT/benchmarks/quality_peer.py

tiny_world "$SCRATCH/w" --seed=3

if "$PYTHON" -c 'import torch' 2>/dev/null; then
  with_torch=yes
else
  with_torch=no
  echo "quality_peer_test: $PYTHON does not import torch: the training check is skipped" >&2
fi
"$PYTHON" "$PEER" --check --data="$SCRATCH/w" --vrec="$VREC" --check_torch="$with_torch" \
  >"$SCRATCH/check.out" 2>"$SCRATCH/check.err" || fail_log "$SCRATCH/check.err" "quality_peer.py --check"
[[ "$(json_field "$SCRATCH/check.out" ok)" == True ]] || fail_log "$SCRATCH/check.err" "--check not ok"
grep -q '^ok    .*decode as vrec inspect prints them' "$SCRATCH/check.err" ||
  fail_log "$SCRATCH/check.err" "the decoder was not compared with vrec inspect"
if [[ $with_torch == yes ]]; then
  grep -q '^ok    a short training run learns' "$SCRATCH/check.err" ||
    fail_log "$SCRATCH/check.err" "the training check did not run"
fi

# A payload byte flipped in the second training file: the run stops reading.
cp -r "$SCRATCH/w" "$SCRATCH/bad"
file=$SCRATCH/bad/candidate/train-00001-of-00003.rec
"$PYTHON" - "$file" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(40)  # inside the first record's payload
    b = f.read(1)
    f.seek(40)
    f.write(bytes([b[0] ^ 0x01]))
PY
if "$PYTHON" "$PEER" --data="$SCRATCH/bad" >"$SCRATCH/bad.out" 2>"$SCRATCH/bad.err"; then
  fail "quality_peer.py read a damaged training file without an error"
fi
grep -q "train-00001-of-00003.rec: record 0 at offset 0: payload CRC mismatch" "$SCRATCH/bad.err" ||
  fail_log "$SCRATCH/bad.err" "the error does not name the damaged file and record"
[[ ! -s "$SCRATCH/bad.out" ]] || fail "a failed run printed a result"
grep -q "epoch" "$SCRATCH/bad.err" && fail "a damaged dataset was trained on"

"$PYTHON" "$PEER" --help >/dev/null || fail "quality_peer.py --help"
"$VREC_ROOT/benchmarks/quality.sh" --help | grep -q "quality_peer.py" || fail "quality.sh --help"
echo "quality_peer_test: ok"
