#include "common/malloc_tuning.h"

#include <string>
#include <vector>

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

bool Budget(std::vector<std::string> args) {
  args.insert(args.begin(), "vrec");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return SetsMemoryBudget(static_cast<int>(argv.size()), argv.data());
}

TEST(MallocTuningTest, AMemoryBudgetOnTheCommandLineIsRecognised) {
  EXPECT_TRUE(Budget({"bench", "ps", "--budget_mb=6144"}));
  EXPECT_TRUE(Budget({"bench", "ps", "-budget_mb=10"}));
  EXPECT_TRUE(Budget({"train", "--server_memory_mb", "512", "--data=x"}));
  EXPECT_FALSE(Budget({"bench", "ps", "--budget_mb=0"}));
  EXPECT_FALSE(Budget({"train", "--server_memory_mb", "0"}));
  EXPECT_FALSE(Budget({"bench", "train", "--workers=2"}));
  EXPECT_FALSE(Budget({"train", "--model_dir=budget_mb=5"}));
  EXPECT_FALSE(Budget({"train", "--", "--budget_mb=5"}));
}

}  // namespace
}  // namespace vrec
