// Google Benchmark kernels of one EmbeddingStore, in memory and under a
// budget (no transport; `vrec bench ps` measures the server end to end):
//   build/benchmarks/ps_store_kernels [--benchmark_filter=BM_Store...]
//       [--benchmark_format=json]
// items_per_second counts keys served. Compare in the same run:
//   * BM_StorePull / BM_StorePush (10k unique keys a request, 64-float rows,
//     Adagrad, 1M rows) against BM_FlatGather, a plain gather of the same
//     rows from a flat array of the same footprint (no hashing, no locks);
//   * BM_StoreZipfUnderBudget (Zipf(1.1) pulls and pushes, a budget of ~40%
//     of the rows, the rest spilled to RocksDB) against
//     BM_StoreZipfAllInMemory, the same load on an all-in-memory store (the
//     target for the full-size setup, 8M x 128 floats, is a ratio >= 0.5).
// The stores are built once per process (1M rows: ~0.5 GB).
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/random.h"
#include "common/run_info.h"
#include "absl/container/flat_hash_map.h"
#include "glog/logging.h"
#include "ps/embedding_store.h"
#include "ps/spill_store.h"

namespace vrec::ps {
namespace {

constexpr uint32_t kDim = 64;
constexpr size_t kBatch = 10000;
constexpr uint64_t kUniformRows = 1 << 20;  // x 128 floats = 512 MB
constexpr uint64_t kZipfRows = 1 << 19;

TableConfig VideoTable() {
  TableConfig t;
  t.set_name("video");
  t.set_dim(kDim);
  t.mutable_initializer()->set_kind(InitializerConfig::UNIFORM);
  t.mutable_initializer()->set_scale(0.05f);
  t.mutable_optimizer()->set_kind(OptimizerConfig::ADAGRAD);
  t.mutable_optimizer()->set_learning_rate(0.05f);
  return t;
}

// 100 requests of 10k (nearly) unique keys, uniform over kUniformRows.
const std::vector<std::vector<uint64_t>>& UniformBatches() {
  static const auto* batches = [] {
    auto* b = new std::vector<std::vector<uint64_t>>(100);
    Rng rng(1);
    for (auto& keys : *b) {
      keys.resize(kBatch);
      for (auto& k : keys) k = rng.UniformInt(kUniformRows);
    }
    return b;
  }();
  return *batches;
}

// An all-in-memory store holding every row of kUniformRows.
EmbeddingStore& UniformStore() {
  static EmbeddingStore* store = [] {
    auto s = EmbeddingStore::FromConfig(VideoTable(), TableStoreOptions{});
    CHECK(s.ok()) << s.status();
    std::vector<uint64_t> keys(kBatch);
    std::vector<float> out(kBatch * kDim);
    for (uint64_t base = 0; base < kUniformRows; base += kBatch) {
      for (size_t i = 0; i < kBatch; ++i) keys[i] = base + i;
      CHECK(s.value()->Pull(keys, absl::MakeSpan(out)).ok());
    }
    return s.value().release();
  }();
  return *store;
}

void BM_StorePull(benchmark::State& state) {
  EmbeddingStore& store = UniformStore();
  const auto& batches = UniformBatches();
  std::vector<float> buf(kBatch * kDim);
  size_t next = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    const Status s = store.Pull(keys, absl::MakeSpan(buf));
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * kDim * sizeof(float));
}
BENCHMARK(BM_StorePull)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StorePush(benchmark::State& state) {
  EmbeddingStore& store = UniformStore();
  const auto& batches = UniformBatches();
  const std::vector<float> grads(kBatch * kDim, 0.01f);
  size_t next = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    const Status s = store.Push(keys, grads);
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * kDim * sizeof(float));
}
BENCHMARK(BM_StorePush)->Unit(benchmark::kMillisecond)->UseRealTime();

