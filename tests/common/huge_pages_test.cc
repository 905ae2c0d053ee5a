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

bool TransparentHugePagesOff() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::stringstream s;
  s << in.rdbuf();
  return !in || s.str().find("[never]") != std::string::npos;
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
  // The mapping is the block alone (the alignment slack was given back) ...
  unsigned long lo = 0, hi = 0;
  ASSERT_EQ(std::sscanf(smaps.c_str(), "%lx-%lx", &lo, &hi), 2);
  EXPECT_EQ(lo, reinterpret_cast<uintptr_t>(p));
  EXPECT_EQ(hi - lo, (bytes + 4095) / 4096 * 4096);
  // ... and advised for huge pages (the kernel may still fall back to small
  // ones when it has no free 2 MiB page; eligibility is what we control).
  // VmFlags "hg": madvise(MADV_HUGEPAGE) was applied to the mapping.
  const size_t flags = smaps.find("VmFlags:");
  ASSERT_NE(flags, std::string::npos);
  EXPECT_NE(smaps.find(" hg", flags), std::string::npos) << smaps;
  if (!TransparentHugePagesOff()) {
    int eligible = -1;
    const size_t at = smaps.find("THPeligible:");
    ASSERT_NE(at, std::string::npos);
    std::sscanf(smaps.c_str() + at, "THPeligible: %d", &eligible);
    EXPECT_EQ(eligible, 1) << smaps;
  }
  FreeHuge(p, bytes);
  EXPECT_TRUE(SmapsOf(p).empty()) << "unmapped";
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
