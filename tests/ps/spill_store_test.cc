#include "ps/spill_store.h"

#include <fstream>
#include <memory>
#include <set>

#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

// The same contract for every implementation.
void ExerciseContract(SpillStore* store) {
  SpillBatch b;
  b.puts = {{SpillKey(1, 5), "five"}, {SpillKey(1, 6), "six"}, {SpillKey(2, 5), "other"}};
  ASSERT_OK(store->Write(b));
  std::vector<std::optional<std::string>> v;
  ASSERT_OK(store->MultiGet({SpillKey(1, 5), SpillKey(1, 7), SpillKey(2, 5)}, &v));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "five");
  EXPECT_FALSE(v[1].has_value());
  EXPECT_EQ(v[2], "other");

  SpillBatch d;
  d.deletes = {SpillKey(1, 5)};
  d.puts = {{SpillKey(1, 6), "SIX"}};
  ASSERT_OK(store->Write(d));
  std::vector<std::pair<uint64_t, std::string>> scanned;
  ASSERT_OK(store->Scan(SpillPrefix(1), [&](const std::string& k, const std::string& val) {
    scanned.emplace_back(SpillKeyRowKey(k), val);
    return true;
  }));
  ASSERT_EQ(scanned.size(), 1u);
  EXPECT_EQ(scanned[0].first, 6u);
  EXPECT_EQ(scanned[0].second, "SIX");
}

TEST(SpillKeyTest, OrderedByTableThenKey) {
  EXPECT_LT(SpillKey(1, ~0ull), SpillKey(2, 0));
  EXPECT_LT(SpillKey(1, 255), SpillKey(1, 256));
  EXPECT_EQ(SpillKeyRowKey(SpillKey(9, 0x0123456789abcdefULL)), 0x0123456789abcdefULL);
  EXPECT_EQ(SpillKey(3, 4).substr(0, 8), SpillPrefix(3));
}

TEST(SpillStoreTest, MemContract) {
  MemSpillStore store;
  ExerciseContract(&store);
  EXPECT_EQ(store.size(), 2u);
}

TEST(SpillStoreTest, RocksContractAndReopen) {
  testing::ScratchDir dir;
  RocksSpillOptions o;
  o.path = dir.File("db");
  {
    ASSERT_OK_AND_ASSIGN(auto store, RocksSpillStore::Open(o));
    ExerciseContract(store.get());
  }
  ASSERT_OK_AND_ASSIGN(auto again, RocksSpillStore::Open(o));
  std::vector<std::optional<std::string>> v;
  ASSERT_OK(again->MultiGet({SpillKey(1, 6)}, &v));
  EXPECT_EQ(v[0], "SIX");  // the DB is reopened, not recreated
  again.reset();
  o.destroy_existing = true;
  ASSERT_OK_AND_ASSIGN(auto fresh, RocksSpillStore::Open(o));
  ASSERT_OK(fresh->MultiGet({SpillKey(1, 6)}, &v));
  EXPECT_FALSE(v[0].has_value());
}

// Rows are hashed by their whole key in RocksDB's memtable (spill_store.cc):
// a scan must still see a table's keys in key order and only them, from the
// memtable and from files alike.
TEST(SpillStoreTest, RocksScanIsInKeyOrderAcrossMemtableAndFiles) {
  testing::ScratchDir dir;
  RocksSpillOptions o;
  o.path = dir.File("db");
  ASSERT_OK_AND_ASSIGN(auto store, RocksSpillStore::Open(o));
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 3000; ++k) keys.push_back(k * 7919 % 100003);
  std::set<uint64_t> expect;
  for (size_t part = 0; part < 2; ++part) {  // the first half ends up in a file
    SpillBatch b;
    for (size_t i = part * 1500; i < (part + 1) * 1500; ++i) {
      const uint64_t table = 1 + keys[i] % 3;
      b.puts.emplace_back(SpillKey(table, keys[i]), std::to_string(keys[i]));
      if (table == 2) expect.insert(keys[i]);
    }
    ASSERT_OK(store->Write(b));
    if (part == 0) ASSERT_OK(store->Checkpoint(dir.File("cp")));  // flushes the memtable
  }
  std::vector<uint64_t> scanned;
  ASSERT_OK(store->Scan(SpillPrefix(2), [&](const std::string& k, const std::string& v) {
    EXPECT_EQ(SpillKeyTableId(k), 2u);
    EXPECT_EQ(v, std::to_string(SpillKeyRowKey(k)));
    scanned.push_back(SpillKeyRowKey(k));
    return true;
  }));
  EXPECT_EQ(scanned, std::vector<uint64_t>(expect.begin(), expect.end()));
}

// RocksDB's own memory (outside the memory tier's budget) is visible: the
// memtable holds what was written, and a flushed file's index and filter
// stay in memory.
TEST(SpillStoreTest, RocksMemoryBytesCountsMemtablesAndTableReaders) {
  testing::ScratchDir dir;
  RocksSpillOptions o;
  o.path = dir.File("db");
  ASSERT_OK_AND_ASSIGN(auto store, RocksSpillStore::Open(o));
  const uint64_t empty = store->MemoryBytes();
  SpillBatch b;
  for (uint64_t k = 0; k < 2000; ++k) b.puts.emplace_back(SpillKey(1, k), std::string(1024, 'x'));
  ASSERT_OK(store->Write(b));
  EXPECT_GE(store->MemoryBytes(), empty + 2000 * 1024);
  ASSERT_OK(store->Checkpoint(dir.File("cp")));  // flushes the memtable into a file
  const uint64_t flushed = store->MemoryBytes();
  EXPECT_GT(flushed, 0u);
  EXPECT_LT(flushed, empty + 2000 * 1024);  // the rows left the memtable
}

TEST(SpillStoreTest, RocksDestroyExistingCreatesMissingParents) {
  testing::ScratchDir dir;
  RocksSpillOptions o;
  o.path = dir.File("not/yet/there/db");
  o.destroy_existing = true;
  ASSERT_OK_AND_ASSIGN(auto store, RocksSpillStore::Open(o));
  ExerciseContract(store.get());
}

TEST(SpillStoreTest, RocksOpenErrorNamesPath) {
  testing::ScratchDir dir;
  std::ofstream(dir.File("file")) << "not a folder";
  RocksSpillOptions o;
  o.path = dir.File("file/db");
  auto store = RocksSpillStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), ::testing::HasSubstr(dir.File("file")));
}

TEST(SpillStoreTest, FaultyFailsWhenTold) {
  MemSpillStore base;
  FaultySpillStore faulty(&base);
  SpillBatch b;
  b.puts = {{SpillKey(1, 1), "x"}};
  faulty.set_fail_writes(true);
  EXPECT_THAT(faulty.Write(b), StatusIs(absl::StatusCode::kUnavailable, "injected"));
  EXPECT_EQ(base.size(), 0u);
  faulty.set_fail_writes(false);
  ASSERT_OK(faulty.Write(b));
  faulty.set_fail_reads(true);
  std::vector<std::optional<std::string>> v;
  EXPECT_THAT(faulty.MultiGet({SpillKey(1, 1)}, &v),
              StatusIs(absl::StatusCode::kUnavailable, "injected"));
}

}  // namespace
}  // namespace vrec::ps
