#include "ps/embedding_store.h"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/random.h"
#include "ps/initializer.h"
#include "ps/slot_router.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

using ::testing::ElementsAreArray;

TableConfig MakeTable(const std::string& name, uint32_t dim, OptimizerConfig::Kind opt,
                      InitializerConfig::Kind init = InitializerConfig::UNIFORM) {
  TableConfig t;
  t.set_name(name);
  t.set_dim(dim);
  t.mutable_initializer()->set_kind(init);
  t.mutable_initializer()->set_scale(0.1f);
  t.mutable_optimizer()->set_kind(opt);
  t.mutable_optimizer()->set_learning_rate(0.05f);
  t.mutable_optimizer()->set_l1(0.001f);
  return t;
}

std::vector<float> PullOne(EmbeddingStore& s, uint64_t key) {
  std::vector<float> out(s.dim());
  EXPECT_OK(s.Pull({key}, absl::MakeSpan(out)));
  return out;
}

// The rows the store should hold, computed without the store: initial
// weights and state, then the same optimizer applied in the same order.
class ReferenceTable {
 public:
  ReferenceTable(const TableConfig& t, uint64_t seed) : dim_(t.dim()) {
    init_ = *Initializer::Create(t.initializer(), seed, TableId(t.name()));
    opt_ = *Optimizer::Create(t.optimizer());
    row_floats_ = dim_ + opt_->StateFloats(dim_);
  }
  std::vector<float>& Row(uint64_t key) {
    auto it = rows_.find(key);
    if (it != rows_.end()) return it->second;
    std::vector<float> r(row_floats_);
    init_.InitRow(key, dim_, r.data());
    opt_->InitState(r.data(), dim_, r.data() + dim_);
    return rows_.emplace(key, std::move(r)).first->second;
  }
  void Push(uint64_t key, const float* g) {
    auto& r = Row(key);
    opt_->Apply(r.data(), r.data() + dim_, g, dim_);
  }
  const std::map<uint64_t, std::vector<float>>& rows() const { return rows_; }

 private:
  uint32_t dim_, row_floats_;
  Initializer init_ = *Initializer::Create(InitializerConfig(), 0, 0);
  std::unique_ptr<Optimizer> opt_;
  std::map<uint64_t, std::vector<float>> rows_;
};

// Pushes normal gradients drawn from `rng` for `keys` to the store and, if
// it takes them, to the reference.
Status PushRandom(EmbeddingStore& store, ReferenceTable& ref, const std::vector<uint64_t>& keys,
                  Rng& rng) {
  const uint32_t dim = store.dim();
  std::vector<float> g(keys.size() * dim);
  for (auto& x : g) x = static_cast<float>(rng.Normal());
  VREC_RETURN_IF_ERROR(store.Push(keys, g));
  for (size_t i = 0; i < keys.size(); ++i) ref.Push(keys[i], &g[dim * i]);
  return absl::OkStatus();
}

// The budgeted tests' store: table `t` in one partition over `spill`.
StatusOr<std::unique_ptr<EmbeddingStore>> OnePartitionStore(const TableConfig& t, SpillStore* spill,
                                                            uint64_t seed) {
  TableStoreOptions o;
  o.seed = seed;
  o.spill = spill;
  o.num_partitions = 1;
  return EmbeddingStore::FromConfig(t, o);
}

// Every live row of the store (memory, queue and disk), weights and state,
// equals the reference's, and there is one per reference row; `also` sees
// each row's metadata.
void ExpectRowsEqualReference(EmbeddingStore& store, const ReferenceTable& ref,
                              const std::function<void(uint64_t, const RowMeta&)>& also = {}) {
  size_t seen = 0;
  ASSERT_OK(store.ForEachRow([&](uint64_t key, const float* row, const RowMeta& meta) {
    ++seen;
    const auto& expect = ref.rows().at(key);
    EXPECT_EQ(std::memcmp(row, expect.data(), expect.size() * 4), 0) << "key " << key;
    if (also) also(key, meta);
  }));
  EXPECT_EQ(seen, ref.rows().size());
}

TEST(EmbeddingStoreTest, NewKeysPullTheInitializerValueOnAnyServer) {
  const TableConfig t = MakeTable("video", 16, OptimizerConfig::SGD);
  TableStoreOptions o;
  o.seed = 99;
  o.num_partitions = 4;
  ASSERT_OK_AND_ASSIGN(auto a, EmbeddingStore::FromConfig(t, o));
  o.num_partitions = 1;
  ASSERT_OK_AND_ASSIGN(auto b, EmbeddingStore::FromConfig(t, o));
  ASSERT_OK_AND_ASSIGN(Initializer init,
                       Initializer::Create(t.initializer(), 99, TableId("video")));
  std::vector<uint64_t> keys = {5, 1ull << 60, 17, 5, 0};
  std::vector<float> out_a(keys.size() * 16), out_b(keys.size() * 16);
  ASSERT_OK(a->Pull(keys, absl::MakeSpan(out_a)));
  // Store b sees the keys in the opposite order.
  std::vector<uint64_t> rev(keys.rbegin(), keys.rend());
  ASSERT_OK(b->Pull(rev, absl::MakeSpan(out_b)));
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<float> expect(16);
    init.InitRow(keys[i], 16, expect.data());
    EXPECT_EQ(std::vector<float>(out_a.begin() + 16 * i, out_a.begin() + 16 * (i + 1)), expect);
    const size_t j = keys.size() - 1 - i;
    EXPECT_EQ(std::vector<float>(out_b.begin() + 16 * j, out_b.begin() + 16 * (j + 1)), expect);
  }
  EXPECT_EQ(a->Stats().rows_in_memory, 4u);
  EXPECT_EQ(a->Stats().rows_created, 4u);
}

class EveryOptimizerTest : public ::testing::TestWithParam<OptimizerConfig::Kind> {};

TEST_P(EveryOptimizerTest, PushThenPullEqualsOptimizerApplied) {
  const TableConfig t = MakeTable("tok", 8, GetParam());
  TableStoreOptions o;
  o.seed = 3;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  EXPECT_EQ(store->RowFloats(), 8 + (*Optimizer::Create(t.optimizer()))->StateFloats(8));
  ReferenceTable ref(t, 3);
  Rng rng(testing::TestSeed(17));
  for (int step = 0; step < 50; ++step) {
    std::vector<uint64_t> keys;
    for (int i = 0; i < 20; ++i) keys.push_back(rng.UniformInt(30));  // with repeats
    ASSERT_OK(PushRandom(*store, ref, keys, rng));
  }
  for (const auto& [key, row] : ref.rows()) {
    EXPECT_THAT(PullOne(*store, key), ElementsAreArray(row.data(), 8)) << "key " << key;
  }
  // Weights and state together, through ForEachRow.
  ExpectRowsEqualReference(*store, ref,
                           [](uint64_t, const RowMeta& meta) { EXPECT_GT(meta.updates, 0u); });
}

