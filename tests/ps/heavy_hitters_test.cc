#include "ps/heavy_hitters.h"

#include <cmath>
#include <map>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

TEST(SpaceSavingTest, ExactWhileUnderCapacity) {
  SpaceSaving s(8);
  for (int i = 0; i < 5; ++i) s.Offer(1);
  s.Offer(2, 3);
  s.Offer(3);
  auto top = s.Top(2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, 1u);
  EXPECT_EQ(top[0].count, 5u);
  EXPECT_EQ(top[0].error, 0u);
  EXPECT_EQ(top[1].key, 2u);
  EXPECT_EQ(s.total(), 9u);
}

TEST(SpaceSavingTest, FindsZipfHeadWithValidBounds) {
  Rng rng(testing::TestSeed(21));
  // Zipf(1.1) over 10k keys by inversion of a precomputed CDF.
  const int n = 10000;
  std::vector<double> cdf(n);
  double sum = 0;
  for (int i = 0; i < n; ++i) cdf[i] = (sum += std::pow(i + 1, -1.1));
  std::map<uint64_t, uint64_t> truth;
  SpaceSaving s(32);
  for (int i = 0; i < 200000; ++i) {
    const double u = rng.Uniform() * sum;
    const uint64_t key = Mix64(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    ++truth[key];
    s.Offer(key);
  }
  auto top = s.Top(5);
  ASSERT_EQ(top.size(), 5u);
  for (int r = 0; r < 5; ++r) EXPECT_EQ(top[r].key, Mix64(r)) << "rank " << r;
  for (const auto& h : s.Top(32)) {
    EXPECT_LE(truth[h.key], h.count);
    EXPECT_GE(truth[h.key], h.count - h.error);
  }
  const size_t bytes = s.MemoryBytes();
  for (int i = 0; i < 100000; ++i) s.Offer(rng());
  EXPECT_EQ(s.MemoryBytes(), bytes);  // fixed footprint under churn
}

TEST(SpaceSavingTest, MergeTopOrdersAndTruncates) {
  auto m = MergeTop({{1, 5, 0}, {2, 9, 1}, {3, 5, 0}, {4, 1, 0}}, 3);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].key, 2u);
  EXPECT_EQ(m[1].key, 1u);
  EXPECT_EQ(m[2].key, 3u);
}

}  // namespace
}  // namespace vrec::ps
