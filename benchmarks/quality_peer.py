#!/usr/bin/python3
"""PyTorch quality peer of vrec's candidate-generation model.

The same model as vrec's CandidateModel (src/model/candidate_model.h), trained
in PyTorch on the same dataset folder (from `vrec convert` or `vrec datagen`)
and scored on the same held-out examples with the same metrics
(src/models/metrics.h), so that vrec's figures can be set beside a model
nobody tuned to make vrec look good. benchmarks/quality.sh runs both.

Data. The folder is read here, without protobuf's Python module: manifest.pb
(the dataset's commit point) and the record files (TFRecord framing, every
length and payload CRC32C checked) are decoded by a small wire-format decoder
(varint, fixed32, fixed64, length-delimited, packed repeated). The corpus is
videos.rec in file order (class i = its i-th record); training examples are
the manifest's candidate_train files, test examples its candidate_test files.

Validation slice (vrec's rule, src/data/validation_split.h; validation_slice()
below): of the training examples' users, the --validation_users with the
smallest Mix64(user_id ^ Mix64(seed)) (Mix64: the SplitMix64 finaliser; all
users when there are fewer); each of them with at least 2 training examples
gives up the last one (the greatest (time, example_id)): the validation
slice, not trained on. --check compares it with the slice `vrec train` holds
out.

Model (vrec train's defaults):
  x = [ mean(history video embeddings, 64) | mean(search token embeddings,
        64) | region embedding (32) | device embedding (32) | age, gender,
        logged_in | CDF of the example age (100 quantiles of the training
        examples' ages, vrec's QuantileNormalizer::Cdf) ]
  u = ReLU tower 256-128 (the last layer's output is the user vector)
  score(v) = w_v . u + b_v, [w_v | b_v] a row of a separate output table
  loss: full softmax over the corpus up to --full_softmax_max videos, else
  sampled softmax (--negatives shared unigram^0.75 negatives, logQ-corrected,
  accidental hits removed)
  Adam (beta 0.9/0.999, eps 1e-8) lazy per row with the row's own step count,
  as vrec's parameter servers apply it; Glorot-uniform tower weights, zero
  biases, tables U(-0.05, 0.05). Rows of a list beyond the last 50 (the most
  recent kept), region or device 0 (unknown) contribute nothing.
Training stops after --epochs, or when the validation slice's recall@50 has
not improved for --patience epochs; the best epoch's weights are scored.

Metrics (vrec's): each test example's label is ranked against the whole
corpus, rank = 1 + #(competitors scoring strictly higher) + 0.5 * #(ties);
competitors are every corpus video but the label and, with
--exclude_watched, the example's watch history. A label outside the corpus
is a miss (counted, never in the top K, 0 to MAP). recall@{1,10,50,100} and
map = mean of 1/rank. Users are scored at their own example age (vrec eval's
default). Scores are computed in float64.

Output: ONE JSON line on stdout; progress on stderr. --check runs a
self-check instead (decoder against `vrec inspect`, CRC and framing errors,
the rank's tie rule, the validation rule, the example-age CDF; then, when
torch imports, a short training run) and exits non-zero on a failure. The
torch-free parts import only numpy, so they run where torch is missing.

Run with Debian's interpreter (/usr/bin/python3); benchmarks/install_peer_deps.sh
installs python3-torch.
"""

import argparse
import json
import math
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

U64 = (1 << 64) - 1
RECALL_KS = (1, 10, 50, 100)
MAX_RECORD_BYTES = 64 << 20
EXAMPLE_AGE_QUANTILES = 100
REGION_DIM = 32  # vrec's CandidateModelOptions defaults
DEVICE_DIM = 32
INIT_SCALE = 0.05  # vrec train --init_scale
ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # vrec's Adam (src/ps/optimizer.h)
UNIGRAM_POWER = 0.75


def log(msg):
    print("quality_peer: " + msg, file=sys.stderr, flush=True)


class DataError(Exception):
    """A dataset file that does not read: bad framing, CRC or wire format."""


# ------------------------------------------------------------------ CRC32C

def _crc32c_table():
    table = np.zeros(256, dtype=np.uint32)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table[b] = c
    return table


_CRC_TABLE = _crc32c_table()
_CRC_LIST = [int(x) for x in _CRC_TABLE]


