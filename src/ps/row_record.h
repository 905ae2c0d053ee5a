// The row record: how one row of an EmbeddingStore is stored in the spill
// store (disk tier) and in a partition's spill queue.
//
// A record is a 24-byte header, then the row's RowFloats() floats (weights
// and optimizer state) as raw little-endian IEEE floats:
//
//   offset  bytes  field
//        0      4  magic 0x31575256 ("VRW1")
//        4      4  row_floats (uint32): floats in the row
//        8      8  last_seen_step (uint64), see RowMeta
//       16      4  updates (uint32), see RowMeta
//       20      4  flags (uint32)
//       24   4*rf  the row (absent in the compact form)
//
// Compact form: a row never updated (updates == 0) holds the initializer's
// values, a pure function of its key, so its record may be the header alone
// with flags = kRecordInitial | fingerprint << 8. The fingerprint (24 bits) is
// a hash of what the table's initializer gives a few keys, so a compact
// record read under another initializer (seed, kind, scale or fans changed)
// is refused instead of silently taking new values. A whole record has
// flags 0. Changing any of this changes what is on disk: row_record_test.cc
// holds golden encodings.
//
// RowRecordCodec is a value (row_floats and the fingerprint) with const
// methods: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "vrec/status.h"

namespace vrec::ps {

// Metadata kept with every row (in memory and in its record).
struct RowMeta {
  // Step of the last pull or push; maintained only when expiry is on
  // (otherwise the step the row was created or last reloaded at).
  uint64_t last_seen_step = 0;
  uint32_t updates = 0;  // pushes applied (saturating)
};

inline constexpr uint32_t kRecordMagic = 0x31575256;  // "VRW1"
inline constexpr size_t kRecordHeaderBytes = 24;
// Flag (low byte of the flags field) of a compact record; see above.
inline constexpr uint32_t kRecordInitial = 1;

// Reads the header's metadata. False (meta untouched) if `record` is shorter
// than a header or has the wrong magic; nothing else is checked.
bool ParseRowMeta(const std::string& record, RowMeta* meta);

class RowRecordCodec {
 public:
  // Records of rows of `row_floats` floats whose initializer has fingerprint
  // `init_fingerprint` (its low 24 bits are used).
  RowRecordCodec(uint32_t row_floats, uint32_t init_fingerprint)
      : row_floats_(row_floats), init_fingerprint_(init_fingerprint & 0xffffff) {}

  uint32_t row_floats() const { return row_floats_; }
  uint32_t init_fingerprint() const { return init_fingerprint_; }
  // Bytes of a whole record.
  size_t WholeBytes() const { return kRecordHeaderBytes + sizeof(float) * row_floats_; }

  // The record of `row` (row_floats() floats) with `meta`. With `compact`, a
  // row never updated (meta.updates == 0) is encoded as its header alone.
  std::string Encode(const float* row, const RowMeta& meta, bool compact = false) const;

  // Turns a valid whole record of a never-updated row into the compact
  // form; leaves any other record as it is.
  void Compact(std::string* record) const;

  // Whether a valid record is compact (then its row is the initializer's).
  static bool IsCompact(const std::string& record) { return record.size() == kRecordHeaderBytes; }
  // The row of a valid whole record (row_floats() floats, in place).
  static float* MutableRow(std::string* record) {
    return reinterpret_cast<float*>(record->data() + kRecordHeaderBytes);
  }
  // Copies the row of a valid whole record to `row`.
  void CopyRow(const std::string& record, float* row) const;
  // Rewrites the metadata of a valid record.
  static void SetMeta(const RowMeta& meta, std::string* record);

  // Checks a record of unknown origin (read from disk) and fills `meta`.
  // kDataLoss if it is truncated, garbled (magic, row size, flags, length)
  // or a compact record of another initializer; the message is where()
  // (built only on error: what the record is, e.g. "table t key 7: spill
  // record in rocksdb:/x") followed by what is wrong.
  Status Check(const std::string& record, RowMeta* meta,
               absl::FunctionRef<std::string()> where) const;

 private:
  uint32_t CompactFlags() const { return kRecordInitial | init_fingerprint_ << 8; }

  uint32_t row_floats_;
  uint32_t init_fingerprint_;
};

}  // namespace vrec::ps
