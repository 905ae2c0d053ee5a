#include "ps/partition.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

constexpr uint32_t kRowFloats = 4;
constexpr uint64_t kTableId = 77;

std::unique_ptr<Partition> MakePartition(uint32_t max_rows, SpillStore* spill,
                                         uint64_t expiry_steps = 0) {
  PartitionOptions o;
  o.layout = PartitionLayout::For(kRowFloats, max_rows, expiry_steps);
  o.codec = RowRecordCodec(kRowFloats, 0x123);
  o.spill = spill;
  o.table_id = kTableId;
  o.table_name = "t";
  o.max_spill_jobs_in_flight = 2;
  return std::make_unique<Partition>(std::move(o));
}

// Makes `key` resident (as a request would: a slot, its row, Occupy) unless
// the partition does not admit it; returns the slot or -1.
int64_t Admit(Partition& p, uint64_t key, uint64_t now = 0, uint8_t extra_flags = 0)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(p.mu) {
  const int64_t s = p.AdmitSlot(key, now);
  if (s < 0) return s;
  float* row = p.Row(static_cast<uint32_t>(s));
  for (uint32_t i = 0; i < kRowFloats; ++i) row[i] = static_cast<float>(key) + 0.25f * i;
  p.Occupy(static_cast<uint32_t>(s), key, {now, 0},
           Partition::kUsed | Partition::kDirty | extra_flags);
  return s;
}

// The record of `key` on `spill`, if any.
std::optional<std::string> OnDisk(SpillStore& spill, uint64_t key) {
  std::vector<std::optional<std::string>> values;
  EXPECT_OK(spill.MultiGet({SpillKey(kTableId, key)}, &values));
  return values.at(0);
}

TEST(PartitionLayoutTest, ChunksCoverTheRows) {
  const PartitionLayout l = PartitionLayout::For(128, 0, 0);
  EXPECT_EQ(l.small_chunk_rows, 32u);  // 16 KB of 512-byte rows
  EXPECT_EQ(l.big_chunk_rows, 4096u);  // 2 MiB
  EXPECT_EQ(l.ChunksFor(0), 0u);
  EXPECT_EQ(l.ChunksFor(1), 1u);
  EXPECT_EQ(l.ChunksFor(32 * 64), 64u);
  EXPECT_EQ(l.ChunksFor(32 * 64 + 1), 65u);
  // Rows of 193 floats (Adam, dim 64): chunks of at least a huge page.
  const PartitionLayout adam = PartitionLayout::For(193, 0, 0);
  EXPECT_GE(uint64_t{adam.big_chunk_rows} * 193 * 4, kHugePageBytes);
  EXPECT_FALSE(l.Expired(0, 1000));
  const PartitionLayout expiring = PartitionLayout::For(4, 0, 10);
  EXPECT_FALSE(expiring.Expired(5, 15));
  EXPECT_TRUE(expiring.Expired(5, 16));
}

TEST(PartitionTest, FillsUpToItsRowLimitThenEvictsOnlyForMoreFrequentKeys) {
  MemSpillStore spill;
  auto part = MakePartition(4, &spill);
  Partition& p = *part;
  MutexLock lock(&p.mu);
  for (uint64_t key = 1; key <= 4; ++key) {
    p.BeginRequest();
    EXPECT_EQ(Admit(p, key), static_cast<int64_t>(key - 1));
  }
  EXPECT_EQ(p.num_slots, 4u);
  EXPECT_EQ(p.index.size(), 4u);
  // A key seen no more often than the residents is not admitted.
  p.BeginRequest();
  EXPECT_EQ(Admit(p, 5), -1);
  EXPECT_EQ(p.c.bypasses, 1u);
  EXPECT_EQ(p.c.evictions, 0u);
  // A more frequent one evicts a resident, whose (dirty) row is queued.
  for (int i = 0; i < 3; ++i) p.freq->Increment(5);
  const int64_t s = Admit(p, 5);
  ASSERT_GE(s, 0);
  EXPECT_EQ(p.num_slots, 4u);
  EXPECT_EQ(p.c.evictions, 1u);
  EXPECT_EQ(p.index.size(), 4u);
  EXPECT_EQ(p.index.at(5), s);
  ASSERT_EQ(p.pending_puts.size(), 1u);
  const uint64_t evicted = p.pending_puts.begin()->first;
  EXPECT_FALSE(p.index.contains(evicted));
  EXPECT_TRUE(p.InSpillQueue(evicted));
  // The queued record is the evicted row (never updated: compact).
  RowMeta meta;
  EXPECT_OK(p.options().codec.Check(p.pending_puts.begin()->second.value, &meta,
                                    [] { return std::string("queued"); }));
  EXPECT_TRUE(RowRecordCodec::IsCompact(p.pending_puts.begin()->second.value));
  EXPECT_EQ(p.pending_bytes, kRecordHeaderBytes);
}