def crc32c(data):
    """CRC32C (Castagnoli) of bytes, bytewise (for short inputs)."""
    c = 0xFFFFFFFF
    t = _CRC_LIST
    for b in data:
        c = (c >> 8) ^ t[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def crc32c_many(buf, starts, lengths):
    """CRC32C of the byte ranges buf[starts[i] : starts[i] + lengths[i]].

    Vectorised across ranges: the ranges, longest first, are processed in
    chunks, one byte column at a time for every range still that long.
    """
    n = len(starts)
    out = np.zeros(n, dtype=np.uint32)
    if n == 0:
        return out
    arr = np.frombuffer(buf, dtype=np.uint8)
    order = np.argsort(-lengths, kind="stable")
    chunk = 4096
    for c0 in range(0, n, chunk):
        sel = order[c0:c0 + chunk]
        lens = lengths[sel]
        st = starts[sel]
        crc = np.full(len(sel), 0xFFFFFFFF, dtype=np.uint32)
        maxlen = int(lens[0]) if len(lens) else 0
        # active[k] = rows with length > k: a prefix, since lens is descending.
        active = np.searchsorted(-lens, -np.arange(maxlen), side="left")
        for k in range(maxlen):
            m = int(active[k])
            col = arr[st[:m] + k]
            c = crc[:m]
            crc[:m] = _CRC_TABLE[(c ^ col) & 0xFF] ^ (c >> 8)
        out[sel] = crc ^ np.uint32(0xFFFFFFFF)
    return out


def unmask_crc(masked):
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------- record framing

def read_records(path):
    """(file bytes, payload offsets, payload lengths) of a record file.

    TFRecord framing (src/data/record_writer.h): u64 length LE, u32 masked
    CRC32C of the length bytes, the payload, u32 masked CRC32C of the payload.
    Raises DataError naming the file, the record and its offset for a bad
    length CRC, a length past the end of the file, or a bad payload CRC.
    """
    with open(path, "rb") as f:
        buf = f.read()
    size = len(buf)
    offsets, lengths = [], []
    pos = 0
    record = 0
    while pos < size:
        if size - pos < 12:
            raise DataError("%s: record %d at offset %d: truncated: %d bytes left, a header "
                            "needs 12" % (path, record, pos, size - pos))
        (length,) = struct.unpack_from("<Q", buf, pos)
        (stored,) = struct.unpack_from("<I", buf, pos + 8)
        if crc32c(buf[pos:pos + 8]) != unmask_crc(stored):
            raise DataError("%s: record %d at offset %d: length CRC mismatch" %
                            (path, record, pos))
        if length > MAX_RECORD_BYTES:
            raise DataError("%s: record %d at offset %d: length %d exceeds %d" %
                            (path, record, pos, length, MAX_RECORD_BYTES))
        if pos + 16 + length > size:
            raise DataError("%s: record %d at offset %d: truncated: length %d needs %d bytes, "
                            "only %d left" % (path, record, pos, length, 16 + length,
                                              size - pos))
        offsets.append(pos + 12)
        lengths.append(length)
        pos += 16 + length
        record += 1
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(offsets):
        arr = np.frombuffer(buf, dtype=np.uint8)
        foot = offsets + lengths
        stored = (arr[foot].astype(np.uint32) | (arr[foot + 1].astype(np.uint32) << 8) |
                  (arr[foot + 2].astype(np.uint32) << 16) | (arr[foot + 3].astype(np.uint32) << 24))
        bad = np.nonzero(crc32c_many(buf, offsets, lengths) != unmask_crc(stored))[0]
        if len(bad):
            i = int(bad[0])
            raise DataError("%s: record %d at offset %d: payload CRC mismatch (%d bad records)" %
                            (path, i, int(offsets[i]) - 12, len(bad)))
    return buf, offsets, lengths


# ------------------------------------------------------ protobuf wire format

def read_varint(buf, pos, end):
    """(value, next position) of the varint at buf[pos]; DataError if malformed."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise DataError("varint runs past the end of its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if result > U64:
                raise DataError("varint longer than 64 bits")
            return result, pos
        shift += 7
        if shift >= 70:
            raise DataError("varint longer than 10 bytes")


def skip_field(buf, pos, end, wire):
    if wire == 0:
        return read_varint(buf, pos, end)[1]
    if wire == 1:
        pos += 8
    elif wire == 5:
        pos += 4
    elif wire == 2:
        n, pos = read_varint(buf, pos, end)
        pos += n
    else:
        raise DataError("unsupported wire type %d" % wire)
    if pos > end:
        raise DataError("field runs past the end of its message")
    return pos


# A schema maps field number -> (name, kind, repeated). Kinds: uint64, uint32,
# bool, float, double, string, or a nested schema (a dict).
SHARD_INFO = {1: ("path", "string", False), 2: ("records", "uint64", False),
              3: ("bytes", "uint64", False)}
DATASET_MANIFEST = {
    1: ("format_version", "uint32", False), 2: ("source", "string", False),
    3: ("seed", "uint64", False), 4: ("t_max", "double", False),
    5: ("candidate_train", SHARD_INFO, True), 6: ("candidate_test", SHARD_INFO, True),
    7: ("ranking_train", SHARD_INFO, True), 8: ("ranking_test", SHARD_INFO, True),
    9: ("videos", "string", False), 10: ("num_users", "uint64", False),
    11: ("num_videos", "uint64", False), 12: ("num_tokens", "uint64", False),
    13: ("truth", "string", False), 14: ("train_streamed", "bool", False),
    15: ("candidate_train_examples", "uint64", False),
    16: ("ranking_train_examples", "uint64", False),
    17: ("ranking_train_sample", SHARD_INFO, True),
}
CANDIDATE_EXAMPLE = {
    1: ("example_id", "uint64", False), 2: ("user_id", "uint64", False),
    3: ("watch_history", "uint64", True), 4: ("search_tokens", "uint64", True),
    5: ("region", "uint32", False), 6: ("device", "uint32", False),
    7: ("age", "float", False), 8: ("gender", "float", False),
    9: ("logged_in", "float", False), 10: ("example_age", "float", False),
    11: ("time", "double", False), 12: ("label_video", "uint64", False),
}
VIDEO_INFO = {
    1: ("video_id", "uint64", False), 2: ("topic", "uint32", False),
    3: ("upload_time", "double", False), 4: ("appeal", "float", False),
    5: ("series_id", "uint64", False), 6: ("episode", "uint32", False),
    7: ("clickbait", "bool", False), 8: ("duration", "float", False),
    9: ("train_label_count", "uint64", False),
}
_VARINT_KINDS = ("uint64", "uint32", "bool")


def _scalar_from_varint(kind, v):
    if kind == "uint32":
        return v & 0xFFFFFFFF
    if kind == "bool":
        return v != 0
    return v


def decode_message(buf, pos, end, schema):
    """Decodes buf[pos:end] as a message of `schema` into a dict.

    Only fields present on the wire appear (proto3 has no presence: an absent
    field is its zero value); repeated fields are lists (packed or not);
    unknown fields are skipped. float fields come back as np.float32.
    """
    out = {}
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        spec = schema.get(field)
        if spec is None:
            pos = skip_field(buf, pos, end, wire)
            continue
        name, kind, repeated = spec
        values = []
        if kind in _VARINT_KINDS:
            if wire == 0:
                v, pos = read_varint(buf, pos, end)
                values.append(_scalar_from_varint(kind, v))
            elif wire == 2 and repeated:
                n, pos = read_varint(buf, pos, end)
                stop = pos + n
                if stop > end:
                    raise DataError("field %s runs past the end of its message" % name)
                while pos < stop:
                    v, pos = read_varint(buf, pos, stop)
                    values.append(_scalar_from_varint(kind, v))
            else:
                raise DataError("field %s (%s) has wire type %d" % (name, kind, wire))
        elif kind in ("float", "double"):
            width, fmt, want = (4, "<f", 5) if kind == "float" else (8, "<d", 1)
            if wire == want:
                if pos + width > end:
                    raise DataError("field %s runs past the end of its message" % name)
                values.append(struct.unpack_from(fmt, buf, pos)[0])
                pos += width
            elif wire == 2 and repeated:
                n, pos = read_varint(buf, pos, end)
                if pos + n > end or n % width:
                    raise DataError("packed field %s has %d bytes" % (name, n))
                values.extend(struct.unpack_from("<%d%s" % (n // width, fmt[1]), buf, pos))
                pos += n
            else:
                raise DataError("field %s (%s) has wire type %d" % (name, kind, wire))
            if kind == "float":
                values = [np.float32(v) for v in values]
        else:  # string or nested message
            if wire != 2:
                raise DataError("field %s has wire type %d, expected 2" % (name, wire))
            n, pos = read_varint(buf, pos, end)
            if pos + n > end:
                raise DataError("field %s runs past the end of its message" % name)
            if kind == "string":
                values.append(bytes(buf[pos:pos + n]).decode("utf-8"))
            else:
                values.append(decode_message(buf, pos, pos + n, kind))
            pos += n
        if repeated:
            out.setdefault(name, []).extend(values)
        else:
            out[name] = values[-1]  # the last one wins, as protobuf parses
    if pos != end:
        raise DataError("message overruns its length")
    return out


def decode_varints(buf, starts, ends):
    """Decodes the varints in the byte ranges [starts[i], ends[i]) of buf.

    Every range must hold whole varints. Returns (values as uint64, number of
    values per range). Vectorised: the ranges' bytes are concatenated, a byte
    below 0x80 ends a varint, and each varint's 7-bit groups are summed.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lens = np.asarray(ends, dtype=np.int64) - starts
    counts = np.zeros(len(starts), dtype=np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint64), counts
    arr = np.frombuffer(buf, dtype=np.uint8)
    nonempty = lens > 0
    s, l = starts[nonempty], lens[nonempty]
    before = np.cumsum(l) - l  # where each range starts in the concatenation
    idx = np.arange(total, dtype=np.int64) + np.repeat(s - before, l)
    b = arr[idx]
    last = b < 0x80
    range_last = before + l - 1
    if not last[range_last].all():
        raise DataError("a packed or varint field ends inside a varint")
    ends_at = np.nonzero(last)[0]
    begins_at = np.concatenate([[0], ends_at[:-1] + 1])
    pos = np.arange(total, dtype=np.int64) - np.repeat(begins_at, ends_at - begins_at + 1)
    if pos.max() > 9 or (b[pos == 9] > 1).any():
        raise DataError("varint longer than 64 bits")
    groups = (b & 0x7F).astype(np.uint64) << (7 * pos).astype(np.uint64)
    values = np.add.reduceat(groups, begins_at)  # disjoint bits: the sum is the OR
    counts[nonempty] = np.add.reduceat(last.astype(np.int64), before)
    return values, counts


# ------------------------------------------------------------------ dataset

class Examples:
    """Candidate examples as columns (row i = the i-th example read).

    hist_ids / tok_ids are flat uint64 ids with offsets (n + 1): example i's
    list is ids[off[i]:off[i + 1]], oldest first, as stored.
    """

    FIELDS = ("example_id", "user_id", "region", "device", "age", "gender", "logged_in",
              "example_age", "time", "label")

    def __init__(self, cols):
        for k, v in cols.items():
            setattr(self, k, v)
        self.n = len(self.example_id)

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        cols = {k: getattr(self, k)[rows] for k in self.FIELDS}
        for name in ("hist", "tok"):
            ids, off = getattr(self, name + "_ids"), getattr(self, name + "_off")
            flat, new_off = gather_lists(ids, off, rows)
            cols[name + "_ids"], cols[name + "_off"] = flat, new_off
        return Examples(cols)

    def history(self, i):
        return self.hist_ids[self.hist_off[i]:self.hist_off[i + 1]]


def gather_lists(ids, off, rows, keep_last=None):
    """The lists of `rows` (CSR ids/off), each cut to its last keep_last ids."""
    begin, end = off[rows], off[rows + 1]
    if keep_last is not None:
        begin = np.maximum(begin, end - keep_last)
    lens = end - begin
    new_off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    idx = np.arange(int(new_off[-1]), dtype=np.int64) + np.repeat(begin - new_off[:-1], lens)
    return ids[idx], new_off


def decode_candidate_file(path):
    """Every CandidateExample of a record file, as column lists."""
    buf, offsets, lengths = read_records(path)
    n = len(offsets)
    ints = {k: [0] * n for k in ("example_id", "user_id", "region", "device", "label")}
    floats = {k: [0.0] * n for k in ("age", "gender", "logged_in", "example_age", "time")}
    float_field = {7: "age", 8: "gender", 9: "logged_in", 10: "example_age"}
    int_field = {1: "example_id", 2: "user_id", 5: "region", 6: "device", 12: "label"}
    ranges = {3: ([], [], []), 4: ([], [], [])}  # field -> (record, start, end)
    unpack_f = struct.Struct("<f").unpack_from
    unpack_d = struct.Struct("<d").unpack_from
    for r in range(n):
        pos = int(offsets[r])
        end = pos + int(lengths[r])
        try:
            while pos < end:
                key = buf[pos]
                if key < 0x80:
                    pos += 1
                else:
                    key, pos = read_varint(buf, pos, end)
                field, wire = key >> 3, key & 7
                if wire == 0:
                    start = pos
                    v, pos = read_varint(buf, pos, end)
                    if field in int_field:
                        ints[int_field[field]][r] = v & 0xFFFFFFFF if field in (5, 6) else v
                    elif field in ranges:  # an unpacked repeated id: its bytes are a varint
                        rr = ranges[field]
                        rr[0].append(r)
                        rr[1].append(start)
                        rr[2].append(pos)
                    elif field in float_field or field == 11:
                        raise DataError("field %d has wire type 0" % field)
                elif wire == 2:
                    length, pos = read_varint(buf, pos, end)
                    if pos + length > end:
                        raise DataError("field %d runs past the end of the record" % field)
                    if field in ranges:
                        rr = ranges[field]
                        rr[0].append(r)
                        rr[1].append(pos)
                        rr[2].append(pos + length)
                    elif field in int_field or field in float_field or field == 11:
                        raise DataError("field %d has wire type 2" % field)
                    pos += length
                elif wire == 5:
                    if pos + 4 > end:
                        raise DataError("field %d runs past the end of the record" % field)
                    if field in float_field:
                        floats[float_field[field]][r] = unpack_f(buf, pos)[0]
                    elif field in int_field or field in ranges or field == 11:
                        raise DataError("field %d has wire type 5" % field)
                    pos += 4
                elif wire == 1:
                    if pos + 8 > end:
                        raise DataError("field %d runs past the end of the record" % field)
                    if field == 11:
                        floats["time"][r] = unpack_d(buf, pos)[0]
                    elif field in int_field or field in ranges or field in float_field:
                        raise DataError("field %d has wire type 1" % field)
                    pos += 8
                else:
                    raise DataError("unsupported wire type %d (field %d)" % (wire, field))
            if pos != end:
                raise DataError("the last field overruns the record")
        except DataError as e:
            raise DataError("%s: record %d at offset %d: does not parse as a CandidateExample: %s"
                            % (path, r, int(offsets[r]) - 12, e)) from None
    cols = {
        "example_id": np.array(ints["example_id"], dtype=np.uint64),
        "user_id": np.array(ints["user_id"], dtype=np.uint64),
        "region": np.array(ints["region"], dtype=np.int64),
        "device": np.array(ints["device"], dtype=np.int64),
        "label": np.array(ints["label"], dtype=np.uint64),
        "time": np.array(floats["time"], dtype=np.float64),
    }
    for k in ("age", "gender", "logged_in", "example_age"):
        cols[k] = np.array(floats[k], dtype=np.float32)
    for field, name in ((3, "hist"), (4, "tok")):
        rec, st, en = ranges[field]
        try:
            values, counts = decode_varints(buf, st, en)
        except DataError as e:
            raise DataError("%s: %s" % (path, e)) from None
        per_record = np.bincount(np.asarray(rec, dtype=np.int64), weights=counts,
                                 minlength=n).astype(np.int64)
        cols[name + "_ids"] = values
        cols[name + "_off"] = np.concatenate([[0], np.cumsum(per_record)]).astype(np.int64)
    return cols


def concat_examples(parts):
    if not parts:
        parts = [decode_empty()]
    cols = {}
    for k in Examples.FIELDS:
        cols[k] = np.concatenate([p[k] for p in parts])
    for name in ("hist", "tok"):
        ids = [p[name + "_ids"] for p in parts]
        offs, base = [np.zeros(1, dtype=np.int64)], 0
        for p in parts:
            offs.append(p[name + "_off"][1:] + base)
            base += int(p[name + "_off"][-1])
        cols[name + "_ids"] = np.concatenate(ids).astype(np.uint64)
        cols[name + "_off"] = np.concatenate(offs)
    return Examples(cols)


def decode_empty():
    cols = {k: np.zeros(0) for k in Examples.FIELDS}
    for name in ("hist", "tok"):
        cols[name + "_ids"] = np.zeros(0, dtype=np.uint64)
        cols[name + "_off"] = np.zeros(1, dtype=np.int64)
    return cols


def read_manifest(data_dir):
    path = os.path.join(data_dir, "manifest.pb")
    if not os.path.exists(path):
        raise DataError("no %s: %s is not a dataset, or an incomplete one" % (path, data_dir))
    with open(path, "rb") as f:
        buf = f.read()
    try:
        m = decode_message(buf, 0, len(buf), DATASET_MANIFEST)
    except DataError as e:
        raise DataError("%s does not parse: %s" % (path, e)) from None
    if m.get("format_version", 0) != 1:
        raise DataError("%s has format_version %d; this peer reads 1" %
                        (path, m.get("format_version", 0)))
    return m


def read_corpus(data_dir, manifest):
    """The corpus's video ids, in videos.rec order (class i = record i)."""
    if not manifest.get("videos"):
        raise DataError("dataset %s lists no videos file" % data_dir)
    path = os.path.join(data_dir, manifest["videos"])
    buf, offsets, lengths = read_records(path)
    ids = []
    for r in range(len(offsets)):
        start = int(offsets[r])
        try:
            ids.append(decode_message(buf, start, start + int(lengths[r]), VIDEO_INFO)
                       .get("video_id", 0))
        except DataError as e:
            raise DataError("%s: record %d at offset %d: does not parse as a VideoInfo: %s" %
                            (path, r, start - 12, e)) from None
    ids = np.array(ids, dtype=np.uint64)
    if len(ids) == 0:
        raise DataError("%s: no videos" % path)
    if len(np.unique(ids)) != len(ids):
        raise DataError("%s: a video id appears twice" % path)
    return ids


def read_examples(data_dir, shards):
    return concat_examples([decode_candidate_file(os.path.join(data_dir, s["path"]))
                            for s in shards])


def index_of(sorted_ids, order, ids):
    """Positions (in the unsorted table) of `ids`, -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    at = np.searchsorted(sorted_ids, ids)
    at_c = np.minimum(at, len(sorted_ids) - 1)
    found = sorted_ids[at_c] == ids
    return np.where(found, order[at_c], -1).astype(np.int64)


class Corpus:
    def __init__(self, ids):
        self.ids = ids
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def __len__(self):
        return len(self.ids)

    def classes(self, ids):
        return index_of(self.sorted, self.order, ids)


# -------------------------------------------------------- validation slice

def mix64(x):
    """The SplitMix64 finaliser (mod 2^64)."""
    x = (x + 0x9E3779B97F4A7C15) & U64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & U64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & U64
    return x ^ (x >> 31)


def validation_slice(user_ids, times, example_ids, max_users, seed):
    """Positions of the validation examples among the training examples.

    vrec's rule (src/data/validation_split.h): users are ranked by
    mix64(user_id ^ mix64(seed)) and the max_users with the smallest keys are
    considered (all when there are fewer); of those, each user with at least
    2 training examples gives up their last one, the greatest (time,
    example_id) (on a full tie the first read). The cap comes before the
    2-example filter, so the slice may hold fewer than max_users examples
    (vrec finds it in one pass with memory for max_users users). Returns the
    positions, ascending.
    """
    count = {}
    last = {}
    for i, (u, t, e) in enumerate(zip(user_ids, times, example_ids)):
        count[u] = count.get(u, 0) + 1
        j = last.get(u)
        if j is None or (t, e) > (times[j], example_ids[j]):
            last[u] = i
    users = list(count)
    if len(users) > max_users:
        salt = mix64(seed & U64)
        users.sort(key=lambda u: mix64(u ^ salt))
        users = users[:max_users]
    return sorted(last[u] for u in users if count[u] >= 2)


# ------------------------------------------------------------------ metrics

def ranks(users, rows, labels, exclude_ids=None, exclude_off=None, user_block=256):
    """vrec's exact ranks (src/models/metrics.h) of labels[j] for users[j].

    users: b x d; rows: n x (d + 1), row i = [w | b] of class i; labels:
    class indices, -1 for a label outside the corpus (rank inf). With
    exclude_ids/exclude_off (CSR of class indices, -1 = not in the corpus),
    those items are not competitors (the label itself never is). rank = 1 +
    #(scoring higher) + 0.5 * #(scoring the same). Rows that are equal are
    scored once and counted with their multiplicity, so they tie exactly.
    """
    users = np.asarray(users, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.float64) + 0.0  # -0 -> +0
    labels = np.asarray(labels, dtype=np.int64)
    b = len(labels)
    out = np.full(b, np.inf)
    distinct, row_of, mult = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    row_of = row_of.reshape(-1)
    mult = mult.astype(np.float64)
    d = rows.shape[1] - 1
    w, bias = distinct[:, :d], distinct[:, d]
    scored = np.nonzero(labels >= 0)[0]
    for u0 in range(0, len(scored), user_block):
        sel = scored[u0:u0 + user_block]
        s = users[sel] @ w.T + bias  # ub x distinct
        lr = row_of[labels[sel]]
        t = s[np.arange(len(sel)), lr]
        above = (s > t[:, None]) @ mult
        tied = (s == t[:, None]) @ mult - 1.0  # not the label itself
        if exclude_ids is not None:
            for k, j in enumerate(sel):
                items = exclude_ids[exclude_off[j]:exclude_off[j + 1]]
                items = np.unique(items[(items >= 0) & (items != labels[j])])
                if len(items):
                    v = s[k, row_of[items]]
                    above[k] -= np.count_nonzero(v > t[k])
                    tied[k] -= np.count_nonzero(v == t[k])
        out[sel] = 1.0 + above + 0.5 * tied
    return out


def metrics(rank):
    rank = np.asarray(rank, dtype=np.float64)
    n = len(rank)
    out = {}
    for k in RECALL_KS:
        out["recall@%d" % k] = float(np.count_nonzero(rank <= k) / n) if n else 0.0
    out["map"] = float(np.sum(1.0 / rank) / n) if n else 0.0  # 1 / inf = 0: a miss
    out["examples"] = n
    out["missing_labels"] = int(np.count_nonzero(np.isinf(rank)))
    return out


# -------------------------------------------------------------- example age

def fit_quantiles(values, num_quantiles=EXAMPLE_AGE_QUANTILES):
    """QuantileNormalizer::Builder::Build over all values (no reservoir)."""
    s = np.sort(np.asarray(values, dtype=np.float64))
    n = len(s)
    if n == 0:
        raise DataError("no training examples to fit the example age's quantiles on")
    h = (n - 1) * np.arange(num_quantiles + 1, dtype=np.float64) / num_quantiles
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    q = s[lo] + (h - lo) * (s[hi] - s[lo])
    return np.maximum.accumulate(q)


def quantile_cdf(q, x):
    """QuantileNormalizer::Cdf: the interpolated CDF in [0, 1)."""
    x = np.asarray(x, dtype=np.float64)
    top = np.nextafter(1.0, 0.0)
    nq = len(q) - 1
    j = np.clip(np.searchsorted(q, x, side="right") - 1, 0, nq - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (j + (x - q[j]) / (q[j + 1] - q[j])) / nq
    c = np.minimum(c, top)
    c = np.where(x >= q[-1], top, c)
    return np.where(x >= q[0], c, 0.0)  # also NaN -> 0


# ----------------------------------------------------------------- the data

class Dataset:
    """A dataset folder read and indexed for training and evaluation."""

    def __init__(self, data_dir, validation_users, seed, max_history, max_tokens):
        t0 = time.perf_counter()
        self.dir = data_dir
        self.manifest = read_manifest(data_dir)
        if self.manifest.get("train_streamed"):
            raise DataError("dataset %s was made with --write_train=false: its training examples "
                            "are not on disk (vrec train --stream); the peer reads files" %
                            data_dir)
        if not self.manifest.get("candidate_train"):
            raise DataError("dataset %s has no candidate training files" % data_dir)
        if not self.manifest.get("candidate_test"):
            raise DataError("dataset %s has no candidate test files" % data_dir)
        self.corpus = Corpus(read_corpus(data_dir, self.manifest))
        self.train_all = read_examples(data_dir, self.manifest["candidate_train"])
        self.test = read_examples(data_dir, self.manifest["candidate_test"])
        log("read %s: %d videos, %d training and %d test examples in %.1f s" %
            (data_dir, len(self.corpus), self.train_all.n, self.test.n,
             time.perf_counter() - t0))
        t0 = time.perf_counter()
        tr = self.train_all
        val = validation_slice([int(u) for u in tr.user_id], tr.time.tolist(),
                               [int(e) for e in tr.example_id], validation_users, seed)
        is_val = np.zeros(tr.n, dtype=bool)
        is_val[val] = True
        self.validation = tr.take(np.nonzero(is_val)[0])
        self.train = tr.take(np.nonzero(~is_val)[0])
        # Fitted over every training example (the validation slice too), as
        # vrec fits them in its label-counting pass over the training files.
        self.age_quantiles = fit_quantiles(tr.example_age)
        # Label counts over the training files: the sampler's background.
        labels = self.corpus.classes(tr.label)
        self.label_counts = np.bincount(labels[labels >= 0], minlength=len(self.corpus))
        # Input vocabularies: every id any example mentions (ids seen only in
        # held-out examples keep their initial rows, as in vrec's tables).
        everything = (self.train_all, self.test)
        self.video_vocab = np.unique(np.concatenate(
            [self.corpus.ids] + [e.hist_ids for e in everything]))
        self.token_vocab = np.unique(np.concatenate([e.tok_ids for e in everything]))
        self.region_vocab = np.unique(np.concatenate([e.region for e in everything]))
        self.device_vocab = np.unique(np.concatenate([e.device for e in everything]))
        self.max_history, self.max_tokens = max_history, max_tokens
        for e in (self.train, self.validation, self.test):
            self.index(e)
        log("validation slice: %d users' last examples (of %d training examples); %d left to "
            "train on (%d with a label outside the corpus, skipped); %.1f s" %
            (self.validation.n, tr.n, self.train.n, int(np.count_nonzero(self.train.cls < 0)),
             time.perf_counter() - t0))

    def index(self, e):
        """Adds the model's inputs to examples e: class and row indices."""
        e.cls = self.corpus.classes(e.label)
        h, e.hist_in_off = gather_lists(e.hist_ids, e.hist_off, np.arange(e.n), self.max_history)
        e.hist_in = np.searchsorted(self.video_vocab, h).astype(np.int64)
        t, e.tok_in_off = gather_lists(e.tok_ids, e.tok_off, np.arange(e.n), self.max_tokens)
        e.tok_in = np.searchsorted(self.token_vocab, t).astype(np.int64)
        # Region and device: a list of 0 (unknown) or 1 rows.
        for name, vocab in (("region", self.region_vocab), ("device", self.device_vocab)):
            v = getattr(e, name)
            known = v != 0
            setattr(e, name + "_in", np.searchsorted(vocab, v[known]).astype(np.int64))
            setattr(e, name + "_in_off",
                    np.concatenate([[0], np.cumsum(known)]).astype(np.int64))
        e.reals = np.stack([e.age, e.gender, e.logged_in,
                            quantile_cdf(self.age_quantiles, e.example_age)],
                           axis=1).astype(np.float32)
        # Exclusions (the full stored history, as vrec eval): class indices.
        e.watched = self.corpus.classes(e.hist_ids)


# -------------------------------------------------------------------- torch

class _Peer:
    """Everything that needs torch (imported late, see main)."""

    def __init__(self, torch, args):
        self.torch = torch
        self.args = args

    def batch(self, e, rows):
        torch = self.torch
        out = {}
        for name in ("hist", "tok", "region", "device"):
            ids, off = gather_lists(getattr(e, name + "_in"), getattr(e, name + "_in_off"), rows)
            out[name] = (torch.from_numpy(ids), torch.from_numpy(off[:-1].copy()))
        out["reals"] = torch.from_numpy(e.reals[rows])
        out["cls"] = torch.from_numpy(e.cls[rows])
        return out

    def make_model(self, data, seed):
        torch, nn = self.torch, self.torch.nn
        args = self.args
        gen = torch.Generator().manual_seed(seed)

        def table(rows, cols):
            # At least one row: an empty vocabulary (no search tokens in the
            # data) still gets a table, never looked up.
            return nn.Parameter(torch.empty(max(rows, 1), cols).uniform_(
                -INIT_SCALE, INIT_SCALE, generator=gen))

        class CandidateModel(nn.Module):
            def __init__(self):
                super().__init__()
                dim = args.embedding_dim
                self.video = table(len(data.video_vocab), dim)
                self.token = table(len(data.token_vocab), dim)
                self.region = table(len(data.region_vocab), REGION_DIM)
                self.device = table(len(data.device_vocab), DEVICE_DIM)
                width = 2 * dim + REGION_DIM + DEVICE_DIM + 4
                self.tower = nn.ModuleList()
                for w in args.tower:
                    layer = nn.Linear(width, w)
                    with torch.no_grad():  # Glorot-uniform weights, zero biases, as vrec
                        bound = math.sqrt(6.0 / (width + w))
                        layer.weight.uniform_(-bound, bound, generator=gen)
                        layer.bias.zero_()
                    self.tower.append(layer)
                    width = w
                self.output_dim = width
                self.output = table(len(data.corpus), width + 1)  # [w | b]

            def user_vectors(self, b):
                bag = torch.nn.functional.embedding_bag
                x = torch.cat([
                    bag(b["hist"][0], self.video, b["hist"][1], mode="mean", sparse=True),
                    bag(b["tok"][0], self.token, b["tok"][1], mode="mean", sparse=True),
                    bag(b["region"][0], self.region, b["region"][1], mode="sum", sparse=True),
                    bag(b["device"][0], self.device, b["device"][1], mode="sum", sparse=True),
                    b["reals"],
                ], dim=1)
                for layer in self.tower:
                    x = torch.relu(layer(x))
                return x

        return CandidateModel()

    def loss(self, model, b, sampler, gen):
        torch, F = self.torch, self.torch.nn.functional
        u = model.user_vectors(b)
        labels = b["cls"]
        d = model.output_dim
        if sampler is None:  # full softmax
            out = model.output
            logits = torch.addmm(out[:, d], u, out[:, :d].t())
            return F.cross_entropy(logits, labels)
        negatives = sampler.draw(self.args.negatives, gen)
        n = labels.shape[0]
        rows = F.embedding(torch.cat([labels, negatives]), model.output, sparse=True)
        lq = sampler.log_q
        true_logit = (u * rows[:n, :d]).sum(1) + rows[:n, d] - lq[labels]
        neg = torch.addmm(rows[n:, d] - lq[negatives], u, rows[n:, :d].t())
        neg = neg.masked_fill(labels.unsqueeze(1) == negatives.unsqueeze(0), float("-inf"))
        logits = torch.cat([true_logit.unsqueeze(1), neg], dim=1)
        return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long))

    def user_vectors(self, model, e):
        torch = self.torch
        out = np.zeros((e.n, model.output_dim), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, e.n, 1024):
                rows = np.arange(s, min(e.n, s + 1024))
                out[rows] = model.user_vectors(self.batch(e, rows)).numpy()
        return out

    def evaluate(self, model, e):
        users = self.user_vectors(model, e)
        rows = model.output.detach().numpy()
        if self.args.exclude_watched:
            r = ranks(users, rows, e.cls, e.watched, e.hist_off)
        else:
            r = ranks(users, rows, e.cls)
        return metrics(r)

    def train(self, data):
        torch = self.torch
        args = self.args
        torch.manual_seed(args.seed)
        gen = torch.Generator().manual_seed(args.seed)
        model = self.make_model(data, args.seed)
        opt = RowAdam(torch, model, args.learning_rate)
        sampler = None
        if len(data.corpus) > args.full_softmax_max:
            sampler = UnigramSampler(torch, data.label_counts, UNIGRAM_POWER)
        trainable = np.nonzero(data.train.cls >= 0)[0]
        if len(trainable) == 0:
            raise DataError("no training example has a label in the corpus")
        log("model: input width %d, tower %s, %s softmax over %d videos, %d parameters" %
            (2 * args.embedding_dim + REGION_DIM + DEVICE_DIM + 4, args.tower,
             "full" if sampler is None else "sampled (%d negatives)" % args.negatives,
             len(data.corpus), sum(p.numel() for p in model.parameters())))
        history, best, best_epoch, best_state = [], -1.0, 0, None
        epochs = 0
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            perm = trainable[torch.randperm(len(trainable), generator=gen).numpy()]
            total, steps = 0.0, 0
            for s in range(0, len(perm), args.batch_size):
                b = self.batch(data.train, perm[s:s + args.batch_size])
                loss = self.loss(model, b, sampler, gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss)
                steps += 1
            epochs = epoch
            if data.validation.n:
                m = self.evaluate(model, data.validation)
                score = m["recall@50"]
            else:
                score = -float(total / steps)  # no validation users: the training loss
            history.append(score)
            improved = score > best
            if improved:
                best, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            log("epoch %d: loss %.4f, validation recall@50 %.4f%s (%.1f s)" %
                (epoch, total / steps, score, " (best)" if improved else "",
                 time.perf_counter() - t0))
            if epoch - best_epoch >= args.patience:
                log("no improvement for %d epochs: stopping, keeping epoch %d" %
                    (args.patience, best_epoch))
                break
        model.load_state_dict(best_state)
        return model, epochs, best_epoch, history


