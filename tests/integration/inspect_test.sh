#!/bin/bash
# vrec inspect end to end: record files built byte by byte in Python (with its
# own CRC32C, so the framing is checked against an independent writer), then
# validated, displayed, damaged and re-checked; and a small dataset folder.
# Usage: inspect_test.sh VREC SCRATCH_DIR
source "$(dirname "$0")/lib.sh"
mkdir -p "$SCRATCH/ds/candidate"

# rec.py COMMAND ...: writes record files (TFRecord framing, CRC32C computed
# here), flips bytes, writes a manifest.pb by hand-encoding the protobuf.
cat > "$SCRATCH/rec.py" <<'PYEOF'
import struct, sys

def _table():
    t = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t
T = _table()

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ T[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF

def mask(c):
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

def record(payload):
    head = struct.pack('<Q', len(payload))
    return (head + struct.pack('<I', mask(crc32c(head))) + payload +
            struct.pack('<I', mask(crc32c(payload))))

def varint(v):
    out = b''
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field_varint(num, v):
    return varint(num << 3) + varint(v)

def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data

assert crc32c(b'123456789') == 0xE3069283

if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'raw':  # raw OUT STRING...
        with open(sys.argv[2], 'wb') as f:
            for s in sys.argv[3:]:
                f.write(record(s.encode()))
    elif cmd == 'candidate':  # candidate OUT USER_ID... (+ one watch each)
        with open(sys.argv[2], 'wb') as f:
            for u in sys.argv[3:]:
                f.write(record(field_varint(2, int(u)) + field_varint(12, int(u) * 10)))
    elif cmd == 'garbage':  # garbage OUT: a valid CandidateExample, then junk with good CRCs
        with open(sys.argv[2], 'wb') as f:
            f.write(record(field_varint(2, 1)))
            f.write(record(b'\xff' * 11))
    elif cmd == 'flip':  # flip FILE OFFSET
        with open(sys.argv[2], 'r+b') as f:
            f.seek(int(sys.argv[3]))
            b = f.read(1)
            f.seek(int(sys.argv[3]))
            f.write(bytes([b[0] ^ 0x20]))
    elif cmd == 'manifest':  # manifest DIR PATH RECORDS BYTES [PATH RECORDS BYTES...]
        out = field_varint(1, 1) + field_bytes(2, b'inspect_test')
        rest = sys.argv[3:]
        for i in range(0, len(rest), 3):
            shard = (field_bytes(1, rest[i].encode()) + field_varint(2, int(rest[i + 1])) +
                     field_varint(3, int(rest[i + 2])))
            out += field_bytes(5, shard)
        with open(sys.argv[2] + '/manifest.pb', 'wb') as f:
            f.write(out)
PYEOF

# 1. A valid raw file: exit 0, the count, the payloads shown.
"$PYTHON" "$SCRATCH/rec.py" raw "$SCRATCH/plain.rec" hello "" world again
out=$("$VREC" inspect "$SCRATCH/plain.rec" 2>&1) || fail "valid file rejected: $out"
echo "$out"
grep -q "plain.rec: 4 records" <<<"$out" || fail "record count missing"
grep -q '5 bytes: "hello"' <<<"$out" || fail "first record not shown"
grep -q "all OK" <<<"$out" || fail "no summary"

# 2. Typed by folder: candidate/ records parsed and printed as text.
"$PYTHON" "$SCRATCH/rec.py" candidate "$SCRATCH/ds/candidate/train-00000-of-00001.rec" 7 8 9
out=$("$VREC" inspect --show=2 "$SCRATCH/ds/candidate/train-00000-of-00001.rec" 2>&1) ||
  fail "valid candidate file rejected: $out"
echo "$out"
grep -q "3 records" <<<"$out" || fail "candidate count"
grep -q "vrec.CandidateExample" <<<"$out" || fail "type not detected from the folder"
grep -q "user_id: 7 label_video: 70" <<<"$out" || fail "first candidate not shown"
grep -q "user_id: 9" <<<"$out" && fail "--show=2 showed a third record"

# 3. A flipped byte: exit 1, the file and the offset of the bad record named,
#    and the other (good) file still checked.
size=$(stat -c %s "$SCRATCH/plain.rec")
cp "$SCRATCH/plain.rec" "$SCRATCH/bad.rec"
# Records: hello (21 bytes) at 0, "" (16) at 21, world at 37: flip inside "world".
"$PYTHON" "$SCRATCH/rec.py" flip "$SCRATCH/bad.rec" 50
set +e
out=$("$VREC" inspect "$SCRATCH/bad.rec" "$SCRATCH/plain.rec" 2>&1)
rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] || fail "corrupt file: exit $rc, want 1"
grep -q "vrec inspect: $SCRATCH/bad.rec: corrupt record at offset 37: payload CRC mismatch" <<<"$out" ||
  fail "error does not name file and offset"