// The baseline of BM_StorePull: the same rows gathered from a flat array of
// the store's footprint (1M rows of 128 floats).
void BM_FlatGather(benchmark::State& state) {
  const auto& batches = UniformBatches();
  std::vector<float> flat(kUniformRows * 2 * kDim, 1.0f);
  std::vector<float> buf(kBatch * kDim);
  size_t next = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    for (size_t i = 0; i < keys.size(); ++i) {
      std::memcpy(&buf[i * kDim], &flat[keys[i] * 2 * kDim], kDim * sizeof(float));
    }
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * kDim * sizeof(float));
}
BENCHMARK(BM_FlatGather)->Unit(benchmark::kMillisecond)->UseRealTime();

// The paper-sized tables of `vrec bench train`: 256-float rows with their
// Adagrad state (2 KB a row), 1M rows, requests of 23k unique keys (one
// table's share of a step). BM_StorePaperPull / BM_StorePaperPush against
// BM_FlatPaperGather / BM_FlatPaperAdagrad, the same work on a flat array
// of the same footprint: what the store's index, metadata and locking cost
// beyond the memory traffic itself (BM_FlatPaperGatherIndexed adds a hash
// index lookup a key to the flat gather).
constexpr uint32_t kPaperDim = 256;
constexpr size_t kPaperBatch = 23000;
constexpr uint64_t kPaperRows = 1 << 20;

const std::vector<std::vector<uint64_t>>& PaperBatches() {
  static const auto* batches = [] {
    auto* b = new std::vector<std::vector<uint64_t>>(40);
    Rng rng(3);
    for (auto& keys : *b) {
      keys.resize(kPaperBatch);
      for (auto& k : keys) k = rng.UniformInt(kPaperRows);
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      std::shuffle(keys.begin(), keys.end(), std::mt19937_64(keys.size()));
    }
    return b;
  }();
  return *batches;
}

EmbeddingStore& PaperStore() {
  static EmbeddingStore* store = [] {
    TableConfig t = VideoTable();
    t.set_dim(kPaperDim);
    auto s = EmbeddingStore::FromConfig(t, TableStoreOptions{});
    CHECK(s.ok()) << s.status();
    std::vector<uint64_t> keys(kPaperBatch);
    std::vector<float> out(kPaperBatch * kPaperDim);
    for (uint64_t base = 0; base < kPaperRows; base += kPaperBatch) {
      keys.clear();
      for (uint64_t k = base; k < std::min(kPaperRows, base + kPaperBatch); ++k) keys.push_back(k);
      CHECK(s.value()->Pull(keys, absl::MakeSpan(out.data(), keys.size() * kPaperDim)).ok());
    }
    return s.value().release();
  }();
  return *store;
}

float* PaperFlat() {
  static float* flat = [] {
    auto* f = static_cast<float*>(std::aligned_alloc(2 << 20, kPaperRows * 2 * kPaperDim * 4));
    madvise(f, kPaperRows * 2 * kPaperDim * 4, MADV_HUGEPAGE);
    for (size_t i = 0; i < kPaperRows * 2 * kPaperDim; ++i) f[i] = i % (2 * kPaperDim) < kPaperDim ? 0.01f : 0.1f;
    return f;
  }();
  return flat;
}

void BM_StorePaperPull(benchmark::State& state) {
  EmbeddingStore& store = PaperStore();
  const auto& batches = PaperBatches();
  std::vector<float> buf(kPaperBatch * kPaperDim);
  size_t next = 0, keys_served = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    const Status s = store.Pull(keys, absl::MakeSpan(buf.data(), keys.size() * kPaperDim));
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    keys_served += keys.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(keys_served));
}
BENCHMARK(BM_StorePaperPull)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StorePaperPush(benchmark::State& state) {
  EmbeddingStore& store = PaperStore();
  const auto& batches = PaperBatches();
  const std::vector<float> grads(kPaperBatch * kPaperDim, 0.001f);
  size_t next = 0, keys_served = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    const Status s = store.Push(keys, absl::MakeConstSpan(grads.data(), keys.size() * kPaperDim));
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    keys_served += keys.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(keys_served));
}
BENCHMARK(BM_StorePaperPush)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_FlatPaperGather(benchmark::State& state) {
  const auto& batches = PaperBatches();
  float* flat = PaperFlat();
  std::vector<float> buf(kPaperBatch * kPaperDim);
  size_t next = 0, keys_served = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i + 8 < keys.size()) {
        const char* r = reinterpret_cast<const char*>(flat + keys[i + 8] * 2 * kPaperDim);
        for (int b = 0; b < 1024; b += 64) __builtin_prefetch(r + b);
      }
      std::memcpy(&buf[i * kPaperDim], flat + keys[i] * 2 * kPaperDim, kPaperDim * sizeof(float));
    }
    benchmark::DoNotOptimize(buf.data());
    keys_served += keys.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(keys_served));
}
BENCHMARK(BM_FlatPaperGather)->Unit(benchmark::kMillisecond)->UseRealTime();


