// Google Benchmark kernels of the memory system: the floors a training
// step's parameter traffic is held to (docs/benchmarks.md, "Where a
// training step's time goes"):
//   build/benchmarks/memory_kernels [--benchmark_filter=BM_...]
// bytes_per_second counts the bytes each kernel must move (read + written),
// items_per_second rows.
//   * BM_StreamCopy / BM_StreamTriad: STREAM's copy (a[i] = b[i]) and triad
//     (a[i] = b[i] + s c[i]) over 256 MiB arrays, one thread: the
//     sequential bandwidth one core gets.
//   * BM_FirstTouch / BM_Retouch: writing a buffer just mapped (the kernel
//     faults and zeroes each page first; in a VM the host may back it too)
//     against writing one already resident: what a per-step buffer costs
//     when it is mapped afresh instead of reused.
//   * BM_RowGather / BM_RowGatherStreaming: random 1 KB rows (256 floats)
//     from a 2 GiB table into a batch matrix, with plain and with
//     non-temporal stores: a pull's server-side gather.
//   * BM_AdagradRows: Adagrad on random rows of 256 weights + 256
//     accumulators from a 2 GiB table, the gradient read from a batch
//     matrix: a push's server-side work (3 KB read, 2 KB written a row).
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/random.h"

namespace vrec {
namespace {

constexpr size_t kStreamFloats = size_t{64} << 20;  // 256 MiB
constexpr uint32_t kRowFloats = 256;                // a 1 KB row
constexpr size_t kTableRows = size_t{1} << 21;      // x 1 KB = 2 GiB (weights), x2 with state
constexpr int kBatchRows = 21000;                   // a paper-sized step's unique videos

float* Resident(size_t floats, float value) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, floats * sizeof(float)));
  for (size_t i = 0; i < floats; ++i) p[i] = value;
  return p;
}

void BM_StreamCopy(benchmark::State& state) {
  static float* a = Resident(kStreamFloats, 0.f);
  static float* b = Resident(kStreamFloats, 1.f);
  for (auto _ : state) {
    std::memcpy(a, b, kStreamFloats * sizeof(float));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * kStreamFloats * sizeof(float));
}
BENCHMARK(BM_StreamCopy)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StreamTriad(benchmark::State& state) {
  static float* a = Resident(kStreamFloats, 0.f);
  static float* b = Resident(kStreamFloats, 1.f);
  static float* c = Resident(kStreamFloats, 2.f);
  for (auto _ : state) {
    for (size_t i = 0; i < kStreamFloats; ++i) a[i] = b[i] + 0.5f * c[i];
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 3 * kStreamFloats * sizeof(float));
}
BENCHMARK(BM_StreamTriad)->Unit(benchmark::kMillisecond)->UseRealTime();

// A 32 MiB buffer (a step's pulled rows of one table), written once.
constexpr size_t kTouchBytes = size_t{32} << 20;

