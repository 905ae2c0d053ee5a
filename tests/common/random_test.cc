#include "common/random.h"

#include <cmath>
#include <set>
#include <vector>

#include "testutil/testutil.h"

namespace vrec {
namespace {

TEST(RngTest, SameSeedSameStream) {
  Rng a(42, 7), b(42, 7), c(42, 8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a(), y = b(), z = c();
    EXPECT_EQ(x, y);
    differs |= (x != z);
  }
  EXPECT_TRUE(differs);
}

TEST(RngTest, UniformMomentsAndRange) {
  Rng rng(testing::TestSeed(1));
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    double u = rng.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum2 += u * u;
  }
  // Mean 1/2, variance 1/12; 6 standard errors of tolerance.
  EXPECT_NEAR(sum / n, 0.5, 6 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0.002);
}

TEST(RngTest, UniformIntCoversRangeEvenly) {
  Rng rng(testing::TestSeed(2));
  std::vector<int> counts(10, 0);
  const int n = 100000;
  for (int i = 0; i < n; ++i) counts[rng.UniformInt(10)]++;
  for (int c : counts) EXPECT_NEAR(c, n / 10, 6 * std::sqrt(n * 0.1 * 0.9));
}

TEST(RngTest, NormalMoments) {
  Rng rng(testing::TestSeed(3));
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    double x = rng.Normal();
    sum += x;
    sum2 += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 6 / std::sqrt(n));
  EXPECT_NEAR(sum2 / n, 1.0, 0.02);
}

TEST(Mix64Test, IsInjectiveOnASample) {
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < 100000; ++i) seen.insert(Mix64(i));
  EXPECT_EQ(seen.size(), 100000u);
}

}  // namespace
}  // namespace vrec
