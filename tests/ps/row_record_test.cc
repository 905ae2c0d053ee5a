#include "ps/row_record.h"

#include <cstring>
#include <string>
#include <vector>

#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

constexpr uint32_t kFingerprint = 0xabcdef;

std::string Where() { return "record of key 7"; }

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// A known row: 3 floats, pushed twice, last seen at step 5.
const float kRow[3] = {1.0f, -2.0f, 0.5f};
const RowMeta kMeta{5, 2};

TEST(RowRecordTest, WholeRecordGoldenBytes) {
  const RowRecordCodec codec(3, kFingerprint);
  const std::vector<uint8_t> golden = {
      0x56, 0x52, 0x57, 0x31,                          // magic "VRW1"
      0x03, 0x00, 0x00, 0x00,                          // row_floats
      0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // last_seen_step
      0x02, 0x00, 0x00, 0x00,                          // updates
      0x00, 0x00, 0x00, 0x00,                          // flags: whole
      0x00, 0x00, 0x80, 0x3f,                          // 1.0f
      0x00, 0x00, 0x00, 0xc0,                          // -2.0f
      0x00, 0x00, 0x00, 0x3f,                          // 0.5f
  };
  EXPECT_EQ(Bytes(codec.Encode(kRow, kMeta)), golden);
  // An updated row is whole even when compact is asked for.
  EXPECT_EQ(Bytes(codec.Encode(kRow, kMeta, /*compact=*/true)), golden);
  EXPECT_EQ(codec.WholeBytes(), golden.size());
}

TEST(RowRecordTest, CompactRecordGoldenBytes) {
  const RowRecordCodec codec(3, kFingerprint);
  const std::vector<uint8_t> golden = {
      0x56, 0x52, 0x57, 0x31,                          // magic "VRW1"
      0x03, 0x00, 0x00, 0x00,                          // row_floats
      0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // last_seen_step
      0x00, 0x00, 0x00, 0x00,                          // updates: never
      0x01, 0xef, 0xcd, 0xab,                          // kRecordInitial | fingerprint << 8
  };
  EXPECT_EQ(Bytes(codec.Encode(kRow, {7, 0}, /*compact=*/true)), golden);
}

TEST(RowRecordTest, WholeRecordRoundTrips) {
  const RowRecordCodec codec(3, kFingerprint);
  const std::string record = codec.Encode(kRow, kMeta);
  RowMeta meta;
  ASSERT_OK(codec.Check(record, &meta, Where));
  EXPECT_EQ(meta.last_seen_step, kMeta.last_seen_step);
  EXPECT_EQ(meta.updates, kMeta.updates);
  EXPECT_FALSE(RowRecordCodec::IsCompact(record));
  float row[3];
  codec.CopyRow(record, row);
  EXPECT_EQ(std::memcmp(row, kRow, sizeof(row)), 0);
  RowMeta parsed;
  ASSERT_TRUE(ParseRowMeta(record, &parsed));
  EXPECT_EQ(parsed.updates, 2u);
}

TEST(RowRecordTest, SetMetaRewritesTheHeaderOnly) {
  const RowRecordCodec codec(3, kFingerprint);
  std::string record = codec.Encode(kRow, kMeta);
  RowRecordCodec::SetMeta({9, UINT32_MAX}, &record);
  RowMeta meta;
  ASSERT_OK(codec.Check(record, &meta, Where));
  EXPECT_EQ(meta.last_seen_step, 9u);
  EXPECT_EQ(meta.updates, UINT32_MAX);
  EXPECT_EQ(std::memcmp(RowRecordCodec::MutableRow(&record), kRow, sizeof(kRow)), 0);
}

