// Throughput of EmbeddingStore Pull/Push in memory: 10k unique keys per
// request, 64-float rows, Adagrad. A measurement, not a pass/fail check:
// skipped unless VREC_PS_BENCH=1. Prints one JSON line per figure:
//   VREC_PS_BENCH=1 ./build/tests/ps_test --gtest_filter='StoreThroughput*'
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "common/random.h"
#include "common/run_info.h"
#include "ps/embedding_store.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

TEST(StoreThroughputTest, PullPush10kKeys64Floats) {
  if (std::getenv("VREC_PS_BENCH") == nullptr) GTEST_SKIP() << "set VREC_PS_BENCH=1 to measure";
  TableConfig t;
  t.set_name("video");
  t.set_dim(64);
  t.mutable_initializer()->set_kind(InitializerConfig::UNIFORM);
  t.mutable_initializer()->set_scale(0.05f);
  t.mutable_optimizer()->set_kind(OptimizerConfig::ADAGRAD);
  t.mutable_optimizer()->set_learning_rate(0.05f);
  TableStoreOptions o;
  ASSERT_OK_AND_ASSIGN(auto store, EmbeddingStore::FromConfig(t, o));
  const uint64_t num_rows = 1 << 20;  // 1M rows x 128 floats = 512 MB
  {
    std::vector<uint64_t> keys(10000);
    std::vector<float> out(keys.size() * 64);
    for (uint64_t base = 0; base < num_rows; base += keys.size()) {
      for (size_t i = 0; i < keys.size(); ++i) keys[i] = base + i;
      ASSERT_OK(store->Pull(keys, absl::MakeSpan(out)));
    }
  }
  Rng rng(1);
  const int kRequests = 100;
  std::vector<std::vector<uint64_t>> batches(kRequests);
  for (auto& b : batches) {
    b.resize(10000);
    for (auto& k : b) k = rng.UniformInt(num_rows);  // (nearly) unique
  }
  std::vector<float> buf(10000 * 64, 0.01f);
  // Baseline in the same run (the machine is shared; absolute figures
  // drift): a plain gather of the same rows from a flat array of the same
  // footprint (1M x 128 floats), no hashing, no locks.
  double gather_keys_per_s = 0;
  {
    std::vector<float> flat(num_rows * 128, 1.0f);
    const auto start = std::chrono::steady_clock::now();
    for (const auto& b : batches) {
      for (size_t i = 0; i < b.size(); ++i) {
        std::memcpy(&buf[i * 64], &flat[b[i] * 128], 64 * sizeof(float));
      }
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    gather_keys_per_s = kRequests * 10000 / s;
    ASSERT_EQ(buf[0], 1.0f);
  }
  for (const char* op : {"pull", "push"}) {
    const auto start = std::chrono::steady_clock::now();
    for (const auto& b : batches) {
      if (std::string(op) == "pull") {
        ASSERT_OK(store->Pull(b, absl::MakeSpan(buf)));
      } else {
        std::fill(buf.begin(), buf.end(), 0.01f);
        ASSERT_OK(store->Push(b, buf));
      }
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double keys_per_s = kRequests * 10000 / s;
    PrintBenchResult("ps_store_" + std::string(op),
                     {{"keys_per_s", keys_per_s},
                      {"value_gb_per_s", keys_per_s * 64 * 4 / 1e9},
                      {"flat_gather_keys_per_s", gather_keys_per_s},
                      {"ratio_to_flat_gather", keys_per_s / gather_keys_per_s},
                      {"batch_keys", 10000},
                      {"dim", 64},
                      {"rows", num_rows},
                      {"threads", 1}});
  }
}

}  // namespace
}  // namespace vrec::ps