TEST(PartitionTest, PinnedRowsAreNeverVictims) {
  MemSpillStore spill;
  auto part = MakePartition(4, &spill);
  Partition& p = *part;
  MutexLock lock(&p.mu);
  for (uint64_t key = 1; key <= 4; ++key) {
    p.BeginRequest();
    ASSERT_GE(Admit(p, key), 0);
  }
  for (int i = 0; i < 10; ++i) p.freq->Increment(9);
  // A request asking for keys 1-3 pins them: only key 4 can make room.
  p.BeginRequest();
  for (uint64_t key = 1; key <= 3; ++key) p.Pin(p.index.at(key));
  ASSERT_GE(Admit(p, 9), 0);
  EXPECT_FALSE(p.index.contains(4));
  for (uint64_t key : {1, 2, 3, 9}) EXPECT_TRUE(p.index.contains(key)) << key;
  // Every row pinned: even a very frequent key is not admitted.
  for (int i = 0; i < 10; ++i) p.freq->Increment(10);
  EXPECT_EQ(Admit(p, 10), -1);
  EXPECT_EQ(p.index.size(), 4u);
  EXPECT_EQ(p.c.evictions, 1u);
  // The next request has pinned nothing yet.
  p.BeginRequest();
  EXPECT_GE(Admit(p, 10), 0);
  EXPECT_EQ(p.c.evictions, 2u);
}

TEST(PartitionTest, RemoveQueuesDeletionOfTheDurableRecordAndFreesTheSlot) {
  MemSpillStore spill;
  auto part = MakePartition(0, &spill);
  Partition& p = *part;
  MutexLock lock(&p.mu);
  p.BeginRequest();
  const int64_t s = Admit(p, 42, 0, Partition::kOnDisk);
  ASSERT_GE(s, 0);
  EXPECT_EQ(p.resident_on_disk, 1u);
  p.Remove(static_cast<uint32_t>(s));
  p.FreeSlot(static_cast<uint32_t>(s));
  EXPECT_FALSE(p.index.contains(42));
  EXPECT_EQ(p.resident_on_disk, 0u);
  EXPECT_EQ(p.c.expiries, 1u);
  EXPECT_TRUE(p.pending_deletes.contains(42));
  EXPECT_EQ(p.AdmitSlot(43, 0), s);  // the freed slot is reused first
}

TEST(PartitionTest, ExpiredRowsAreDroppedBeforeVictimsAreScored) {
  MemSpillStore spill;
  auto part = MakePartition(2, &spill, /*expiry_steps=*/10);
  Partition& p = *part;
  MutexLock lock(&p.mu);
  p.BeginRequest();
  ASSERT_GE(Admit(p, 1, /*now=*/0), 0);
  p.BeginRequest();
  ASSERT_GE(Admit(p, 2, /*now=*/0), 0);
  p.BeginRequest();
  // At step 20 both rows are expired: the first one sampled gives its slot,
  // whatever the candidate's frequency, and nothing is written.
  ASSERT_GE(Admit(p, 3, /*now=*/20), 0);
  EXPECT_EQ(p.c.expiries, 1u);
  EXPECT_EQ(p.c.evictions, 0u);
  EXPECT_TRUE(p.pending_puts.empty());
  EXPECT_EQ(p.ExpireResident(/*now=*/20), 1u);  // the other one
  EXPECT_EQ(p.index.size(), 1u);
}