INSTANTIATE_TEST_SUITE_P(All, EveryOptimizerTest,
                         ::testing::Values(OptimizerConfig::SGD, OptimizerConfig::ADAGRAD,
                                           OptimizerConfig::ADAM, OptimizerConfig::FTRL));

// Random pulls and pushes under a budget that holds a small fraction of the
// rows: every value must match an all-in-memory reference bit for bit, and
// the memory tier must stay within budget after every request.
TEST(EmbeddingStoreTest, SpillAndReloadLoseNoUpdateAndStayWithinBudget) {
  testing::ScratchDir dir;
  RocksSpillOptions ro;
  ro.path = dir.File("spill");
  ASSERT_OK_AND_ASSIGN(auto spill, RocksSpillStore::Open(ro));
  TableConfig t = MakeTable("video", 8, OptimizerConfig::ADAGRAD);
  const uint64_t budget = 24 << 10;
  t.mutable_storage()->set_memory_budget_bytes(budget);
  TableStoreOptions o;
  o.seed = 1;
  o.spill = spill.get();
  o.num_partitions = 4;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  const uint64_t max_rows = store->Stats().max_rows_in_memory;
  ASSERT_GT(max_rows, 20u);
  ASSERT_LT(max_rows, 200u);
  ReferenceTable ref(t, 1);
  Rng rng(testing::TestSeed(23));
  const uint64_t num_keys = 2000;
  for (int step = 0; step < 300; ++step) {
    std::vector<uint64_t> keys;
    const int n = 1 + rng.UniformInt(150);
    for (int i = 0; i < n; ++i) {
      // Half the traffic on a hot set, half spread: both hits and reloads.
      keys.push_back(rng.Bernoulli(0.5) ? rng.UniformInt(40) : rng.UniformInt(num_keys));
    }
    if (rng.Bernoulli(0.5)) {
      ASSERT_OK(PushRandom(*store, ref, keys, rng));
    } else {
      std::vector<float> out(keys.size() * 8);
      ASSERT_OK(store->Pull(keys, absl::MakeSpan(out)));
      for (size_t i = 0; i < keys.size(); ++i) {
        const auto& expect = ref.Row(keys[i]);
        ASSERT_EQ(std::memcmp(&out[8 * i], expect.data(), 32), 0)
            << "step " << step << " key " << keys[i];
      }
    }
    // Evicted rows are written in the background: in flight, their records
    // are held beyond the budget; once written, memory is within it. Every
    // tenth step is checked that way, the others leave writes in flight.
    if (step % 10 == 9) {
      store->WaitForSpillWrites();
      ASSERT_LE(store->MemoryBytes(), budget) << "step " << step;
    }
  }
  store->WaitForSpillWrites();
  const StoreStats st = store->Stats();
  EXPECT_GT(st.evictions, 100u);
  EXPECT_GT(st.disk_hits, 100u);
  EXPECT_GT(st.memory_bypasses, 100u);  // rows served from disk without entering memory
  EXPECT_LE(st.rows_in_memory, max_rows);
  EXPECT_EQ(st.rows_pending_spill, 0u);
  EXPECT_EQ(st.rows_in_memory + st.rows_disk_only, ref.rows().size());
  EXPECT_LT(st.MemoryHitRate(), 1.0);
  EXPECT_GT(st.MemoryHitRate(), 0.0);
  // Every row (weights and Adagrad state) from memory and disk.
  ExpectRowsEqualReference(*store, ref);
}

// Frequency-aware admission: a stream of rows seen once (a scan) does not
// push a frequently used set out of memory; the one-off rows are served from
// disk (and their updates kept, repeated keys in a request included).
TEST(EmbeddingStoreTest, FrequentRowsStayInMemoryWhileOneOffRowsPassThrough) {
  MemSpillStore spill;
  TableConfig t = MakeTable("video", 8, OptimizerConfig::ADAGRAD);
  t.mutable_storage()->set_memory_budget_bytes(32 << 10);
  ASSERT_OK_AND_ASSIGN(auto store, OnePartitionStore(t, &spill, 4));
  const uint64_t max_rows = store->Stats().max_rows_in_memory;
  ASSERT_GT(max_rows, 80u);
  ReferenceTable ref(t, 4);
  std::vector<uint64_t> hot;
  for (uint64_t k = 0; k < max_rows / 2; ++k) hot.push_back(k);
  Rng rng(testing::TestSeed(8));
  uint64_t next_cold = 1000000;
  uint64_t hot_misses = 0;
  for (int step = 0; step < 60; ++step) {
    // The hot rows, four times a step.
    for (int r = 0; r < 4; ++r) {
      std::vector<float> out(hot.size() * 8);
      const uint64_t disk_before = store->Stats().disk_hits;
      ASSERT_OK(store->Pull(hot, absl::MakeSpan(out)));
      if (step >= 10) hot_misses += store->Stats().disk_hits - disk_before;
    }
    // A scan of twice as many rows as memory holds (plain CLOCK would evict
    // every hot row), each key pushed twice in one request.
    std::vector<uint64_t> cold;
    for (uint64_t i = 0; i < 2 * max_rows; ++i) {
      cold.push_back(next_cold + i);
      cold.push_back(next_cold + i);
    }
    next_cold += 2 * max_rows;
    ASSERT_OK(PushRandom(*store, ref, cold, rng));
  }
  EXPECT_LE(hot_misses, 200 * hot.size() / 50) << "of " << 200 * hot.size() << " hot pulls";
  for (uint64_t k : hot) ref.Row(k);
  store->WaitForSpillWrites();
  const StoreStats st = store->Stats();
  EXPECT_GT(st.memory_bypasses, 50 * max_rows);
  EXPECT_EQ(st.rows_in_memory + st.rows_disk_only, ref.rows().size());
  ExpectRowsEqualReference(*store, ref, [](uint64_t key, const RowMeta& meta) {
    if (key >= 1000000) {
      EXPECT_EQ(meta.updates, 2u) << "key " << key;
    }
  });
}