grep -q "plain.rec: 4 records, $size bytes, raw: OK" <<<"$out" || fail "second file not checked"
grep -q "1 bad" <<<"$out" || fail "summary does not count the bad file"

# 4. Valid CRCs but a payload that is not a CandidateExample.
"$PYTHON" "$SCRATCH/rec.py" garbage "$SCRATCH/garbage.rec"
set +e
out=$("$VREC" inspect --type=candidate "$SCRATCH/garbage.rec" 2>&1)
rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] || fail "unparseable payload: exit $rc, want 1"
grep -q "corrupt record at offset 18: payload of 11 bytes does not parse as vrec.CandidateExample" \
  <<<"$out" || fail "parse failure not reported with its offset"

# 5. --json: one line per file.
set +e
out=$("$VREC" inspect --json "$SCRATCH/plain.rec" "$SCRATCH/bad.rec" 2>/dev/null)
rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] || fail "--json exit $rc"
[ "$(wc -l <<<"$out")" -eq 2 ] || fail "--json: want 2 lines"
"$PYTHON" - "$out" <<'PYEOF' || fail "--json content"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
assert lines[0]['records'] == 4 and lines[0]['ok'] is True and lines[0]['error'] == '', lines[0]
assert lines[1]['ok'] is False and 'offset 37' in lines[1]['error'], lines[1]
assert lines[1]['records'] == 2, lines[1]
PYEOF

# 6. A dataset folder: manifest counts checked, a missing shard reported.
shard=candidate/train-00000-of-00001.rec
sbytes=$(stat -c %s "$SCRATCH/ds/$shard")
"$PYTHON" "$SCRATCH/rec.py" manifest "$SCRATCH/ds" "$shard" 3 "$sbytes"
out=$("$VREC" inspect "$SCRATCH/ds" 2>&1) || fail "valid dataset rejected: $out"
echo "$out"
grep -q "1 files, 3 records" <<<"$out" || fail "dataset summary"
"$PYTHON" "$SCRATCH/rec.py" manifest "$SCRATCH/ds" "$shard" 4 "$sbytes" candidate/missing.rec 1 0
set +e
out=$("$VREC" inspect "$SCRATCH/ds" 2>&1)
rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] || fail "bad dataset: exit $rc"
grep -q "has 3 records, $SCRATCH/ds/manifest.pb says 4" <<<"$out" || fail "count mismatch not reported"
grep -q "missing.rec: missing, but listed in" <<<"$out" || fail "missing shard not reported"

# 7. Not a dataset, and bad usage.
mkdir -p "$SCRATCH/empty"
set +e
"$VREC" inspect "$SCRATCH/empty" >/dev/null 2>&1; [ $? -eq 1 ] || fail "folder without manifest"
"$VREC" inspect >/dev/null 2>&1; [ $? -eq 2 ] || fail "no PATH must be a usage error"
"$VREC" inspect --type=nope "$SCRATCH/plain.rec" >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --type"
set -e
echo "inspect_test: PASS"