TEST(PartitionTest, SpillJobsLandInOrderAndNewerRecordsSupersedeOlderOnes) {
  MemSpillStore spill;
  auto part = MakePartition(0, &spill);
  Partition& p = *part;
  MutexLock lock(&p.mu);
  EXPECT_EQ(p.TakeJob(), nullptr);  // nothing queued
  const RowRecordCodec& codec = p.options().codec;
  const float a[kRowFloats] = {1, 2, 3, 4}, b[kRowFloats] = {5, 6, 7, 8};
  const std::string record_a = codec.Encode(a, {1, 1}), record_b = codec.Encode(b, {2, 2});
  p.Queue(1, record_a, /*on_disk=*/false);
  p.Queue(2, record_a, /*on_disk=*/false);
  std::shared_ptr<SpillJob> job1 = p.TakeJob();
  ASSERT_NE(job1, nullptr);
  EXPECT_EQ(job1->gen, 1u);
  EXPECT_EQ(job1->new_records, 2u);
  EXPECT_EQ(p.jobs_in_flight, 1u);
  // Key 1 changes again while job 1 is in flight: the newer record is
  // queued for job 2 and overwrites the one job 1 writes.
  p.Queue(1, record_b, /*on_disk=*/false);
  std::shared_ptr<SpillJob> job2 = p.TakeJob();
  ASSERT_NE(job2, nullptr);
  EXPECT_EQ(job2->gen, 2u);
  EXPECT_EQ(job2->put_keys, std::vector<uint64_t>{1});
  EXPECT_EQ(job2->new_records, 0u);  // job 1 lands first
  ASSERT_OK(p.WriteJob(*job1));
  // Job 1 landed: key 2 left the queue; key 1's newer record stays readable.
  EXPECT_FALSE(p.InSpillQueue(2));
  ASSERT_TRUE(p.pending_puts.contains(1));
  EXPECT_EQ(p.pending_puts.at(1).value, record_b);
  EXPECT_EQ(OnDisk(spill, 1), record_a);
  ASSERT_OK(p.WriteJob(*job2));
  EXPECT_TRUE(p.pending_puts.empty());
  EXPECT_EQ(p.pending_bytes, 0u);
  EXPECT_EQ(p.jobs_in_flight, 0u);
  EXPECT_EQ(p.disk_rows, 2u);
  EXPECT_EQ(OnDisk(spill, 1), record_b);
  EXPECT_EQ(OnDisk(spill, 2), record_a);
  // Deleting a key with a durable record (expiry) drops its queued put.
  p.Queue(2, record_b, /*on_disk=*/true);
  p.QueueDelete(2);
  EXPECT_FALSE(p.pending_puts.contains(2));
  EXPECT_TRUE(p.InSpillQueue(2));
  ASSERT_OK(p.Flush());
  EXPECT_EQ(OnDisk(spill, 2), std::nullopt);
  EXPECT_EQ(p.disk_rows, 1u);
  EXPECT_FALSE(p.InSpillQueue(2));
}

TEST(PartitionTest, RowLimitIsNeverExceeded) {
  const uint64_t seed = testing::TestSeed(7);
  SCOPED_TRACE(::testing::Message() << "VREC_TEST_SEED=" << seed);
  MemSpillStore spill;
  constexpr uint32_t kMaxRows = 50;
  auto part = MakePartition(kMaxRows, &spill, /*expiry_steps=*/30);
  Partition& p = *part;
  MutexLock lock(&p.mu);
  Rng rng(seed);
  for (uint64_t now = 0; now < 2000; ++now) {
    p.BeginRequest();
    for (int i = 0; i < 8; ++i) {
      const uint64_t key = rng.UniformInt(200);
      p.freq->Increment(key);
      if (auto it = p.index.find(key); it != p.index.end()) {
        p.Pin(it->second);
        continue;
      }
      if (p.pending_puts.contains(key)) continue;  // a request would reload it
      Admit(p, key, now);
    }
    ASSERT_LE(p.num_slots, kMaxRows);
    ASSERT_LE(p.index.size(), kMaxRows);
    ASSERT_EQ(p.chunks.size(), p.layout().ChunksFor(p.num_slots));
  }
  EXPECT_GT(p.c.evictions, 0u);
}

// ---------------------------------------------------------------- capacity