TEST(RowRecordTest, CompactFormOfNeverUpdatedRows) {
  const RowRecordCodec codec(3, kFingerprint);
  const std::string compact = codec.Encode(kRow, {7, 0}, /*compact=*/true);
  EXPECT_TRUE(RowRecordCodec::IsCompact(compact));
  EXPECT_EQ(compact.size(), kRecordHeaderBytes);
  RowMeta meta;
  ASSERT_OK(codec.Check(compact, &meta, Where));
  EXPECT_EQ(meta.last_seen_step, 7u);
  EXPECT_EQ(meta.updates, 0u);
  // Compact() turns the whole record of a never-updated row into the same
  // bytes, and leaves compact records and updated rows alone.
  std::string whole = codec.Encode(kRow, {7, 0});
  EXPECT_EQ(whole.size(), codec.WholeBytes());
  codec.Compact(&whole);
  EXPECT_EQ(whole, compact);
  std::string again = compact;
  codec.Compact(&again);
  EXPECT_EQ(again, compact);
  std::string updated = codec.Encode(kRow, kMeta);
  const std::string before = updated;
  codec.Compact(&updated);
  EXPECT_EQ(updated, before);
}

TEST(RowRecordTest, TruncatedRecordsAreDataLoss) {
  const RowRecordCodec codec(3, kFingerprint);
  for (const std::string& record :
       {codec.Encode(kRow, kMeta), codec.Encode(kRow, {7, 0}, /*compact=*/true)}) {
    // Every prefix, including a whole record cut to its header (flags 0
    // say it is whole, so it is short).
    for (size_t n = 0; n < record.size(); ++n) {
      RowMeta meta;
      EXPECT_THAT(codec.Check(record.substr(0, n), &meta, Where),
                  StatusIs(absl::StatusCode::kDataLoss, "record of key 7 is corrupt"))
          << n << " of " << record.size() << " bytes";
    }
  }
}

TEST(RowRecordTest, GarbledRecordsAreDataLossSayingWhatIsWrong) {
  const RowRecordCodec codec(3, kFingerprint);
  const std::string good = codec.Encode(kRow, kMeta);
  auto check = [&](std::string record) {
    RowMeta meta;
    return codec.Check(record, &meta, Where);
  };
  std::string bad_magic = good;
  bad_magic[0] = 'x';
  EXPECT_THAT(check(bad_magic), StatusIs(absl::StatusCode::kDataLoss, "is corrupt (36 bytes"));
  // Another row size: the record of a table with another dim or optimizer.
  const std::string other_size = RowRecordCodec(2, kFingerprint).Encode(kRow, kMeta);
  EXPECT_THAT(check(other_size),
              StatusIs(absl::StatusCode::kDataLoss,
                       "is corrupt (32 bytes, row of 2 floats, flags 0, 2 updates; expected 36 "
                       "bytes, 3 floats)"));
  std::string bad_flags = good;
  bad_flags[21] = 1;
  EXPECT_THAT(check(bad_flags), StatusIs(absl::StatusCode::kDataLoss, "flags 256"));
  EXPECT_THAT(check(good + "x"), StatusIs(absl::StatusCode::kDataLoss, "37 bytes"));
  // A compact record must be of a never-updated row.
  std::string updated_compact = codec.Encode(kRow, {7, 0}, /*compact=*/true);
  RowRecordCodec::SetMeta({7, 1}, &updated_compact);
  EXPECT_THAT(check(updated_compact), StatusIs(absl::StatusCode::kDataLoss, "is corrupt"));
  // A compact record of another initializer cannot be expanded here.
  const std::string foreign = RowRecordCodec(3, 0x123456).Encode(kRow, {7, 0}, /*compact=*/true);
  EXPECT_THAT(check(foreign),
              StatusIs(absl::StatusCode::kDataLoss,
                       "record of key 7 holds an untouched row written under another "
                       "initializer (fingerprint 1193046, this table's 11259375)"));
  RowMeta meta;
  EXPECT_FALSE(ParseRowMeta(bad_magic, &meta));
  EXPECT_FALSE(ParseRowMeta(good.substr(0, kRecordHeaderBytes - 1), &meta));
}

TEST(RowRecordTest, WhereIsBuiltOnlyOnError) {
  const RowRecordCodec codec(3, kFingerprint);
  int calls = 0;
  auto where = [&] {
    ++calls;
    return std::string("r");
  };
  RowMeta meta;
  ASSERT_OK(codec.Check(codec.Encode(kRow, kMeta), &meta, where));
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(codec.Check("", &meta, where).ok());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace vrec::ps
