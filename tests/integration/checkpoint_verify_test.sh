#!/usr/bin/env bash
# Checkpoints that check themselves, end to end, in one process: a run and a
# resumed run leave two complete checkpoints, each MANIFEST listing its
# files with sizes and CRC32Cs; a flipped byte in an SST of the newest makes
# `vrec train --resume` pass it over with a warning naming the file and
# resume from the one before; given the damaged folder itself, the resume
# fails naming the file.
source "$(dirname "$0")/lib.sh"

tiny_world "$SCRATCH/world" --seed=5
CKPT="$SCRATCH/ckpt"
TRAIN=(train --data="$SCRATCH/world" --servers=1 --workers=1 --epochs=1 "${TINY_MODEL[@]}"
       --eval_examples=50 --progress_seconds=0 --checkpoint_dir="$CKPT" --keep_checkpoints=3)

"$VREC" "${TRAIN[@]}" --model_dir="$SCRATCH/a" >"$SCRATCH/a.out" 2>"$SCRATCH/a.err" ||
  fail_log "$SCRATCH/a.err" "first run"
"$VREC" "${TRAIN[@]}" --model_dir="$SCRATCH/b" --resume >"$SCRATCH/b.out" 2>"$SCRATCH/b.err" ||
  fail_log "$SCRATCH/b.err" "second run (resumed)"
OLDER="$CKPT/ckpt-00000001"
NEWEST="$CKPT/ckpt-00000002"
[[ -f "$OLDER/MANIFEST" && -f "$NEWEST/MANIFEST" ]] || fail "two complete checkpoints: $(ls "$CKPT")"

# The manifest lists every file of the server's part, and only those.
"$PYTHON" - "$NEWEST" <<'PY'
import json, os, sys
d = sys.argv[1]
listed = {f["path"]: int(f["size"]) for f in json.load(open(os.path.join(d, "manifest.json")))["files"]}
on_disk = {"server-00000.state": os.path.getsize(os.path.join(d, "server-00000.state"))}
for name in os.listdir(os.path.join(d, "server-00000")):
    on_disk["server-00000/" + name] = os.path.getsize(os.path.join(d, "server-00000", name))
assert listed == on_disk, (listed, on_disk)
assert any(p.endswith(".sst") for p in listed), listed
PY

# One flipped bit in the middle of an SST of the newest checkpoint, written
# as a new file: the checkpoints hard-link the SSTs they share (here all, as
# the resumed run trained nothing), and damage to a shared inode is in both.
SST=$(cd "$NEWEST" && find server-00000 -name '*.sst' | sort | head -n 1)
"$PYTHON" - "$NEWEST/$SST" <<'PY'
import os, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[len(data) // 2] ^= 0x20
open(path + ".damaged", "wb").write(data)
os.replace(path + ".damaged", path)
PY

"$VREC" "${TRAIN[@]}" --model_dir="$SCRATCH/c" --resume >"$SCRATCH/c.out" 2>"$SCRATCH/c.err" ||
  fail_log "$SCRATCH/c.err" "resume past the damaged checkpoint"
grep -qF "passing over a damaged checkpoint: checkpoint $NEWEST: file $SST: checksum mismatch" \
  "$SCRATCH/c.err" || fail_log "$SCRATCH/c.err" "no warning naming $SST"
grep -qF "resuming from $OLDER " "$SCRATCH/c.err" || fail_log "$SCRATCH/c.err" "not resumed from $OLDER"

# The damaged folder given itself: no fallback, an error naming the file.
if "$VREC" "${TRAIN[@]}" --checkpoint_dir="$NEWEST" --model_dir="$SCRATCH/d" --resume \
  >/dev/null 2>"$SCRATCH/d.err"; then
  fail "resumed from a damaged checkpoint folder"
fi
grep -qF "$SST: checksum mismatch" "$SCRATCH/d.err" ||
  fail_log "$SCRATCH/d.err" "the damaged folder given itself: no error naming $SST"
echo "checkpoint_verify_test: OK"