class RowAdam:
    """vrec's server-side Adam (src/ps/optimizer.h): lazy per row.

    A table row's step count t and moments advance only when the row has a
    gradient (a sparse gradient's rows; every row for a dense one), and its
    bias correction uses its own t. Tower weights are updated whole every
    step, as vrec's dense blocks are (one t).
    """

    def __init__(self, torch, model, lr):
        self.torch = torch
        self.lr = lr
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.tables = {id(p) for p in (model.video, model.token, model.region, model.device,
                                       model.output)}
        self.state = {}
        for p in self.params:
            rows = p.shape[0] if id(p) in self.tables else 1
            self.state[id(p)] = (torch.zeros_like(p), torch.zeros_like(p),
                                 torch.zeros(rows, dtype=torch.float64))

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        torch = self.torch
        with torch.no_grad():
            for p in self.params:
                g = p.grad
                if g is None:
                    continue
                m, v, t = self.state[id(p)]
                if id(p) not in self.tables:
                    t += 1
                    self._apply(p, m, v, g, float(t[0]))
                    continue
                if g.is_sparse:
                    g = g.coalesce()
                    if g._nnz() == 0:
                        continue
                    idx, g = g.indices()[0], g.values()
                else:
                    idx = None
                tt = t if idx is None else t[idx]
                tt = tt + 1
                if idx is None:
                    t.copy_(tt)
                else:
                    t[idx] = tt
                c1 = 1.0 - ADAM_BETA1 ** tt
                c2 = 1.0 - ADAM_BETA2 ** tt
                step = (self.lr * c2.sqrt() / c1).float().unsqueeze(1)
                eps = (ADAM_EPS * c2.sqrt()).float().unsqueeze(1)
                if idx is None:
                    m.mul_(ADAM_BETA1).add_(g, alpha=1 - ADAM_BETA1)
                    v.mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
                    p.sub_(step * m / (v.sqrt() + eps))
                else:
                    mi = m[idx].mul_(ADAM_BETA1).add_(g, alpha=1 - ADAM_BETA1)
                    vi = v[idx].mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
                    m[idx] = mi
                    v[idx] = vi
                    p[idx] = p[idx] - step * mi / (vi.sqrt() + eps)

    def _apply(self, p, m, v, g, t):
        c1 = 1.0 - ADAM_BETA1 ** t
        c2 = 1.0 - ADAM_BETA2 ** t
        m.mul_(ADAM_BETA1).add_(g, alpha=1 - ADAM_BETA1)
        v.mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
        p.sub_(self.lr * math.sqrt(c2) / c1 * m / (v.sqrt() + ADAM_EPS * math.sqrt(c2)))


