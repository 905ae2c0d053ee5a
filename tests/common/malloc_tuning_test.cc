#include "common/malloc_tuning.h"

#include "testutil/testutil.h"

namespace vrec {
namespace {

TEST(MallocTuningTest, AddsHugePagesToUnsetOrOtherTunables) {
  EXPECT_EQ(TunablesWithHugePages(nullptr, "always [madvise] never\n"), "glibc.malloc.hugetlb=1");
  EXPECT_EQ(TunablesWithHugePages("", "[always] madvise never\n"), "glibc.malloc.hugetlb=1");
  EXPECT_EQ(TunablesWithHugePages("glibc.malloc.arena_max=2", "always [madvise] never\n"),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
}

TEST(MallocTuningTest, LeavesACallersChoiceAndKernelsWithoutHugePagesAlone) {
  EXPECT_EQ(TunablesWithHugePages("glibc.malloc.hugetlb=0", "always [madvise] never\n"),
            std::nullopt);
  EXPECT_EQ(TunablesWithHugePages("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2",
                                  "always [madvise] never\n"),
            std::nullopt);
  EXPECT_EQ(TunablesWithHugePages(nullptr, "always madvise [never]\n"), std::nullopt);
  EXPECT_EQ(TunablesWithHugePages(nullptr, ""), std::nullopt);
}

}  // namespace
}  // namespace vrec