void BM_FlatPaperGatherIndexed(benchmark::State& state) {
  const auto& batches = PaperBatches();
  float* flat = PaperFlat();
  static auto* index = [] {
    auto* m = new absl::flat_hash_map<uint64_t, uint32_t>();
    m->reserve(kPaperRows);
    for (uint64_t k = 0; k < kPaperRows; ++k) (*m)[Mix64(k)] = static_cast<uint32_t>(k);
    return m;
  }();
  std::vector<float> buf(kPaperBatch * kPaperDim);
  size_t next = 0, keys_served = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    const size_t n = keys.size();
    for (size_t i = 0; i < std::min<size_t>(32, n); ++i) index->prefetch(Mix64(keys[i]));
    uint32_t slots[64];
    for (size_t i = 0; i < std::min<size_t>(8, n); ++i) slots[i % 64] = index->find(Mix64(keys[i]))->second;
    for (size_t i = 0; i < n; ++i) {
      if (i + 32 < n) index->prefetch(Mix64(keys[i + 32]));
      if (i + 8 < n) {
        const uint32_t s = index->find(Mix64(keys[i + 8]))->second;
        slots[(i + 8) % 64] = s;
        const char* r = reinterpret_cast<const char*>(flat + size_t{s} * 2 * kPaperDim);
        for (int b = 0; b < 1024; b += 64) __builtin_prefetch(r + b);
      }
      std::memcpy(&buf[i * kPaperDim], flat + size_t{slots[i % 64]} * 2 * kPaperDim,
                  kPaperDim * sizeof(float));
    }
    benchmark::DoNotOptimize(buf.data());
    keys_served += n;
  }
  state.SetItemsProcessed(static_cast<int64_t>(keys_served));
}
BENCHMARK(BM_FlatPaperGatherIndexed)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_FlatPaperAdagrad(benchmark::State& state) {
  const auto& batches = PaperBatches();
  float* flat = PaperFlat();
  const std::vector<float> grads(kPaperBatch * kPaperDim, 0.001f);
  size_t next = 0, keys_served = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i + 6 < keys.size()) {
        const char* r = reinterpret_cast<const char*>(flat + keys[i + 6] * 2 * kPaperDim);
        for (int b = 0; b < 2048; b += 64) __builtin_prefetch(r + b);
      }
      float* w = flat + keys[i] * 2 * kPaperDim;
      float* acc = w + kPaperDim;
      const float* g = &grads[i * kPaperDim];
      for (uint32_t d = 0; d < kPaperDim; ++d) {
        acc[d] += g[d] * g[d];
        w[d] -= 0.05f * g[d] / std::sqrt(acc[d] + 1e-10f);
      }
    }
    benchmark::DoNotOptimize(flat);
    keys_served += keys.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(keys_served));
}
BENCHMARK(BM_FlatPaperAdagrad)->Unit(benchmark::kMillisecond)->UseRealTime();