class UnigramSampler:
    """Negatives with Q(v) ~ count(v)^power, drawn with replacement."""

    def __init__(self, torch, counts, power):
        self.torch = torch
        w = torch.from_numpy(np.asarray(counts, dtype=np.float64)).pow(power)
        total = w.sum()
        with np.errstate(divide="ignore"):
            self.log_q = (w.log() - total.log()).float()
        self.cdf = torch.cumsum(w / total, 0)

    def draw(self, k, gen):
        torch = self.torch
        r = torch.rand(k, dtype=torch.float64, generator=gen)
        return torch.searchsorted(self.cdf, r).clamp_(max=len(self.cdf) - 1)


_TORCH = []


def import_torch(threads):
    """torch, set up once (its thread pools can be sized only once)."""
    if _TORCH:
        return _TORCH[0]
    # The OpenMP and OpenBLAS pools are sized when the libraries load; OpenMP's
    # default spin-waiting starves OpenBLAS's threads (torch_candidate_peer.py).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # noqa: E402 (see above)

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)
    _TORCH.append(torch)
    return torch


def run(args):
    t_start = time.perf_counter()
    data = Dataset(args.data, args.validation_users, args.seed, args.max_history,
                   args.max_history)
    torch = import_torch(args.threads)
    peer = _Peer(torch, args)
    model, epochs, best_epoch, history = peer.train(data)
    t0 = time.perf_counter()
    m = peer.evaluate(model, data.test)
    log("test: recall@50 %.4f, map %.4f over %d examples (%.1f s)" %
        (m["recall@50"], m["map"], m["examples"], time.perf_counter() - t0))
    result = {"model": "torch_peer", "data": args.data, "seed": args.seed,
              "epochs_trained": epochs, "best_epoch": best_epoch, "validation": history}
    result.update(m)
    result.update({
        "exclude_watched": args.exclude_watched,
        "example_age": "own",
        "validation_examples": data.validation.n,
        "train_examples": data.train.n,
        "corpus": len(data.corpus),
        "softmax": "full" if len(data.corpus) <= args.full_softmax_max else "sampled",
        "learning_rate": args.learning_rate,
        "seconds": round(time.perf_counter() - t_start, 2),
        "threads": args.threads,
        "torch": torch.__version__,
        "commit": _commit(),
    })
    print(json.dumps(result), flush=True)
    return 0