// A request never evicts a row it asks for (the rows it asks for are pinned
// while it runs): when every resident row is in the request, the newcomers
// it brings are served from their records instead, and no update is lost,
// repeated keys included.
TEST(EmbeddingStoreTest, ARequestNeverEvictsRowsItAsksFor) {
  MemSpillStore spill;
  TableConfig t = MakeTable("video", 8, OptimizerConfig::ADAGRAD);
  t.mutable_storage()->set_memory_budget_bytes(16 << 10);
  ASSERT_OK_AND_ASSIGN(auto store, OnePartitionStore(t, &spill, 6));
  const uint64_t max_rows = store->Stats().max_rows_in_memory;
  ASSERT_GT(max_rows, 20u);
  ReferenceTable ref(t, 6);
  // Memory full of rows seen once; as many newcomers seen once (served
  // without entering memory: not more frequent than any resident row).
  std::vector<uint64_t> old_rows, newcomers;
  for (uint64_t k = 0; k < max_rows; ++k) old_rows.push_back(k);
  for (uint64_t k = 0; k < max_rows; ++k) newcomers.push_back(1000 + k);
  for (const auto* keys : {&old_rows, &newcomers}) {
    std::vector<float> out(keys->size() * 8);
    ASSERT_OK(store->Pull(*keys, absl::MakeSpan(out)));
    for (uint64_t k : *keys) ref.Row(k);
  }
  // One push of the newcomers (now seen twice: more frequent than the old
  // rows, so they would be admitted in their place), each twice, then every
  // old row, whichever of them is resident.
  std::vector<uint64_t> keys;
  for (uint64_t k : newcomers) keys.insert(keys.end(), {k, k});
  keys.insert(keys.end(), old_rows.begin(), old_rows.end());
  const StoreStats before = store->Stats();
  Rng rng(testing::TestSeed(12));
  ASSERT_OK(PushRandom(*store, ref, keys, rng));
  const StoreStats after = store->Stats();
  EXPECT_EQ(after.evictions, before.evictions);
  EXPECT_GE(after.memory_bypasses - before.memory_bypasses, max_rows / 2);
  store->WaitForSpillWrites();
  ExpectRowsEqualReference(*store, ref, [](uint64_t key, const RowMeta& meta) {
    EXPECT_EQ(meta.updates, key >= 1000 ? 2u : 1u) << "key " << key;
  });
}

// A row served from its spill record still counts as seen: with expiry, a
// row pulled every step never expires even if it never enters memory.
TEST(EmbeddingStoreTest, RowsServedFromDiskStayAliveUnderExpiry) {
  MemSpillStore spill;
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  t.mutable_storage()->set_expiry_steps(3);
  t.mutable_storage()->set_memory_budget_bytes(8 << 10);
  ASSERT_OK_AND_ASSIGN(auto store, OnePartitionStore(t, &spill, 0));
  const uint64_t max_rows = store->Stats().max_rows_in_memory;
  std::vector<uint64_t> hot;
  for (uint64_t k = 0; k < max_rows; ++k) hot.push_back(k);
  std::vector<float> out(hot.size() * 4);
  for (int i = 0; i < 20; ++i) ASSERT_OK(store->Pull(hot, absl::MakeSpan(out)));
  const uint64_t cold = 777;
  ASSERT_OK(store->Push({cold}, std::vector<float>(4, 1.0f)));
  const std::vector<float> pushed = PullOne(*store, cold);
  for (int step = 0; step < 10; ++step) {
    store->AdvanceStep(1);
    ASSERT_OK(store->Pull(hot, absl::MakeSpan(out)));  // keeps the hot rows in memory
    EXPECT_EQ(PullOne(*store, cold), pushed) << "step " << step;
  }
  EXPECT_GT(store->Stats().memory_bypasses, 5u);
  EXPECT_EQ(store->Stats().expiries, 0u);
}

TEST(EmbeddingStoreTest, BudgetTooSmallIsRejected) {
  MemSpillStore spill;
  TableConfig t = MakeTable("v", 64, OptimizerConfig::ADAM);
  t.mutable_storage()->set_memory_budget_bytes(1000);
  TableStoreOptions o;
  o.spill = &spill;
  EXPECT_THAT(EmbeddingStore::FromConfig(t, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "too small"));
  o.spill = nullptr;
  t.mutable_storage()->set_memory_budget_bytes(1 << 20);
  EXPECT_THAT(EmbeddingStore::FromConfig(t, o),
              StatusIs(absl::StatusCode::kInvalidArgument, "spill store"));
}

TEST(EmbeddingStoreTest, AdmissionAfterFSightings) {
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  t.mutable_storage()->set_admission_min_count(3);
  TableStoreOptions o;
  o.seed = 5;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  ReferenceTable ref(t, 5);
  const std::vector<float> init(ref.Row(7).begin(), ref.Row(7).begin() + 4);
  const std::vector<float> g = {1, 1, 1, 1};
  EXPECT_EQ(PullOne(*store, 7), init);  // sighting 1
  ASSERT_OK(store->Push({7}, g));       // not admitted: dropped
  EXPECT_EQ(PullOne(*store, 7), init);  // sighting 2
  EXPECT_EQ(store->Stats().rows_in_memory, 0u);
  EXPECT_EQ(store->Stats().pending_admission_keys, 1u);
  EXPECT_EQ(PullOne(*store, 7), init);  // sighting 3: admitted, created
  EXPECT_EQ(store->Stats().rows_in_memory, 1u);
  ASSERT_OK(store->Push({7}, g));
  ref.Push(7, g.data());
  EXPECT_EQ(PullOne(*store, 7), std::vector<float>(ref.Row(7).begin(), ref.Row(7).begin() + 4));
  const StoreStats st = store->Stats();
  EXPECT_EQ(st.dropped_pushes, 1u);
  EXPECT_EQ(st.admission_rejected_pulls, 2u);
  EXPECT_EQ(st.rows_created, 1u);
  EXPECT_EQ(st.pending_admission_keys, 0u);
}

TEST(EmbeddingStoreTest, AdmissionTrackerUnderPressureNeverAdmitsEarly) {
  TableConfig t = MakeTable("v", 2, OptimizerConfig::SGD);
  EmbeddingStoreOptions o;
  o.table_name = "v";
  o.dim = 2;
  o.optimizer = *Optimizer::Create(t.optimizer());
  o.init = [](uint64_t, float* w) { w[0] = w[1] = 0; };
  o.admission_min_count = 4;
  o.admission_tracker_capacity = 8;
  o.num_partitions = 1;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::Create(o));
  std::vector<float> out(2);
  for (int i = 0; i < 3; ++i) ASSERT_OK(store->Pull({1}, absl::MakeSpan(out)));
  // A flood of one-off keys ages the tracker.
  for (uint64_t k = 100; k < 200; ++k) ASSERT_OK(store->Pull({k}, absl::MakeSpan(out)));
  EXPECT_LE(store->Stats().pending_admission_keys, 8u);
  ASSERT_OK(store->Pull({1}, absl::MakeSpan(out)));  // 4th real sighting
  EXPECT_EQ(store->Stats().rows_created, 0u);
  for (int i = 0; i < 4; ++i) ASSERT_OK(store->Pull({1}, absl::MakeSpan(out)));
  EXPECT_EQ(store->Stats().rows_created, 1u);
}

