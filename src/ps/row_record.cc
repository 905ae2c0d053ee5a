#include "ps/row_record.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace vrec::ps {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "row records store raw little-endian floats");

bool ParseRowMeta(const std::string& record, RowMeta* meta) {
  if (record.size() < kRecordHeaderBytes) return false;
  uint32_t magic;
  std::memcpy(&magic, record.data(), 4);
  if (magic != kRecordMagic) return false;
  std::memcpy(&meta->last_seen_step, record.data() + 8, 8);
  std::memcpy(&meta->updates, record.data() + 16, 4);
  return true;
}

std::string RowRecordCodec::Encode(const float* row, const RowMeta& meta, bool compact) const {
  const bool initial = compact && meta.updates == 0;
  std::string v(initial ? kRecordHeaderBytes : WholeBytes(), '\0');
  const uint32_t flags = initial ? CompactFlags() : 0;
  std::memcpy(v.data(), &kRecordMagic, 4);
  std::memcpy(v.data() + 4, &row_floats_, 4);
  std::memcpy(v.data() + 8, &meta.last_seen_step, 8);
  std::memcpy(v.data() + 16, &meta.updates, 4);
  std::memcpy(v.data() + 20, &flags, 4);
  if (!initial) std::memcpy(v.data() + kRecordHeaderBytes, row, sizeof(float) * row_floats_);
  return v;
}

void RowRecordCodec::Compact(std::string* record) const {
  RowMeta meta;
  if (!ParseRowMeta(*record, &meta) || meta.updates != 0 || IsCompact(*record)) return;
  record->resize(kRecordHeaderBytes);
  const uint32_t flags = CompactFlags();
  std::memcpy(record->data() + 20, &flags, 4);
}

void RowRecordCodec::CopyRow(const std::string& record, float* row) const {
  std::memcpy(row, record.data() + kRecordHeaderBytes, sizeof(float) * row_floats_);
}

void RowRecordCodec::SetMeta(const RowMeta& meta, std::string* record) {
  std::memcpy(record->data() + 8, &meta.last_seen_step, 8);
  std::memcpy(record->data() + 16, &meta.updates, 4);
}

Status RowRecordCodec::Check(const std::string& record, RowMeta* meta,
                             absl::FunctionRef<std::string()> where) const {
  uint32_t floats = 0, flags = 0;
  if (record.size() >= 8) std::memcpy(&floats, record.data() + 4, 4);
  if (record.size() >= kRecordHeaderBytes) std::memcpy(&flags, record.data() + 20, 4);
  const bool initial = (flags & 0xff) == kRecordInitial;
  const size_t expect_bytes = initial ? kRecordHeaderBytes : WholeBytes();
  if (!ParseRowMeta(record, meta) || floats != row_floats_ || (!initial && flags != 0) ||
      (initial && meta->updates != 0) || record.size() != expect_bytes) {
    return absl::DataLossError(absl::StrCat(where(), " is corrupt (", record.size(),
                                            " bytes, row of ", floats, " floats, flags ", flags,
                                            ", ", meta->updates, " updates; expected ",
                                            expect_bytes, " bytes, ", row_floats_, " floats)"));
  }
  if (initial && (flags >> 8) != init_fingerprint_) {
    return absl::DataLossError(absl::StrCat(
        where(), " holds an untouched row written under another initializer (fingerprint ",
        flags >> 8, ", this table's ", init_fingerprint_,
        "): the table's seed or initializer changed since it was spilled"));
  }
  return absl::OkStatus();
}

}  // namespace vrec::ps