# -------------------------------------------------------------------- check

class Checker:
    def __init__(self):
        self.failures = []

    def expect(self, ok, what):
        print(("ok    " if ok else "FAIL  ") + what, file=sys.stderr, flush=True)
        if not ok:
            self.failures.append(what)


_TEXT_FIELD = re.compile(r'(\w+): ("(?:[^"\\]|\\.)*"|\S+)')


def _inspect_records(vrec, path, show):
    """{file: [record dict as `vrec inspect` prints it]} and {file: count}."""
    js = subprocess.run([vrec, "inspect", "--json", "--show=0", path], capture_output=True,
                        text=True, check=False)
    counts = {}
    for line in js.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            counts[os.path.normpath(d["file"])] = (d["records"], d["ok"])
    text = subprocess.run([vrec, "inspect", "--show=%d" % show, path], capture_output=True,
                          text=True, check=False)
    shown, current = {}, None
    for line in text.stdout.splitlines():
        m = re.match(r"^(\S.*?): \d+ records", line)
        if m:
            current = os.path.normpath(m.group(1))
            shown[current] = []
            continue
        m = re.match(r"^\s+\[(\d+)\] (.*)$", line)
        if m and current is not None:
            rec = {}
            for name, value in _TEXT_FIELD.findall(m.group(2)):
                rec.setdefault(name, []).append(value)
            shown[current].append(rec)
    return counts, shown