TEST(EmbeddingStoreTest, ExpiryRemovesRowsUnseenForTSteps) {
  MemSpillStore spill;
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  t.mutable_storage()->set_expiry_steps(5);
  TableStoreOptions o;
  o.seed = 2;
  o.spill = &spill;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  ReferenceTable ref(t, 2);
  const std::vector<float> g = {1, 2, 3, 4};
  ASSERT_OK(store->Push({1, 2, 3}, std::vector<float>(12, 1.0f)));  // step 0
  ASSERT_OK(store->FlushAll());                                     // 1..3 now also on disk
  EXPECT_EQ(store->Stats().rows_on_disk, 3u);
  store->AdvanceStep(5);
  ASSERT_OK(store->Push({2}, g));  // step 5: touches key 2 only
  // At step 5 key 1 was last seen 5 steps ago: still alive.
  EXPECT_NE(PullOne(*store, 1), std::vector<float>(ref.Row(1).begin(), ref.Row(1).begin() + 4));
  store->AdvanceStep(1);  // step 6: key 3 (seen at 0) is gone; 1 seen at 5, 2 at 5
  EXPECT_EQ(PullOne(*store, 3), std::vector<float>(ref.Row(3).begin(), ref.Row(3).begin() + 4));
  store->AdvanceStep(10);  // step 16: everything seen at <= 6 expired
  ASSERT_OK_AND_ASSIGN(uint64_t removed, store->ExpireStale());
  EXPECT_EQ(removed, 3u);  // keys 1, 2 and the fresh 3
  const StoreStats st = store->Stats();
  EXPECT_EQ(st.rows_in_memory, 0u);
  EXPECT_EQ(st.rows_on_disk, 0u);
  EXPECT_EQ(spill.size(), 0u);
  EXPECT_EQ(st.expiries, 4u);
  int rows = 0;
  ASSERT_OK(store->ForEachRow([&](uint64_t, const float*, const RowMeta&) { ++rows; }));
  EXPECT_EQ(rows, 0);
}

TEST(EmbeddingStoreTest, ExpiryReachesSpilledRows) {
  MemSpillStore spill;
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  t.mutable_storage()->set_expiry_steps(2);
  t.mutable_storage()->set_memory_budget_bytes(8 << 10);
  ASSERT_OK_AND_ASSIGN(auto store, OnePartitionStore(t, &spill, 0));
  std::vector<uint64_t> old_keys;
  for (uint64_t k = 0; k < 500; ++k) old_keys.push_back(k);
  ASSERT_OK(store->Push(old_keys, std::vector<float>(500 * 4, 1.0f)));
  store->WaitForSpillWrites();
  EXPECT_GT(store->Stats().rows_disk_only, 300u);
  store->AdvanceStep(3);
  ASSERT_OK(store->Push({1000}, std::vector<float>(4, 1.0f)));  // fresh
  ASSERT_OK_AND_ASSIGN(uint64_t removed, store->ExpireStale());
  // The push above may already have dropped expired rows to make room.
  EXPECT_GT(removed, 300u);
  EXPECT_EQ(store->Stats().expiries, 500u);
  EXPECT_EQ(spill.size(), 0u);  // 1000 is resident and was never spilled
  EXPECT_EQ(store->Stats().rows_in_memory, 1u);
  EXPECT_EQ(store->Stats().rows_on_disk, 0u);
}

// A warm start from a model folder (weights only): imported rows read back
// as given, carry a fresh optimizer state, count as rows on disk and train
// on exactly as a row that started from those weights.
TEST(EmbeddingStoreTest, ImportedRowsStartFromTheirWeightsWithAFreshOptimizerState) {
  MemSpillStore spill;
  TableConfig t = MakeTable("v", 4, OptimizerConfig::ADAGRAD);
  t.mutable_storage()->set_expiry_steps(100);
  TableStoreOptions o;
  o.seed = 5;
  o.spill = &spill;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  store->AdvanceStep(7);
  const std::vector<uint64_t> keys = {3, 10, 11};
  std::vector<float> weights(12);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = 0.25f * static_cast<float>(i) - 1;
  ASSERT_OK(store->ImportRows(keys, weights));
  EXPECT_EQ(store->Stats().rows_on_disk, 3u);
  EXPECT_EQ(store->Stats().rows_in_memory, 0u);
  std::map<uint64_t, std::pair<std::vector<float>, RowMeta>> rows;
  ASSERT_OK(store->ForEachRow([&](uint64_t key, const float* row, const RowMeta& meta) {
    rows[key] = {std::vector<float>(row, row + store->RowFloats()), meta};
  }));
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_OK_AND_ASSIGN(auto opt, Optimizer::Create(t.optimizer()));
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<float> expected(weights.begin() + 4 * i, weights.begin() + 4 * (i + 1));
    expected.resize(store->RowFloats());
    opt->InitState(expected.data(), 4, expected.data() + 4);
    EXPECT_EQ(rows[keys[i]].first, expected) << "key " << keys[i];
    EXPECT_EQ(rows[keys[i]].second.last_seen_step, 7u);
    EXPECT_EQ(rows[keys[i]].second.updates, 1u);
    EXPECT_EQ(PullOne(*store, keys[i]), std::vector<float>(expected.begin(), expected.begin() + 4));
    // A push applies the optimizer from that state.
    const std::vector<float> g = {1, -2, 0.5f, 3};
    ASSERT_OK(store->Push({keys[i]}, g));
    opt->Apply(expected.data(), expected.data() + 4, g.data(), 4);
    EXPECT_EQ(PullOne(*store, keys[i]), std::vector<float>(expected.begin(), expected.begin() + 4));
  }
  // A key not imported still starts from the initializer.
  ReferenceTable ref(t, 5);
  EXPECT_EQ(PullOne(*store, 99), std::vector<float>(ref.Row(99).begin(), ref.Row(99).begin() + 4));
}

TEST(EmbeddingStoreTest, ImportRowsRefusesBadInput) {
  MemSpillStore spill;
  TableConfig t = MakeTable("v", 2, OptimizerConfig::SGD);
  TableStoreOptions o;
  o.spill = &spill;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  EXPECT_THAT(store->ImportRows({1, 2}, std::vector<float>(3, 0.0f)),
              StatusIs(absl::StatusCode::kInvalidArgument, "import of 2 keys with 3 weights"));
  EXPECT_THAT(store->ImportRows({1}, {0.0f, std::nanf("")}),
              StatusIs(absl::StatusCode::kInvalidArgument, "key 1's weight 1 is not finite"));
  PullOne(*store, 5);  // now resident
  EXPECT_THAT(store->ImportRows({5}, {0.0f, 0.0f}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "key 5 is resident"));
  TableStoreOptions no_spill;
  ASSERT_OK_AND_ASSIGN(auto memory_only, EmbeddingStore::FromConfig(t, no_spill));
  EXPECT_THAT(memory_only->ImportRows({1}, {0.0f, 0.0f}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "needs a spill store"));
}