namespace vrec::ps {
namespace {

// Zipf(1.1) pulls and pushes against a store whose budget holds ~40% of the
// rows (the rest spilled to RocksDB), compared with the same load on an
// all-in-memory store in the same run. The target for the full-size setup
// (8M x 128 floats, 6 GB) is a ratio >= 0.5.
TEST(StoreThroughputTest, ZipfUnderBudgetVersusAllInMemory) {
  if (std::getenv("VREC_PS_BENCH") == nullptr) GTEST_SKIP() << "set VREC_PS_BENCH=1 to measure";
  testing::ScratchDir dir;
  RocksSpillOptions ro;
  ro.path = dir.File("spill");
  ASSERT_OK_AND_ASSIGN(auto spill, RocksSpillStore::Open(ro));
  TableConfig t;
  t.set_name("video");
  t.set_dim(64);
  t.mutable_initializer()->set_kind(InitializerConfig::UNIFORM);
  t.mutable_initializer()->set_scale(0.05f);
  t.mutable_optimizer()->set_kind(OptimizerConfig::ADAGRAD);
  t.mutable_optimizer()->set_learning_rate(0.05f);
  const uint64_t num_rows = 1 << 19;
  const uint64_t row_cost = 128 * 4 + 80;  // row + metadata + index, roughly
  TableStoreOptions in_memory_options;
  TableStoreOptions budget_options;
  budget_options.spill = spill.get();
  budget_options.memory_budget_bytes = num_rows * row_cost * 4 / 10;
  ASSERT_OK_AND_ASSIGN(auto all, EmbeddingStore::FromConfig(t, in_memory_options));
  ASSERT_OK_AND_ASSIGN(auto budgeted, EmbeddingStore::FromConfig(t, budget_options));
  // Zipf(1.1) by inversion of the CDF; ranks scattered over the key space.
  std::vector<double> cdf(num_rows);
  double sum = 0;
  for (uint64_t i = 0; i < num_rows; ++i) cdf[i] = (sum += std::pow(i + 1.0, -1.1));
  Rng rng(2);
  auto batch = [&] {
    std::vector<uint64_t> keys(10000);
    for (auto& k : keys) {
      const uint64_t rank =
          std::lower_bound(cdf.begin(), cdf.end(), rng.Uniform() * sum) - cdf.begin();
      k = Mix64(rank);
    }
    std::sort(keys.begin(), keys.end());  // the worker sends unique keys
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    return keys;
  };
  std::vector<float> buf(10000 * 64, 0.001f);
  // Touch every row once so both stores hold the whole table.
  for (uint64_t base = 0; base < num_rows; base += 10000) {
    std::vector<uint64_t> keys;
    for (uint64_t r = base; r < std::min(num_rows, base + 10000); ++r) keys.push_back(Mix64(r));
    ASSERT_OK(all->Pull(keys, absl::MakeSpan(buf.data(), keys.size() * 64)));
    ASSERT_OK(budgeted->Pull(keys, absl::MakeSpan(buf.data(), keys.size() * 64)));
  }
  std::vector<std::vector<uint64_t>> batches;
  for (int i = 0; i < 60; ++i) batches.push_back(batch());
  auto run = [&](EmbeddingStore& s) {
    uint64_t keys = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& b : batches) {
      EXPECT_OK(s.Pull(b, absl::MakeSpan(buf.data(), b.size() * 64)));
      EXPECT_OK(s.Push(b, absl::MakeConstSpan(buf.data(), b.size() * 64)));
      keys += 2 * b.size();
    }
    return keys / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  run(*budgeted);  // warm the memory tier with the hot set
  run(*all);       // and the caches, for a fair comparison
  const double budgeted_keys_per_s = run(*budgeted);
  const double all_keys_per_s = run(*all);
  const StoreStats st = budgeted->Stats();
  PrintBenchResult("ps_store_zipf_budget", {{"keys_per_s", budgeted_keys_per_s},
                                            {"all_in_memory_keys_per_s", all_keys_per_s},
                                            {"ratio", budgeted_keys_per_s / all_keys_per_s},
                                            {"memory_hit_rate", st.MemoryHitRate()},
                                            {"rows", num_rows},
                                            {"rows_in_memory", st.rows_in_memory},
                                            {"unique_keys_per_batch", batches[0].size()},
                                            {"budget_bytes", budget_options.memory_budget_bytes}});
}

}  // namespace
}  // namespace vrec::ps