def _same_value(kind, text, value):
    if kind == "float":
        return np.float32(float(text)) == np.float32(value)
    if kind == "double":
        return float(text) == value
    if kind == "bool":
        return text == ("true" if value else "false")
    return int(text) == int(value)


def _as_text_fields(decoded, schema):
    """decoded (decode_message) without proto3's zero values, as inspect omits them."""
    out = {}
    for name, kind, repeated in schema.values():
        if name not in decoded:
            continue
        v = decoded[name]
        values = v if repeated else [v]
        if not repeated and not v:
            continue
        out[name] = (kind, values)
    return out


def check_decoder(c, vrec, data_dir, show):
    """Our decoder against `vrec inspect` on every candidate file and videos.rec."""
    manifest = read_manifest(data_dir)
    with open(os.path.join(data_dir, "manifest.json")) as f:
        mj = json.load(f)
    c.expect(all(str(manifest.get(k, 0)) == str(mj[k])
                 for k in ("seed", "num_users", "num_videos", "num_tokens")) and
             manifest.get("t_max", 0.0) == mj["t_max"] and
             [(s["path"], s.get("records", 0)) for s in manifest["candidate_train"]] ==
             [(s["path"], int(s["records"])) for s in mj["candidate_train"]],
             "manifest.pb decodes to manifest.json (%d training files)" %
             len(manifest["candidate_train"]))
    counts, shown = _inspect_records(vrec, data_dir, show)
    files = [(os.path.join(data_dir, s["path"]), CANDIDATE_EXAMPLE)
             for s in manifest["candidate_train"] + manifest["candidate_test"]]
    files.append((os.path.join(data_dir, manifest["videos"]), VIDEO_INFO))
    compared = 0
    for path, schema in files:
        buf, offsets, lengths = read_records(path)
        key = os.path.normpath(path)
        want, ok = counts.get(key, (None, False))
        c.expect(ok and want == len(offsets),
                 "%s: %d records framed and CRC-checked, vrec inspect counts %s" %
                 (os.path.relpath(path, data_dir), len(offsets), want))
        records = shown.get(key, [])
        bad = []
        for r, printed in enumerate(records):
            s = int(offsets[r])
            got = _as_text_fields(decode_message(buf, s, s + int(lengths[r]), schema), schema)
            same = set(got) == set(printed) and all(
                len(values) == len(printed[name]) and
                all(_same_value(kind, t, v) for t, v in zip(printed[name], values))
                for name, (kind, values) in got.items())
            if not same:
                bad.append(r)
        compared += len(records)
        c.expect(records and not bad,
                 "%s: the first %d records decode as vrec inspect prints them%s" %
                 (os.path.relpath(path, data_dir), len(records),
                  "" if not bad else " (records %s differ)" % bad[:5]))
        if schema is CANDIDATE_EXAMPLE:
            # The fast column decoder against the generic one, on every record.
            cols = decode_candidate_file(path)
            same = True
            for r in range(len(offsets)):
                s = int(offsets[r])
                g = decode_message(buf, s, s + int(lengths[r]), schema)
                h = cols["hist_ids"][cols["hist_off"][r]:cols["hist_off"][r + 1]]
                t = cols["tok_ids"][cols["tok_off"][r]:cols["tok_off"][r + 1]]
                same &= (h.tolist() == g.get("watch_history", []) and
                         t.tolist() == g.get("search_tokens", []) and
                         int(cols["label"][r]) == g.get("label_video", 0) and
                         int(cols["user_id"][r]) == g.get("user_id", 0) and
                         int(cols["example_id"][r]) == g.get("example_id", 0) and
                         float(cols["time"][r]) == g.get("time", 0.0) and
                         cols["example_age"][r] == g.get("example_age", 0.0) and
                         int(cols["region"][r]) == g.get("region", 0))
                if not same:
                    break
            c.expect(same, "%s: the column decoder agrees with the generic one on all %d "
                           "records" % (os.path.relpath(path, data_dir), len(offsets)))
    return compared