TEST(EmbeddingStoreTest, FlushAllThenReopenRestoresEveryRow) {
  testing::ScratchDir dir;
  RocksSpillOptions ro;
  ro.path = dir.File("spill");
  TableConfig t = MakeTable("video", 8, OptimizerConfig::ADAM);
  ReferenceTable ref(t, 4);
  Rng rng(testing::TestSeed(31));
  {
    ASSERT_OK_AND_ASSIGN(auto spill, RocksSpillStore::Open(ro));
    TableStoreOptions o;
    o.seed = 4;
    o.spill = spill.get();
    ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
    for (int step = 0; step < 20; ++step) {
      std::vector<uint64_t> keys;
      for (int i = 0; i < 50; ++i) keys.push_back(rng.UniformInt(300));
      ASSERT_OK(PushRandom(*store, ref, keys, rng));
    }
    ASSERT_OK(store->FlushAll());
    EXPECT_EQ(store->Stats().rows_on_disk, ref.rows().size());
    EXPECT_EQ(store->Stats().rows_disk_only, 0u);
  }
  // A new process on the same disk: rows (with Adam state) come back.
  ASSERT_OK_AND_ASSIGN(auto spill, RocksSpillStore::Open(ro));
  TableStoreOptions o;
  o.seed = 4;
  o.spill = spill.get();
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  EXPECT_EQ(store->Stats().rows_on_disk, ref.rows().size());
  const uint64_t key = ref.rows().begin()->first;
  const std::vector<float> g(8, 0.5f);
  ASSERT_OK(store->Push({key}, g));
  ref.Push(key, g.data());
  EXPECT_THAT(PullOne(*store, key), ElementsAreArray(ref.Row(key).data(), 8));
  size_t seen = 0;
  ASSERT_OK(store->ForEachRow([&](uint64_t k, const float* row, const RowMeta&) {
    ++seen;
    EXPECT_EQ(std::memcmp(row, ref.rows().at(k).data(), store->RowFloats() * 4), 0);
  }));
  EXPECT_EQ(seen, ref.rows().size());
}

TEST(EmbeddingStoreTest, FailingSpillWritesLoseNothing) {
  MemSpillStore base;
  FaultySpillStore spill(&base);
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  t.mutable_storage()->set_memory_budget_bytes(4 << 10);
  ASSERT_OK_AND_ASSIGN(auto store, OnePartitionStore(t, &spill, 0));
  ReferenceTable ref(t, 0);
  auto push = [&](uint64_t first, uint64_t n) {
    std::vector<uint64_t> keys;
    for (uint64_t k = first; k < first + n; ++k) keys.push_back(k);
    std::vector<float> g(n * 4, 0.25f);
    Status s = store->Push(keys, g);
    if (s.ok()) {
      for (uint64_t k : keys) ref.Push(k, g.data());
    }
    return s;
  };
  ASSERT_OK(push(0, 100));
  spill.set_fail_writes(true);
  ASSERT_OK(push(100, 100));    // applied; its evictions stay queued
  store->WaitForSpillWrites();  // the background write fails
  EXPECT_EQ(store->Stats().spill_write_failures, 1u);
  EXPECT_GT(store->Stats().rows_pending_spill, 0u);
  EXPECT_THAT(push(200, 10), StatusIs(absl::StatusCode::kUnavailable, "injected"));
  spill.set_fail_writes(false);
  ASSERT_OK(push(0, 250));
  store->WaitForSpillWrites();
  EXPECT_EQ(store->Stats().rows_pending_spill, 0u);
  size_t seen = 0;
  ASSERT_OK(store->ForEachRow([&](uint64_t k, const float* row, const RowMeta&) {
    ++seen;
    EXPECT_EQ(std::memcmp(row, ref.rows().at(k).data(), 16), 0) << "key " << k;
  }));
  EXPECT_EQ(seen, ref.rows().size());
  spill.set_fail_reads(true);
  // All 250 keys: most are only on disk (the budget holds a few dozen rows).
  std::vector<uint64_t> all;
  for (uint64_t k = 0; k < 250; ++k) all.push_back(k);
  std::vector<float> out(all.size() * 4);
  EXPECT_THAT(store->Pull(all, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kUnavailable, "reading"));
}

// A spill store whose writes wait at a gate: while it is held, the
// background writer is stuck inside Write and the records it carries stay
// in flight, so tests can act on them; Let(n) lets n writes through.
class GatedSpillStore : public SpillStore {
 public:
  explicit GatedSpillStore(SpillStore* base) : base_(base) {}
  // Returns how many writes have arrived so far.
  int Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    allowed_ = arrived_;
    return arrived_;
  }
  void Let(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    allowed_ += n;
    cv_.notify_all();
  }
  void Open() { Let(1 << 30); }
  // Until `n` writes have reached the gate / have been applied.
  void WaitForArrived(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return arrived_ >= n; });
  }
  void WaitForLanded(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return landed_ >= n; });
  }
  Status Write(const SpillBatch& batch) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      const int me = arrived_++;
      cv_.notify_all();
      cv_.wait(lock, [&] { return me < allowed_; });
    }
    Status s = base_->Write(batch);
    std::lock_guard<std::mutex> lock(mu_);
    ++landed_;
    cv_.notify_all();
    return s;
  }
  Status MultiGet(const std::vector<std::string>& keys,
                  std::vector<std::optional<std::string>>* values) override {
    return base_->MultiGet(keys, values);
  }
  Status Scan(const std::string& prefix,
              const std::function<bool(const std::string&, const std::string&)>& fn) override {
    return base_->Scan(prefix, fn);
  }
  std::string Describe() const override { return "gated " + base_->Describe(); }

 private:
  SpillStore* const base_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0, allowed_ = 1 << 30, landed_ = 0;
};