// Zipf(1.1) over kZipfRows ranks scattered over the key space; 60 requests,
// each deduplicated as a worker sends them.
const std::vector<std::vector<uint64_t>>& ZipfBatches() {
  static const auto* batches = [] {
    std::vector<double> cdf(kZipfRows);
    double sum = 0;
    for (uint64_t i = 0; i < kZipfRows; ++i) cdf[i] = (sum += std::pow(i + 1.0, -1.1));
    Rng rng(2);
    auto* b = new std::vector<std::vector<uint64_t>>(60);
    for (auto& keys : *b) {
      keys.resize(kBatch);
      for (auto& k : keys) {
        const uint64_t rank =
            std::lower_bound(cdf.begin(), cdf.end(), rng.Uniform() * sum) - cdf.begin();
        k = Mix64(rank);
      }
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    }
    return b;
  }();
  return *batches;
}

// A store holding every row of kZipfRows, under a budget of ~40% of them
// (spilling to RocksDB in a scratch directory) or all in memory.
EmbeddingStore& ZipfStore(bool budgeted) {
  static SpillStore* spill = [] {
    const std::string dir = (std::filesystem::temp_directory_path() /
                             ("ps_store_kernels." + std::to_string(::getpid())))
                                .string();
    std::filesystem::remove_all(dir);
    RocksSpillOptions ro;
    ro.path = dir;
    auto s = RocksSpillStore::Open(ro);
    CHECK(s.ok()) << s.status();
    std::atexit([] {
      std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                  ("ps_store_kernels." + std::to_string(::getpid())));
    });
    return s.value().release();
  }();
  auto build = [](bool with_budget) {
    TableStoreOptions o;
    if (with_budget) {
      const uint64_t row_cost = 128 * 4 + 80;  // row + metadata + index, roughly
      o.spill = spill;
      o.memory_budget_bytes = kZipfRows * row_cost * 4 / 10;
    }
    auto s = EmbeddingStore::FromConfig(VideoTable(), o);
    CHECK(s.ok()) << s.status();
    std::vector<float> buf(kBatch * kDim);
    std::vector<uint64_t> keys;
    for (uint64_t base = 0; base < kZipfRows; base += kBatch) {
      keys.clear();
      for (uint64_t r = base; r < std::min(kZipfRows, base + kBatch); ++r) keys.push_back(Mix64(r));
      CHECK(s.value()->Pull(keys, absl::MakeSpan(buf.data(), keys.size() * kDim)).ok());
    }
    return s.value().release();
  };
  static EmbeddingStore* in_budget = build(true);
  static EmbeddingStore* in_memory = build(false);
  return budgeted ? *in_budget : *in_memory;
}

// A pull then a push of each Zipf request; items are keys pulled + pushed.
void ZipfPullPush(benchmark::State& state, bool budgeted) {
  EmbeddingStore& store = ZipfStore(budgeted);
  const auto& batches = ZipfBatches();
  std::vector<float> buf(kBatch * kDim, 0.001f);
  // Warm the memory tier with the hot set (and the caches).
  for (const auto& keys : batches) {
    CHECK(store.Pull(keys, absl::MakeSpan(buf.data(), keys.size() * kDim)).ok());
  }
  size_t next = 0;
  int64_t keys_served = 0;
  for (auto _ : state) {
    const auto& keys = batches[next++ % batches.size()];
    const size_t n = keys.size() * kDim;
    Status s = store.Pull(keys, absl::MakeSpan(buf.data(), n));
    if (s.ok()) s = store.Push(keys, absl::MakeConstSpan(buf.data(), n));
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    keys_served += 2 * keys.size();
  }
  state.SetItemsProcessed(keys_served);
  state.counters["memory_hit_rate"] = store.Stats().MemoryHitRate();
}

void BM_StoreZipfUnderBudget(benchmark::State& state) { ZipfPullPush(state, true); }
BENCHMARK(BM_StoreZipfUnderBudget)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StoreZipfAllInMemory(benchmark::State& state) { ZipfPullPush(state, false); }
BENCHMARK(BM_StoreZipfAllInMemory)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace vrec::ps

int main(int argc, char** argv) {
  // The commit and the machine, as every benchmark line carries them.
  const nlohmann::json info = vrec::RunInfo();
  for (const auto& [key, value] : info.items()) {
    benchmark::AddCustomContext(key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