def check_framing(c, data_dir, scratch):
    """Damaged copies of a record file raise errors naming the file and record."""
    c.expect(crc32c(b"123456789") == 0xE3069283, "CRC32C check value (123456789)")
    rnd = np.random.default_rng(5)
    blobs = [bytes(rnd.integers(0, 256, size=int(n), dtype=np.uint8)) for n in (0, 1, 7, 300)]
    vec = crc32c_many(b"".join(blobs), np.cumsum([0] + [len(b) for b in blobs[:-1]]),
                      np.array([len(b) for b in blobs]))
    c.expect([int(x) for x in vec] == [crc32c(b) for b in blobs],
             "vectorised CRC32C = bytewise CRC32C (lengths 0, 1, 7, 300)")
    manifest = read_manifest(data_dir)
    src = os.path.join(data_dir, manifest["candidate_test"][0]["path"])
    with open(src, "rb") as f:
        good = f.read()
    _, offsets, lengths = read_records(src)
    r = min(2, len(offsets) - 1)
    cases = [
        ("a payload byte flipped", int(offsets[r]) + 1, "record %d at offset %d: payload CRC"),
        ("a length byte flipped", int(offsets[r]) - 12, "record %d at offset %d: length CRC"),
    ]
    for what, at, want in cases:
        bad = bytearray(good)
        bad[at] ^= 0x40
        path = os.path.join(scratch, "damaged.rec")
        with open(path, "wb") as f:
            f.write(bad)
        try:
            read_records(path)
            msg = "no error"
        except DataError as e:
            msg = str(e)
        expected = want % (r, int(offsets[r]) - 12)
        c.expect(path in msg and expected in msg,
                 "%s: the error names the file and the record (%s)" % (what, msg))
    path = os.path.join(scratch, "cut.rec")
    with open(path, "wb") as f:
        f.write(good[:int(offsets[r]) + 3])
    try:
        read_records(path)
        msg = "no error"
    except DataError as e:
        msg = str(e)
    c.expect(path in msg and ("record %d" % r) in msg and "truncated" in msg,
             "a file cut inside a record: truncated, naming the record (%s)" % msg)
    # A record whose CRCs verify but whose payload is not a CandidateExample.
    payload = b"\x0a\x05hello\x1a\x03\xff\xff\xff"  # field 1 as bytes; an unfinished varint
    head = struct.pack("<Q", len(payload))

    def masked(x):
        return ((((x >> 15) | (x << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

    path = os.path.join(scratch, "wrong.rec")
    with open(path, "wb") as f:
        f.write(head + struct.pack("<I", masked(crc32c(head))) + payload +
                struct.pack("<I", masked(crc32c(payload))))
    try:
        decode_candidate_file(path)
        msg = "no error"
    except DataError as e:
        msg = str(e)
    c.expect(path in msg and "record 0" in msg and "CandidateExample" in msg,
             "a payload that is not a CandidateExample: an error naming file and record (%s)" %
             msg)


def check_varints(c):
    values = [0, 1, 127, 128, 300, 1 << 35, (1 << 63) + 5, U64]

    def enc(v):
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)

    buf = b"".join(enc(v) for v in values)
    cut = len(enc(0)) + len(enc(1)) + len(enc(127))
    got, counts = decode_varints(buf, [0, cut, cut], [cut, cut, len(buf)])
    c.expect(got.tolist() == values and counts.tolist() == [3, 0, 5],
             "vectorised varints up to 2^64 - 1, an empty range between")
    try:
        decode_varints(b"\x80\x80", [0], [2])
        ok = False
    except DataError:
        ok = True
    c.expect(ok, "a range ending inside a varint is an error")


def check_metric(c):
    """The rank's tie rule on a hand-computed case (d = 1, scores = u * w + b)."""
    # Corpus scores for u = 1: class 0..5 -> 3, 5, 3, 3, 1, 5 (rows 1 and 5
    # and rows 0, 2 and 3 are equal rows; row 3 has another [w|b] with the
    # same score).
    rows = np.array([[2.0, 1.0], [4.0, 1.0], [2.0, 1.0], [1.0, 2.0], [0.0, 1.0], [4.0, 1.0]])
    users = np.array([[1.0], [1.0], [1.0], [1.0]])
    labels = np.array([0, 4, 1, -1])
    # label 0 (score 3): higher 1, 5; ties 2, 3  -> 1 + 2 + 0.5 * 2 = 4
    # label 4 (score 1): higher 0, 1, 2, 3, 5     -> 6
    # label 1 (score 5): tie 5                   -> 1.5
    # label -1: not in the corpus                -> inf
    got = ranks(users, rows, labels)
    c.expect(got.tolist() == [4.0, 6.0, 1.5, math.inf],
             "ranks with ties counted half: %s = [4, 6, 1.5, inf]" % got.tolist())
    # Example 0 watched 5 (higher), 2 (a tie; listed twice), its label 0 and
    # an id outside the corpus: 1 + 1 + 0.5 * 1 = 2.5. Example 2 watched 3
    # (lower) and 5 (label 1's twin, a tie): 1.
    ex_ids = np.array([5, 2, 2, 0, -1, 3, 5])
    ex_off = np.array([0, 5, 5, 7, 7])
    got = ranks(users, rows, labels, ex_ids, ex_off)
    c.expect(got.tolist() == [2.5, 6.0, 1.0, math.inf],
             "ranks with exclusions (repeats, the label, an id outside the corpus): %s = "
             "[2.5, 6, 1, inf]" % got.tolist())
    m = metrics(got)
    c.expect(m["recall@1"] == 0.25 and m["recall@10"] == 0.75 and m["missing_labels"] == 1 and
             abs(m["map"] - (1 / 2.5 + 1 / 6 + 1) / 4) < 1e-15,
             "recall@K and MAP count a missing label as a miss: %s" %
             {k: m[k] for k in ("recall@1", "recall@10", "map")})
    flat = ranks(np.zeros((1, 1)), np.zeros((1000, 2)), np.array([7]))
    c.expect(flat.tolist() == [500.5], "a constant scorer ranks like a random one (500.5 of "
                                       "1000)")


def check_validation_rule(c):
    # SplitMix64 from state 0 outputs mix64(k * 0x9e3779b97f4a7c15), k = 0, 1, 2.
    c.expect([mix64((k * 0x9E3779B97F4A7C15) & U64) for k in range(3)] ==
             [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F],
             "mix64 reproduces SplitMix64's first three outputs from state 0")
    # (user, time, example_id), in file order.
    ex = [(7, 1.0, 10), (7, 3.0, 11), (7, 3.0, 9),   # user 7: last = (3.0, 11): position 1
          (8, 5.0, 1),                                # user 8: one example, no validation
          (9, 2.0, 5), (9, 1.0, 6),                   # user 9: last = (2.0, 5): position 4
          (U64, 0.5, 1), (U64, 0.25, 2),              # user 2^64-1: position 6
          (4, 1.0, 3), (4, 1.0, 3)]                   # user 4: a full tie: the first, 8
    users, times, ids = zip(*ex)
    last = {7: 1, 9: 4, U64: 6, 4: 8}
    got = validation_slice(users, times, ids, 10, seed=1)
    c.expect(got == [1, 4, 6, 8],
             "validation slice: each user's last (time, then example_id), users with one "
             "example left out: %s" % got)
    # Seed 1 ranks the users 8, 9, 7, 2^64-1, 4 (keys 0x2c255cac878803d9,
    # 0x33180454ba17a00c, 0x7716da39cba275b2, 0xa562df66c82c649a,
    # 0xdef434e398051d63): the cap takes users in that order, then user 8 (one
    # example) gives nothing.
    keys = [mix64(u ^ mix64(1)) for u in (8, 9, 7, U64, 4)]
    c.expect(keys == [0x2C255CAC878803D9, 0x33180454BA17A00C, 0x7716DA39CBA275B2,
                      0xA562DF66C82C649A, 0xDEF434E398051D63],
             "the users' keys mix64(user ^ mix64(1))")
    for cap, want in ((1, []), (2, [4]), (3, [1, 4]), (4, [1, 4, 6]), (5, [1, 4, 6, 8])):
        got = validation_slice(users, times, ids, cap, seed=1)
        c.expect(got == want,
                 "validation slice of the %d smallest keys (seed 1), the one-example user "
                 "dropped after the cap: %s = %s" % (cap, got, want))
    got = validation_slice(users, times, ids, 2, seed=2)
    keys2 = sorted((7, 8, 9, U64, 4), key=lambda u: mix64(u ^ mix64(2)))[:2]
    c.expect(got == sorted(last[u] for u in keys2 if u != 8),
             "another seed picks by its own keys: %s" % got)


def check_validation_against_vrec(c, vrec, data_dir, seed, scratch):
    """validation_slice() against the slice `vrec train` holds out.

    vrec logs every example it trains on (--example_log_dir); over one epoch
    the training examples it did not train on are its validation slice. Two
    caps: above the number of eligible users (every eligible user's last
    example) and below it (the hash picks the users).
    """
    manifest = read_manifest(data_dir)
    tr = read_examples(data_dir, manifest["candidate_train"])
    users, times = [int(u) for u in tr.user_id], tr.time.tolist()
    ids = [int(e) for e in tr.example_id]
    counts = {}
    for u in users:
        counts[u] = counts.get(u, 0) + 1
    eligible = sum(1 for n in counts.values() if n >= 2)
    for cap in (len(counts) + 10, max(1, eligible // 3)):
        out = os.path.join(scratch, "slice-%d" % cap)
        cmd = [vrec, "train", "--data=" + data_dir, "--model_dir=" + out + "/model",
               "--seed=%d" % seed, "--validation_users=%d" % cap, "--epochs=1",
               "--embedding_dim=8", "--tower=8", "--example_log_dir=" + out + "/log"]
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            c.expect(False, "vrec train for the validation cross-check: %s" %
                     run.stderr.strip().splitlines()[-1:])
            continue
        trained = set()
        for name in sorted(os.listdir(out + "/log")):
            with open(os.path.join(out, "log", name)) as f:
                for line in f:
                    trained.update(int(x) for x in line.split()[2:])
        theirs = set(ids) - trained
        ours = {ids[i] for i in validation_slice(users, times, ids, cap, seed)}
        why = ""
        if ours != theirs:
            # A known way to differ: the users with one example dropped
            # first, then the cap applied to the rest.
            salt = mix64(seed & U64)
            eligible_users = sorted((u for u in counts if counts[u] >= 2),
                                    key=lambda u: mix64(u ^ salt))[:cap]
            alt = {ids[i] for i in validation_slice(users, times, ids, len(ids), seed)
                   if users[i] in set(eligible_users)}
            if alt == theirs:
                why = ("; vrec's slice applies the cap after dropping the users with one "
                       "example, this one before (src/data/validation_split.h)")
        c.expect(ours == theirs,
                 "validation slice = the examples vrec train holds out (--validation_users=%d, "
                 "%d eligible of %d users, seed %d): %d here, %d by vrec, %d in common%s" %
                 (cap, eligible, len(counts), seed, len(ours), len(theirs), len(ours & theirs),
                  why))


def check_quantiles(c):
    q = fit_quantiles(np.arange(101, dtype=np.float64), num_quantiles=4)
    c.expect(q.tolist() == [0, 25, 50, 75, 100], "quantiles of 0..100: %s" % q.tolist())
    x = np.array([-1.0, 0.0, 12.5, 25.0, 99.0, 100.0, 1e9, np.nan])
    top = np.nextafter(1.0, 0.0)
    got = quantile_cdf(q, x)
    c.expect(got.tolist() == [0.0, 0.0, 0.125, 0.25, 0.99, top, top, 0.0],
             "the CDF: 0 below, interpolated, just under 1 from the top, NaN -> 0: %s" %
             got.tolist())
    q = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # a point mass holding three quantiles
    c.expect(quantile_cdf(q, np.array([1.0])).tolist() == [0.75],
             "a point mass maps to the top of its step (the last index)")


def check_training(c, data_dir, args):
    torch = import_torch(args.threads)
    args.epochs = min(args.epochs, 4)
    data = Dataset(data_dir, args.validation_users, args.seed, args.max_history,
                   args.max_history)
    peer = _Peer(torch, args)
    model, epochs, best, history = peer.train(data)
    m = peer.evaluate(model, data.test)
    random_recall = 100.0 / len(data.corpus)
    c.expect(m["recall@100"] > 2 * random_recall,
             "a short training run learns: test recall@100 %.3f (random %.3f) after %d epochs" %
             (m["recall@100"], random_recall, epochs))
    c.expect(history[best - 1] == max(history),
             "the kept epoch is the best validation epoch (%d of %s)" % (best, history))
    model2, _, _, history2 = _Peer(torch, args).train(data)
    c.expect(history2 == history and all(
        torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters())),
        "deterministic: the same seed gives the same weights and validation figures")


def check(args):
    c = Checker()
    scratch = tempfile.mkdtemp(prefix="quality-peer-check.")
    try:
        data_dir = args.data
        if not data_dir:
            if not args.vrec or not os.access(args.vrec, os.X_OK):
                print("quality_peer: --check needs --data=DIR or a vrec binary (--vrec or $VREC) "
                      "to make a tiny world", file=sys.stderr)
                return 2
            data_dir = os.path.join(scratch, "world")
            subprocess.run([args.vrec, "datagen", "--out=" + data_dir, "--fsync=false",
                            "--num_videos=800", "--num_users=600", "--num_tokens=400",
                            "--num_topics=8", "--num_days=10", "--test_users=100",
                            "--shards=3", "--seed=%d" % args.seed],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        check_varints(c)
        check_metric(c)
        check_validation_rule(c)
        check_quantiles(c)
        check_framing(c, data_dir, scratch)
        if args.vrec and os.access(args.vrec, os.X_OK):
            check_decoder(c, args.vrec, data_dir, show=args.check_records)
            check_validation_against_vrec(c, args.vrec, data_dir, args.seed, scratch)
        else:
            c.expect(False, "decoder against vrec inspect: no vrec binary (--vrec or $VREC)")
        torch_ok = True
        if args.check_torch == "no":
            torch_ok = False
        else:
            try:
                import_torch(args.threads)
            except ImportError as e:
                torch_ok = False
                if args.check_torch == "yes":
                    c.expect(False, "torch imports (%s)" % e)
                else:
                    print("skip  the training check: torch does not import (%s)" % e,
                          file=sys.stderr)
        if torch_ok:
            check_training(c, data_dir, args)
    finally:
        subprocess.run(["rm", "-rf", scratch], check=False)
    print(json.dumps({"model": "torch_peer_check", "ok": not c.failures,
                      "failures": c.failures}), flush=True)
    return 0 if not c.failures else 1


# --------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="quality_peer.py",
        description=(
            "PyTorch quality peer of vrec's candidate-generation model: trains the same\n"
            "model on a vrec dataset folder (full softmax up to --full_softmax_max videos,\n"
            "Adam, early stopping on vrec's validation slice) and scores the test examples\n"
            "with vrec's exact-rank metrics. ONE JSON line on stdout, progress on stderr."),
        epilog=(
            "Examples:\n"
            "  vrec convert --csv=movielens-dev.csv --out=D\n"
            "  /usr/bin/python3 benchmarks/quality_peer.py --data=D --exclude_watched\n"
            "  /usr/bin/python3 benchmarks/quality_peer.py --data=W --seed=2\n"
            "  /usr/bin/python3 benchmarks/quality_peer.py --check --vrec=build/vrec\n"
            "Output keys: model, seed, epochs_trained, best_epoch, validation (recall@50\n"
            "per epoch), recall@1, recall@10, recall@50, recall@100, map, examples,\n"
            "missing_labels, seconds, exclude_watched, and the run's settings."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="", help="dataset folder (vrec convert or vrec datagen)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the validation slice, initialisation and shuffling (as vrec "
                        "train --seed; default 1)")
    p.add_argument("--exclude_watched", action="store_true",
                   help="watched videos are not competitors (vrec eval --exclude_watched); also "
                        "for the validation slice")
    p.add_argument("--epochs", type=int, default=100, help="at most this many epochs (100)")
    p.add_argument("--patience", type=int, default=3,
                   help="stop after this many epochs without a better validation recall@50 (3)")
    p.add_argument("--validation_users", type=int, default=10000,
                   help="users in the validation slice at most (10000)")
    p.add_argument("--learning_rate", type=float, default=1e-3, help="Adam's rate (0.001)")
    p.add_argument("--batch_size", type=int, default=512, help="examples per step (512)")
    p.add_argument("--embedding_dim", type=int, default=64,
                   help="video and search-token embeddings (vrec train's default, 64)")
    p.add_argument("--tower", default="256,128",
                   help="hidden ReLU widths; the last is the user vector (vrec's, 256,128)")
    p.add_argument("--max_history", type=int, default=50,
                   help="most recent watches and search tokens used (50)")
    p.add_argument("--full_softmax_max", type=int, default=100000,
                   help="full softmax up to this many videos, sampled softmax above (100000)")
    p.add_argument("--negatives", type=int, default=2048,
                   help="sampled softmax: shared unigram^0.75 negatives per step (2048)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    p.add_argument("--check", action="store_true",
                   help="self-check instead of a run (see above); with --data, on that "
                        "dataset, else on a tiny world made by vrec datagen")
    p.add_argument("--vrec", default=os.environ.get("VREC", ""),
                   help="vrec binary for --check (default $VREC)")
    p.add_argument("--check_records", type=int, default=50,
                   help="--check: records per file compared with vrec inspect (50)")
    p.add_argument("--check_torch", choices=("auto", "yes", "no"), default="auto",
                   help="--check: the training check runs when torch imports (auto), must run "
                        "(yes), or is skipped (no)")
    args = p.parse_args(argv)
    try:
        args.tower = [int(w) for w in args.tower.split(",") if w.strip()]
    except ValueError:
        p.error("--tower: comma-separated integers expected, got %r" % args.tower)
    if not args.tower or min(args.tower) < 1:
        p.error("--tower needs at least one positive width")
    for name in ("epochs", "patience", "batch_size", "embedding_dim", "max_history",
                 "negatives", "threads", "validation_users"):
        if getattr(args, name) < 1:
            p.error("--%s must be >= 1" % name)
    if args.learning_rate <= 0:
        p.error("--learning_rate must be > 0")
    if not 0 <= args.seed <= U64:
        p.error("--seed must be in [0, 2^64)")
    if not args.check and not args.data:
        p.error("--data is required (or --check)")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.check:
            return check(args)
        return run(args)
    except DataError as e:
        print("quality_peer: %s" % e, file=sys.stderr)
        return 1


def _commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