// Records on their way to disk are the rows' newest state: while the first
// write job is stuck, later requests read rows from it, update them, evict
// them again (superseding it, in the jobs behind it) and pull them back;
// when the first job lands, its superseded records must not shadow the
// newer ones still in flight. Every value matches the reference throughout,
// and once everything lands the disk and the counters agree with it.
TEST(EmbeddingStoreTest, RecordsInFlightAreReadAndSupersededWithoutLoss) {
  MemSpillStore base;
  GatedSpillStore spill(&base);
  TableConfig t = MakeTable("v", 4, OptimizerConfig::ADAGRAD);
  t.mutable_storage()->set_memory_budget_bytes(6 << 10);
  TableStoreOptions o;
  o.seed = 3;
  o.spill = &spill;
  o.num_partitions = 1;
  o.max_spill_jobs_in_flight = 1000;  // nobody waits for the stuck write
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  ReferenceTable ref(t, 3);
  Rng rng(testing::TestSeed(41));
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 300; ++k) keys.push_back(k);
  auto push = [&](const std::vector<uint64_t>& ks) {
    std::vector<float> g(ks.size() * 4);
    for (auto& x : g) x = static_cast<float>(rng.Normal());
    ASSERT_OK(store->Push(ks, g));
    for (size_t i = 0; i < ks.size(); ++i) ref.Push(ks[i], &g[4 * i]);
  };
  auto pull_and_check = [&](const std::vector<uint64_t>& ks, const char* when) {
    std::vector<float> out(ks.size() * 4);
    ASSERT_OK(store->Pull(ks, absl::MakeSpan(out)));
    for (size_t i = 0; i < ks.size(); ++i) {
      ASSERT_EQ(std::memcmp(&out[4 * i], ref.Row(ks[i]).data(), 16), 0)
          << when << ": key " << ks[i];
    }
  };
  ASSERT_EQ(spill.Hold(), 0);
  push(keys);  // evicts most of them: one job, stuck at the gate
  spill.WaitForArrived(1);
  EXPECT_GT(store->Stats().rows_pending_spill, 200u);
  pull_and_check(keys, "in flight");
  push(keys);  // read from the stuck job, updated, evicted again
  push({7, 7, 250, 7});
  pull_and_check(keys, "superseded");
  EXPECT_EQ(base.size(), 0u);  // nothing has landed yet
  spill.Let(1);                // the first job lands; the second waits at the gate
  spill.WaitForLanded(1);
  spill.WaitForArrived(2);
  pull_and_check(keys, "first job landed");
  spill.Open();
  store->WaitForSpillWrites();
  pull_and_check(keys, "landed");
  store->WaitForSpillWrites();
  const StoreStats st = store->Stats();
  EXPECT_EQ(st.rows_pending_spill, 0u);
  EXPECT_EQ(st.rows_on_disk, base.size());
  EXPECT_EQ(st.rows_in_memory + st.rows_disk_only, ref.rows().size());
  EXPECT_LE(store->MemoryBytes(), uint64_t{6 << 10});
  ExpectRowsEqualReference(*store, ref);
  ASSERT_OK(store->FlushAll());
  EXPECT_EQ(base.size(), ref.rows().size());
  EXPECT_EQ(store->Stats().rows_on_disk, ref.rows().size());
}

// A row whose record is in flight can expire: the record is dropped and
// its deletion queued behind it, so once everything lands the row is gone
// from disk too, and a later access sees a fresh row.
TEST(EmbeddingStoreTest, RowsExpiringWhileTheirRecordIsInFlightAreGoneForGood) {
  MemSpillStore base;
  GatedSpillStore spill(&base);
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  t.mutable_storage()->set_memory_budget_bytes(4 << 10);
  t.mutable_storage()->set_expiry_steps(2);
  TableStoreOptions o;
  o.seed = 4;
  o.spill = &spill;
  o.num_partitions = 1;
  o.max_spill_jobs_in_flight = 1000;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  std::vector<uint64_t> old_keys, new_keys;
  for (uint64_t k = 0; k < 200; ++k) old_keys.push_back(k);
  for (uint64_t k = 1000; k < 1100; ++k) new_keys.push_back(k);
  ASSERT_OK(store->Push(old_keys, std::vector<float>(200 * 4, 1.0f)));
  ASSERT_OK(store->Push({5}, std::vector<float>(4, 1.0f)));  // key 5 resident again
  store->WaitForSpillWrites();
  const int before = spill.Hold();
  ASSERT_OK(store->Push(new_keys, std::vector<float>(100 * 4, 1.0f)));  // evicts old rows
  spill.WaitForArrived(before + 1);
  store->AdvanceStep(3);  // every row above is now expired
  ReferenceTable fresh(t, 4);
  std::vector<float> out(old_keys.size() * 4);
  ASSERT_OK(store->Pull(old_keys, absl::MakeSpan(out)));  // in flight, on disk or resident
  for (size_t i = 0; i < old_keys.size(); ++i) {
    ASSERT_EQ(std::memcmp(&out[4 * i], fresh.Row(old_keys[i]).data(), 16), 0)
        << "key " << old_keys[i] << " is not fresh";
  }
  // Recreated rows are evicted again while the deletion of their old record
  // is still in flight: their new records land after it.
  std::vector<uint64_t> flood;
  for (uint64_t k = 2000; k < 2300; ++k) flood.push_back(k);
  ASSERT_OK(store->Push(flood, std::vector<float>(flood.size() * 4, 0.5f)));
  for (uint64_t k : flood) fresh.Push(k, std::vector<float>(4, 0.5f).data());
  spill.Open();
  store->WaitForSpillWrites();
  // The new keys expired too; the 200 rows just recreated and the flood live.
  ASSERT_OK_AND_ASSIGN(uint64_t removed, store->ExpireStale());
  EXPECT_EQ(store->Stats().expiries, 300u);
  EXPECT_LE(removed, 100u);
  ExpectRowsEqualReference(*store, fresh);
  EXPECT_EQ(store->Stats().rows_on_disk, base.size());
  ASSERT_OK(store->FlushAll());
  EXPECT_EQ(base.size(), 500u);
  EXPECT_EQ(store->Stats().rows_on_disk, 500u);
}

// Rows never updated are spilled as a 24-byte header and read back as the
// initializer's values; rows updated later are spilled whole again.
TEST(EmbeddingStoreTest, NeverUpdatedRowsSpillAsHeadersAndReadBackExactly) {
  MemSpillStore spill;
  TableConfig t = MakeTable("video", 8, OptimizerConfig::ADAGRAD);
  t.mutable_storage()->set_memory_budget_bytes(16 << 10);
  ASSERT_OK_AND_ASSIGN(auto store, OnePartitionStore(t, &spill, 6));
  ReferenceTable ref(t, 6);
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 1000; ++k) keys.push_back(k);
  std::vector<float> out(keys.size() * 8);
  ASSERT_OK(store->Pull(keys, absl::MakeSpan(out)));  // created, never updated
  ASSERT_OK(store->Push({3, 500}, std::vector<float>(16, 0.5f)));
  ref.Push(3, std::vector<float>(8, 0.5f).data());
  ref.Push(500, std::vector<float>(8, 0.5f).data());
  ASSERT_OK(store->FlushAll());
  size_t headers = 0, whole = 0;
  ASSERT_OK(
      spill.Scan(SpillPrefix(TableId("video")), [&](const std::string& k, const std::string& v) {
        const uint64_t key = SpillKeyRowKey(k);
        if (key == 3 || key == 500) {
          EXPECT_GT(v.size(), 24u) << "key " << key;
        } else {
          EXPECT_EQ(v.size(), 24u) << "key " << key;
        }
        ++(v.size() == 24 ? headers : whole);
        return true;
      }));
  EXPECT_EQ(headers, 998u);
  EXPECT_EQ(whole, 2u);
  // Read back (through memory and through records served without admission),
  // pushed again, and visited by ForEachRow: all equal the reference.
  ASSERT_OK(store->Pull(keys, absl::MakeSpan(out)));
  for (uint64_t k : keys) {
    ASSERT_EQ(std::memcmp(&out[8 * k], ref.Row(k).data(), 32), 0) << "key " << k;
  }
  std::vector<float> g(keys.size() * 8, -0.25f);
  ASSERT_OK(store->Push(keys, g));
  for (uint64_t k : keys) ref.Push(k, &g[8 * k]);
  ASSERT_EQ(ref.rows().size(), keys.size());
  ExpectRowsEqualReference(*store, ref, [](uint64_t key, const RowMeta& meta) {
    EXPECT_EQ(meta.updates, key == 3 || key == 500 ? 2u : 1u) << "key " << key;
  });
}

