#include "common/malloc_tuning.h"

#include <string>
#include <vector>

#include "testutil/testutil.h"

namespace vrec {
namespace {

constexpr char kThresholds[] =
    "glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432";

TEST(MallocTuningTest, AddsTheSettingsToUnsetOrOtherTunables) {
  const std::string all = kTrainingHeapTunables;
  EXPECT_EQ(all, std::string("glibc.malloc.hugetlb=1:") + kThresholds);
  EXPECT_EQ(TrainingHeapTunables(nullptr, "always [madvise] never\n"), all);
  EXPECT_EQ(TrainingHeapTunables("", "[always] madvise never\n"), all);
  EXPECT_EQ(TrainingHeapTunables("glibc.malloc.arena_max=2", "always [madvise] never\n"),
            "glibc.malloc.arena_max=2:" + all);
}

TEST(MallocTuningTest, LeavesACallersChoicesAlone) {
  EXPECT_EQ(TrainingHeapTunables("glibc.malloc.hugetlb=0", "always [madvise] never\n"),
            std::string("glibc.malloc.hugetlb=0:") + kThresholds);
  EXPECT_EQ(TrainingHeapTunables("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2:"
                                 "glibc.malloc.trim_threshold=0",
                                 "always [madvise] never\n"),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2:glibc.malloc.trim_threshold=0:"
            "glibc.malloc.mmap_threshold=33554432");
  EXPECT_EQ(TrainingHeapTunables(kTrainingHeapTunables, "always [madvise] never\n"), std::nullopt);
}

TEST(MallocTuningTest, HugePagesOnlyWhereTheKernelHasThem) {
  EXPECT_EQ(TrainingHeapTunables(nullptr, "always madvise [never]\n"), kThresholds);
  EXPECT_EQ(TrainingHeapTunables(nullptr, ""), kThresholds);
  EXPECT_EQ(TrainingHeapTunables(kThresholds, ""), std::nullopt);
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