TEST(PartitionCapacityTest, ZeroOrTooSmallBudgetsHoldNoRows) {
  const uint64_t fixed = PartitionFixedBytes(16, 0);
  EXPECT_EQ(RowsPerPartition(0, 16, 128, fixed), 0u);
  EXPECT_EQ(RowsPerPartition(1000, 16, 193, fixed), 0u);
  EXPECT_EQ(RowsPerPartition(16 * fixed, 16, 128, fixed), 0u);
  EXPECT_EQ(RowsPerPartition(1 << 20, 0, 128, fixed), 0u);
  EXPECT_GT(RowsPerPartition(16 * (fixed + PartitionRowBytes(128) + 256), 16, 128, fixed), 0u);
}

TEST(PartitionCapacityTest, MonotoneInTheBudget) {
  for (uint32_t row_floats : {8u, 128u, 193u}) {
    const uint64_t fixed = PartitionFixedBytes(16, row_floats == 8 ? 4096 : 0);
    uint32_t last = 0;
    for (uint64_t budget = 0; budget < (uint64_t{64} << 20); budget = budget * 5 / 4 + 4096) {
      const uint32_t rows = RowsPerPartition(budget, 4, row_floats, fixed);
      ASSERT_GE(rows, last) << "budget " << budget << ", rows of " << row_floats << " floats";
      last = rows;
    }
    EXPECT_GT(last, 0u);
  }
}

TEST(PartitionCapacityTest, MatchesThePreviousSizing) {
  // The store's sizing before this function existed gave these rows per
  // partition (EmbeddingStore Stats().max_rows_in_memory / partitions),
  // with a fixed cost of 1703 bytes a partition (hot-key capacity 16), plus
  // the admission tracker's reserve where admission was on.
  constexpr uint64_t kOldFixed = 1703;
  const uint64_t tracker = PartitionFixedBytes(16, 4096) - PartitionFixedBytes(16, 0);
  struct Case {
    uint64_t budget;
    uint32_t partitions, row_floats;
    bool admission;
    uint32_t rows;
  };
  const Case cases[] = {
      {1 << 20, 1, 8, false, 8178},                // SGD, dim 8
      {1 << 20, 1, 128, false, 1721},              // Adagrad, dim 64
      {64 << 20, 16, 128, false, 6895},            // 110320 rows in all
      {64 << 20, 16, 193, false, 4830},            // Adam, dim 64: 77280
      {64 << 20, 16, 128, true, 6666},             // with admission: 106656
      {uint64_t{1} << 30, 16, 256, false, 59917},  // Adagrad, dim 128: 958672
      {200000, 4, 16, false, 301},
      {5000, 1, 4, false, 29},
      {1000, 16, 193, false, 0},  // "need at least 44240 bytes"
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RowsPerPartition(c.budget, c.partitions, c.row_floats,
                               kOldFixed + (c.admission ? tracker : 0)),
              c.rows)
        << c.budget << " bytes, " << c.partitions << " partitions, rows of " << c.row_floats;
  }
  // The minimum the store's error message names.
  EXPECT_EQ(16 * (kOldFixed + PartitionRowBytes(193) + 256), 44240u);
}

// A partition filled to the row limit its budget gives stays within it.
TEST(PartitionCapacityTest, AFullPartitionFitsItsBudget) {
  MemSpillStore spill;
  for (uint64_t budget : {uint64_t{200} << 10, uint64_t{3} << 20}) {
    const uint64_t fixed = PartitionFixedBytes(16, 0);
    const uint32_t rows = RowsPerPartition(budget, 1, kRowFloats, fixed);
    ASSERT_GT(rows, 0u);
    auto part = MakePartition(rows, &spill);
    Partition& p = *part;
    MutexLock lock(&p.mu);
    p.BeginRequest();
    for (uint64_t key = 0; key < rows; ++key) ASSERT_GE(Admit(p, key), 0);
    EXPECT_EQ(p.num_slots, rows);
    EXPECT_LE(p.MemoryBytes(), budget) << rows << " rows";
    // Not far below it either (the index's capacity is a power of two).
    EXPECT_GT(p.MemoryBytes(), budget / 2) << rows << " rows";
  }
}

}  // namespace
}  // namespace vrec::ps