TEST(EmbeddingStoreTest, CorruptSpillRecordIsDataLossNamingTheKey) {
  MemSpillStore spill;
  TableConfig t = MakeTable("video", 4, OptimizerConfig::SGD);
  TableStoreOptions o;
  o.spill = &spill;
  SpillBatch b;
  b.puts = {{SpillKey(TableId("video"), 42), "garbage"}};
  // Well-formed headers with bad contents: a whole record with an unknown
  // flag (43), a whole record flagged as an untouched row (44), a header
  // alone without that flag (45), and an untouched-row header that counts
  // updates (46).
  auto record = [](size_t floats_stored, uint32_t flags, uint32_t updates) {
    std::string v(24 + 4 * floats_stored, '\0');
    const uint32_t magic = 0x31575256, floats = 4;  // SGD: no state floats
    std::memcpy(v.data(), &magic, 4);
    std::memcpy(v.data() + 4, &floats, 4);
    std::memcpy(v.data() + 16, &updates, 4);
    std::memcpy(v.data() + 20, &flags, 4);
    return v;
  };
  b.puts.push_back({SpillKey(TableId("video"), 43), record(4, 2, 1)});
  b.puts.push_back({SpillKey(TableId("video"), 44), record(4, 1, 0)});
  b.puts.push_back({SpillKey(TableId("video"), 45), record(0, 0, 0)});
  b.puts.push_back({SpillKey(TableId("video"), 46), record(0, 1, 3)});
  b.puts.push_back({SpillKey(TableId("video"), 47), record(4, 0, 1)});  // a good one
  ASSERT_OK(spill.Write(b));
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  std::vector<float> out(8);
  EXPECT_THAT(store->Pull({41, 42}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kDataLoss, "key 42"));
  for (uint64_t key : {43, 44, 45, 46}) {
    EXPECT_THAT(store->Pull({key}, absl::MakeSpan(out).subspan(0, 4)),
                StatusIs(absl::StatusCode::kDataLoss, absl::StrCat("key ", key)));
  }
  ASSERT_OK(store->Pull({47}, absl::MakeSpan(out).subspan(0, 4)));
  EXPECT_THAT(std::vector<float>(out.begin(), out.begin() + 4), ElementsAreArray({0, 0, 0, 0}));
}

// An untouched row's 24-byte record stands for "the initializer's values";
// read by a table whose initializer differs (another seed), it is refused.
TEST(EmbeddingStoreTest, UntouchedRowRecordsAreRefusedUnderAnotherInitializer) {
  MemSpillStore spill;
  TableConfig t = MakeTable("video", 4, OptimizerConfig::ADAGRAD);
  TableStoreOptions o;
  o.spill = &spill;
  o.seed = 1;
  {
    ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
    std::vector<float> out(4);
    ASSERT_OK(store->Pull({7}, absl::MakeSpan(out)));
    ASSERT_OK(store->FlushAll());
  }
  {  // same initializer: reads back
    ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
    std::vector<float> out(4);
    ASSERT_OK(store->Pull({7}, absl::MakeSpan(out)));
  }
  o.seed = 2;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  std::vector<float> out(4);
  EXPECT_THAT(store->Pull({7}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kDataLoss, "another initializer"));
}

TEST(EmbeddingStoreTest, BadRequestsAreRejectedBeforeAnythingIsApplied) {
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, {}));
  std::vector<float> out(7);
  EXPECT_THAT(store->Pull({1, 2}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, "needs 8 output floats"));
  std::vector<float> g(8, 1.0f);
  g[6] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(store->Push({1, 9}, g),
              StatusIs(absl::StatusCode::kInvalidArgument, "key index 1 (key 9)"));
  EXPECT_EQ(store->Stats().rows_in_memory, 0u);
}

// Rows at positions of a caller's matrix (in-process requests): a pull
// writes each key's row at its place, a push reads each gradient from its
// place, and a non-finite gradient anywhere (here in a 300-float row, past
// the vectorised blocks) refuses the push before anything is applied.
TEST(EmbeddingStoreTest, RowsAtPositionsOfTheCallersMatrix) {
  constexpr uint32_t kDim = 300;
  TableConfig t = MakeTable("v", kDim, OptimizerConfig::SGD);
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, {}));
  const std::vector<uint64_t> keys = {5, 6, 7};
  const std::vector<uint32_t> positions = {3, 0, 1};  // row 2 is not addressed
  std::vector<float> matrix(4 * kDim, -9.f);
  ASSERT_OK(store->PullRows(keys, positions, matrix.data()));
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::vector<float> want = PullOne(*store, keys[i]);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), matrix.begin() + positions[i] * kDim))
        << "key " << keys[i];
  }
  EXPECT_EQ(matrix[2 * kDim], -9.f);
  std::vector<float> grads(4 * kDim);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.01f * static_cast<float>(i / kDim + 1);
  grads[2 * kDim + 299] = std::numeric_limits<float>::infinity();  // unaddressed: not read
  ASSERT_OK(store->PushRows(keys, positions, grads.data()));
  for (size_t i = 0; i < keys.size(); ++i) {
    // SGD (learning rate from MakeTable): w = before - lr g.
    const std::vector<float> after = PullOne(*store, keys[i]);
    const float g = 0.01f * static_cast<float>(positions[i] + 1);
    EXPECT_NEAR(after[0], matrix[positions[i] * kDim] - t.optimizer().learning_rate() * g, 1e-6)
        << "key " << keys[i];
  }
  const std::vector<float> before5 = PullOne(*store, 5), before6 = PullOne(*store, 6);
  grads[0 * kDim + 299] = std::numeric_limits<float>::quiet_NaN();  // key 6's row, last float
  EXPECT_THAT(store->PushRows(keys, positions, grads.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, "key index 1 (key 6), element 299"));
  EXPECT_EQ(PullOne(*store, 5), before5);  // key 5 comes first: nothing was applied
  EXPECT_EQ(PullOne(*store, 6), before6);
  EXPECT_THAT(store->PullRows(keys, {0, 1}, matrix.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, "2 positions for 3 keys"));
}