void BM_FirstTouch(benchmark::State& state) {
  for (auto _ : state) {
    void* p = mmap(nullptr, kTouchBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0);
    if (p == MAP_FAILED) {
      state.SkipWithError("mmap failed");
      break;
    }
    if (state.range(0) != 0) madvise(p, kTouchBytes, MADV_HUGEPAGE);
    std::memset(p, 1, kTouchBytes);
    benchmark::DoNotOptimize(p);
    munmap(p, kTouchBytes);
  }
  state.SetBytesProcessed(state.iterations() * kTouchBytes);
  state.SetLabel(state.range(0) != 0 ? "huge pages advised" : "4 KiB pages");
}
BENCHMARK(BM_FirstTouch)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Retouch(benchmark::State& state) {
  static char* p = reinterpret_cast<char*>(Resident(kTouchBytes / sizeof(float), 0.f));
  for (auto _ : state) {
    std::memset(p, 1, kTouchBytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kTouchBytes);
}
BENCHMARK(BM_Retouch)->Unit(benchmark::kMillisecond)->UseRealTime();

// The table: weights then accumulators per row (a PS row with Adagrad
// state), on huge pages where the kernel gives them.
float* Table() {
  static float* t = [] {
    const size_t bytes = kTableRows * 2 * kRowFloats * sizeof(float);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(p, bytes, MADV_HUGEPAGE);
    auto* f = static_cast<float*>(p);
    for (size_t i = 0; i < kTableRows * 2 * kRowFloats; ++i) f[i] = 0.1f;
    return f;
  }();
  return t;
}

std::vector<uint64_t> RandomRows(uint64_t seed) {
  Rng rng(seed);
  std::vector<uint64_t> rows(kBatchRows);
  for (auto& r : rows) r = rng.UniformInt(kTableRows);
  return rows;
}

void BM_RowGather(benchmark::State& state) {
  float* table = Table();
  const std::vector<uint64_t> rows = RandomRows(1);
  std::vector<float> out(static_cast<size_t>(kBatchRows) * kRowFloats);
  for (auto _ : state) {
    for (int i = 0; i < kBatchRows; ++i) {
      if (i + 8 < kBatchRows) __builtin_prefetch(table + rows[i + 8] * 2 * kRowFloats);
      std::memcpy(out.data() + static_cast<size_t>(i) * kRowFloats,
                  table + rows[i] * 2 * kRowFloats, kRowFloats * sizeof(float));
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatchRows);
  state.SetBytesProcessed(state.iterations() * kBatchRows * 2 * kRowFloats * sizeof(float));
}
BENCHMARK(BM_RowGather)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same gather with non-temporal stores (what the store's pull does into
// a worker's matrix): the destination is not read before it is written.
void BM_RowGatherStreaming(benchmark::State& state) {
  float* table = Table();
  const std::vector<uint64_t> rows = RandomRows(1);
  auto* out = static_cast<float*>(
      std::aligned_alloc(64, static_cast<size_t>(kBatchRows) * kRowFloats * sizeof(float)));
  for (auto _ : state) {
    for (int i = 0; i < kBatchRows; ++i) {
      if (i + 8 < kBatchRows) __builtin_prefetch(table + rows[i + 8] * 2 * kRowFloats);
      const float* src = table + rows[i] * 2 * kRowFloats;
      float* dst = out + static_cast<size_t>(i) * kRowFloats;
      for (uint32_t d = 0; d < kRowFloats; d += 16) {
        _mm512_stream_ps(dst + d, _mm512_loadu_ps(src + d));
      }
    }
    _mm_sfence();
    benchmark::ClobberMemory();
  }
  std::free(out);
  state.SetItemsProcessed(state.iterations() * kBatchRows);
  state.SetBytesProcessed(state.iterations() * kBatchRows * 2 * kRowFloats * sizeof(float));
}
BENCHMARK(BM_RowGatherStreaming)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AdagradRows(benchmark::State& state) {
  float* table = Table();
  const std::vector<uint64_t> rows = RandomRows(2);
  std::vector<float> grad(static_cast<size_t>(kBatchRows) * kRowFloats, 1e-3f);
  const float lr = 0.05f, eps = 1e-8f;
  for (auto _ : state) {
    for (int i = 0; i < kBatchRows; ++i) {
      if (i + 8 < kBatchRows) {
        __builtin_prefetch(table + rows[i + 8] * 2 * kRowFloats);
        __builtin_prefetch(table + rows[i + 8] * 2 * kRowFloats + kRowFloats);
      }
      float* w = table + rows[i] * 2 * kRowFloats;
      float* a = w + kRowFloats;
      const float* g = grad.data() + static_cast<size_t>(i) * kRowFloats;
      for (uint32_t d = 0; d < kRowFloats; ++d) {
        a[d] += g[d] * g[d];
        w[d] -= lr * g[d] / (std::sqrt(a[d]) + eps);
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatchRows);
  state.SetBytesProcessed(state.iterations() * kBatchRows * 5 * kRowFloats * sizeof(float));
}
BENCHMARK(BM_AdagradRows)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace vrec

BENCHMARK_MAIN();
