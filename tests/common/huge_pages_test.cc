#include "common/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace vrec {
namespace {

// The smaps block of the mapping that contains `p` ("" if none).
std::string SmapsOf(const void* p) {
  std::ifstream in("/proc/self/smaps");
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  std::string line, block;
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find('-')) {
      if (inside) return block;
      inside = lo <= addr && addr < hi;
      block.clear();
    }
    if (inside) block += line + "\n";
  }
  return inside ? block : "";
}

// Whether this process can have transparent huge pages at all: the kernel
// has them, they are not `never`, and no parent turned them off for us
// (prctl PR_SET_THP_DISABLE, inherited; /proc/self/status "THP_enabled: 0").
bool TransparentHugePagesAvailable() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  if (s.str().find("[never]") != std::string::npos) return false;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("THP_enabled:", 0) == 0) return line.find('0') == std::string::npos;
  }
  return true;
}

TEST(HugePagesTest, SmallBlocksComeFromMallocCacheLineAligned) {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{100}, size_t{4096}, kHugePageBytes - 1}) {
    void* p = AllocateHuge(bytes);
    ASSERT_NE(p, nullptr) << bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << bytes;
    std::memset(p, 0xab, bytes);
    FreeHuge(p, bytes);
  }
  FreeHuge(nullptr, 10);  // a no-op, like free(nullptr)
}

TEST(HugePagesTest, LargeBlocksAreZeroedAlignedAndAdvised) {
  const size_t bytes = 5 * kHugePageBytes + 12345;  // not a multiple of either page size
  auto* p = static_cast<unsigned char*>(AllocateHuge(bytes));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageBytes, 0u);
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(p[i], 0) << i;
  EXPECT_EQ(p[bytes - 1], 0);
  std::memset(p, 0x5a, bytes);  // every byte is ours
  EXPECT_EQ(p[bytes - 1], 0x5a);
  const std::string smaps = SmapsOf(p);
  ASSERT_FALSE(smaps.empty());
  // The mapping holds the whole block (the kernel may merge it with a
  // neighbour advised the same way, so it can be larger) ...
  unsigned long lo = 0, hi = 0;
  ASSERT_EQ(std::sscanf(smaps.c_str(), "%lx-%lx", &lo, &hi), 2);
  EXPECT_LE(lo, reinterpret_cast<uintptr_t>(p));
  EXPECT_GE(hi, reinterpret_cast<uintptr_t>(p) + bytes);
  // ... and advised for huge pages: VmFlags "hg" (madvise(MADV_HUGEPAGE)
  // applied) and, where the kernel reports it, eligible. The kernel may still
  // back it with small pages when it has no free 2 MiB page; the advice is
  // what we control.
  if (TransparentHugePagesAvailable()) {
    const size_t flags = smaps.find("VmFlags:");
    ASSERT_NE(flags, std::string::npos);
    EXPECT_NE(smaps.find(" hg", flags), std::string::npos) << smaps;
    if (const size_t at = smaps.find("THPeligible:"); at != std::string::npos) {
      int eligible = -1;
      std::sscanf(smaps.c_str() + at, "THPeligible: %d", &eligible);
      EXPECT_EQ(eligible, 1) << smaps;
    }
  }
  FreeHuge(p, bytes);
  EXPECT_TRUE(SmapsOf(p).empty()) << "unmapped";
}

TEST(HugePagesTest, ManyBlocksAreAlignedDistinctAndFreed) {
  // Whole huge pages (the arena's chunk size for power-of-two rows) and odd
  // sizes, interleaved: every block aligned, writable and its own.
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  for (int i = 0; i < 40; ++i) {
    const size_t bytes = i % 2 == 0 ? kHugePageBytes : kHugePageBytes + 772 * (i + 1);
    auto* p = static_cast<unsigned char*>(AllocateHuge(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageBytes, 0u) << i;
    std::memset(p, i + 1, bytes);
    blocks.emplace_back(p, bytes);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto [p, bytes] = blocks[i];
    ASSERT_EQ(p[0], i + 1);
    ASSERT_EQ(p[bytes - 1], i + 1) << "blocks overlap";
    FreeHuge(p, bytes);
  }
}

TEST(HugePagesTest, AllocatorServesVectorsAndHashMaps) {
  std::vector<uint64_t, HugePageAllocator<uint64_t>> v;
  for (uint64_t i = 0; i < 1'000'000; ++i) v.push_back(i * 3);  // grows past 2 MiB
  uint64_t sum = 0;
  for (uint64_t x : v) sum += x;
  EXPECT_EQ(sum, 3 * (999'999ULL * 1'000'000ULL / 2));

  absl::flat_hash_map<uint64_t, uint32_t, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                      HugePageAllocator<std::pair<const uint64_t, uint32_t>>>
      m;
  for (uint32_t i = 0; i < 300'000; ++i) m[uint64_t{i} * 7919] = i;
  for (uint32_t i = 0; i < 300'000; i += 997) {
    auto it = m.find(uint64_t{i} * 7919);
    ASSERT_NE(it, m.end());
    EXPECT_EQ(it->second, i);
  }
  for (uint32_t i = 0; i < 300'000; i += 2) m.erase(uint64_t{i} * 7919);
  EXPECT_EQ(m.size(), 150'000u);
}

}  // namespace
}  // namespace vrec