TEST(EmbeddingStoreTest, DenseTableBlocksMatchTheWholeVector) {
  TableConfig t = MakeTable("tower", 0, OptimizerConfig::SGD, InitializerConfig::GLOROT_UNIFORM);
  t.set_dense(true);
  t.set_dense_size(1000);
  TableStoreOptions o;
  o.seed = 8;
  o.dense_block_floats = 128;
  o.glorot_fan_in = 40;
  o.glorot_fan_out = 25;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  ASSERT_EQ(store->dim(), 128u);
  std::vector<float> blocks(8 * 128);
  ASSERT_OK(store->Pull({0, 1, 2, 3, 4, 5, 6, 7}, absl::MakeSpan(blocks)));
  ASSERT_OK_AND_ASSIGN(Initializer init,
                       Initializer::Create(t.initializer(), 8, TableId("tower"), 40, 25));
  std::vector<float> whole(1000);
  init.InitDense(0, 1000, whole.data());
  EXPECT_EQ(std::vector<float>(blocks.begin(), blocks.begin() + 1000), whole);
  EXPECT_EQ(std::vector<float>(blocks.begin() + 1000, blocks.end()), std::vector<float>(24, 0.0f));
}

TEST(EmbeddingStoreTest, StatsReportHotKeysAndRates) {
  TableConfig t = MakeTable("v", 4, OptimizerConfig::SGD);
  TableStoreOptions o;
  o.num_partitions = 4;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  const StoreStats before = store->Stats();
  Rng rng(testing::TestSeed(41));
  std::vector<float> out(100 * 4);
  for (int r = 0; r < 50; ++r) {
    std::vector<uint64_t> keys;
    for (int i = 0; i < 100; ++i) keys.push_back(i % 3 == 0 ? 424242 : rng.UniformInt(100000));
    ASSERT_OK(store->Pull(keys, absl::MakeSpan(out)));
  }
  absl::SleepFor(absl::Milliseconds(5));
  const StoreStats after = store->Stats();
  ASSERT_FALSE(after.hot_keys.empty());
  EXPECT_EQ(after.hot_keys[0].key, 424242u);
  EXPECT_NEAR(after.hot_keys[0].count, 50 * 34, 50 * 34 * 0.2);
  EXPECT_EQ(after.pull_requests, 50u);
  EXPECT_EQ(after.pull_keys, 5000u);
  const StoreRates rates = RatesBetween(before, after);
  EXPECT_GT(rates.pull_keys_per_s, 0);
  EXPECT_NEAR(rates.pull_keys_per_s / rates.pull_requests_per_s, 100, 1e-6);
  EXPECT_EQ(rates.push_requests_per_s, 0);
}

// 4 threads pull and push overlapping keys while another flushes, expires
// and reads stats, under a budget small enough to spill constantly. SGD with
// lr 1 and small integer gradients on zero-initialised rows is exact in
// float, so the final weights must equal minus the sum of all gradients,
// whatever the interleaving. Run over RocksDB and over the in-memory spill
// store (the latter has no uninstrumented code for TSan to be blind in).
class HammerTest : public ::testing::TestWithParam<bool> {};

TEST_P(HammerTest, ConcurrentHammerKeepsEveryUpdate) {
  testing::ScratchDir dir;
  std::unique_ptr<SpillStore> spill;
  if (GetParam()) {
    RocksSpillOptions ro;
    ro.path = dir.File("spill");
    ASSERT_OK_AND_ASSIGN(spill, RocksSpillStore::Open(ro));
  } else {
    spill = std::make_unique<MemSpillStore>();
  }
  TableConfig t = MakeTable("v", 8, OptimizerConfig::SGD, InitializerConfig::ZEROS);
  t.mutable_optimizer()->set_learning_rate(1.0f);
  t.mutable_storage()->set_memory_budget_bytes(16 << 10);
  TableStoreOptions o;
  o.spill = spill.get();
  o.num_partitions = 8;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  const uint64_t seed = testing::TestSeed(51);
  constexpr int kThreads = 4, kKeys = 600, kRounds = 150;
  std::vector<std::vector<int64_t>> sums(kThreads, std::vector<int64_t>(kKeys * 8, 0));
  std::atomic<bool> failed{false}, done{false};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      Rng rng(seed, th);
      for (int r = 0; r < kRounds && !failed; ++r) {
        std::vector<uint64_t> keys;
        const int n = 1 + rng.UniformInt(64);
        for (int i = 0; i < n; ++i) keys.push_back(rng.UniformInt(kKeys));
        std::vector<float> buf(keys.size() * 8);
        if (rng.Bernoulli(0.6)) {
          for (size_t i = 0; i < buf.size(); ++i) {
            const int g = static_cast<int>(rng.UniformInt(7)) - 3;
            buf[i] = static_cast<float>(g);
            sums[th][keys[i / 8] * 8 + i % 8] += g;
          }
          if (!store->Push(keys, buf).ok()) failed = true;
        } else if (!store->Pull(keys, absl::MakeSpan(buf)).ok()) {
          failed = true;
        }
        if (store->MemoryBytes() > (16 << 10) + 64 * 8 * 100) failed = true;  // transient slack
      }
    });
  }
  std::thread observer([&] {
    while (!done) {
      if (!store->FlushAll().ok()) failed = true;
      const StoreStats st = store->Stats();
      if (st.rows_in_memory > st.max_rows_in_memory) failed = true;
      store->AdvanceStep();
      std::this_thread::yield();
    }
  });
  for (auto& th : threads) th.join();
  done = true;
  observer.join();
  ASSERT_FALSE(failed);
  // Records in flight count on top of the budget until their jobs land.
  store->WaitForSpillWrites();
  EXPECT_LE(store->MemoryBytes(), uint64_t{16 << 10});
  std::vector<float> out(kKeys * 8);
  std::vector<uint64_t> all(kKeys);
  for (int k = 0; k < kKeys; ++k) all[k] = k;
  ASSERT_OK(store->Pull(all, absl::MakeSpan(out)));
  for (int i = 0; i < kKeys * 8; ++i) {
    int64_t total = 0;
    for (int th = 0; th < kThreads; ++th) total += sums[th][i];
    ASSERT_EQ(out[i], static_cast<float>(-total)) << "key " << i / 8 << " coord " << i % 8;
  }
  EXPECT_GT(store->Stats().evictions, 0u);
}

INSTANTIATE_TEST_SUITE_P(Spill, HammerTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "RocksDB" : "Memory"; });

}  // namespace
}  // namespace vrec::ps
