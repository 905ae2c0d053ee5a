#include "common/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace vrec {
namespace {

constexpr size_t kPageBytes = 4096;

size_t RoundUp(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

}  // namespace

void* AllocateHuge(size_t bytes) {
  // Cache-line aligned, so that callers may lay out 64-byte blocks.
  if (bytes < kHugePageBytes) return std::aligned_alloc(64, RoundUp(bytes == 0 ? 1 : bytes, 64));
  if (bytes > SIZE_MAX - 2 * kHugePageBytes) return nullptr;
  const size_t len = RoundUp(bytes, kPageBytes);
  auto map = [](size_t n) {
    void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? nullptr : m;
  };
  // Usually the kernel places a new mapping right below the last one, so
  // blocks that are whole numbers of huge pages come back aligned: keep
  // those as they are (adjacent blocks then merge into one mapping).
  void* p = map(len);
  if (p == nullptr) return nullptr;
  if (reinterpret_cast<uintptr_t>(p) % kHugePageBytes != 0) {
    // Otherwise map 2 MiB more than needed, then unmap the slack before the
    // first 2 MiB boundary and after the block, so the block starts on a
    // huge page.
    munmap(p, len);
    const size_t span = len + kHugePageBytes;
    void* raw = map(span);
    if (raw == nullptr) return nullptr;
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = RoundUp(start, kHugePageBytes);
    if (aligned > start) munmap(raw, aligned - start);
    const uintptr_t end = aligned + len;
    if (start + span > end) munmap(reinterpret_cast<void*>(end), start + span - end);
    p = reinterpret_cast<void*>(aligned);
  }
#ifdef MADV_HUGEPAGE
  (void)madvise(p, len, MADV_HUGEPAGE);  // advice: without THP, 4 KiB pages
#endif
  return p;
}

void FreeHuge(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kHugePageBytes) {
    std::free(p);
    return;
  }
  munmap(p, RoundUp(bytes, kPageBytes));
}

}  // namespace vrec
