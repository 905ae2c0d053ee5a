#include "common/zipf.h"

#include <cmath>
#include <vector>

#include "testutil/testutil.h"

namespace vrec {
namespace {

// Pearson's chi-square of `draws` samples of Zipf(s) against the exact
// probabilities of Zipf(s_ref) over n ranks; ranks from `cells` on are one cell.
double ChiSquare(uint64_t n, double s, double s_ref, int cells, int draws, uint64_t seed) {
  std::vector<double> p(n);
  double z = 0;
  for (uint64_t r = 0; r < n; ++r) z += (p[r] = std::pow(r + 1.0, -s_ref));
  std::vector<double> expected(cells + 1, 0.0);
  for (uint64_t r = 0; r < n; ++r) expected[std::min<uint64_t>(r, cells)] += p[r] / z * draws;
  std::vector<double> seen(cells + 1, 0.0);
  ZipfSampler zipf(n, s);
  Rng rng(seed);
  for (int i = 0; i < draws; ++i) {
    const uint64_t r = zipf.Rank(rng);
    EXPECT_LT(r, n);
    seen[std::min<uint64_t>(r, cells)] += 1;
  }
  double chi2 = 0;
  for (int c = 0; c <= cells; ++c) {
    if (expected[c] > 0) chi2 += (seen[c] - expected[c]) * (seen[c] - expected[c]) / expected[c];
  }
  return chi2;
}

// 40 cells + tail: 40 degrees of freedom; P(chi2 > 80) < 1e-4.
TEST(ZipfSamplerTest, MatchesExactProbabilities) {
  for (double s : {0.5, 1.0, 1.1, 2.0}) {
    for (uint64_t n : {uint64_t{41}, uint64_t{1000}, uint64_t{1000000}}) {
      SCOPED_TRACE(::testing::Message() << "s=" << s << " n=" << n);
      EXPECT_LT(ChiSquare(n, s, s, 40, 200000, testing::TestSeed(7)), 80.0);
    }
  }
}

TEST(ZipfSamplerTest, WrongExponentIsDetected) {
  // The check above can fail: samples of Zipf(1.0) against Zipf(1.1)'s
  // probabilities are far off.
  EXPECT_GT(ChiSquare(1000, 1.0, 1.1, 40, 200000, testing::TestSeed(3)), 1000.0);
}

TEST(ZipfSamplerTest, SingleRank) {
  ZipfSampler zipf(1, 1.1);
  Rng rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(zipf.Rank(rng), 0u);
}

}  // namespace
}  // namespace vrec
