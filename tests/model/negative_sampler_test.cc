#include "model/negative_sampler.h"

#include <cmath>

#include "testutil/testutil.h"

namespace vrec::model {
namespace {

TEST(NegativeSamplerTest, UnigramProbabilitiesAndLogQ) {
  ASSERT_OK_AND_ASSIGN(auto s, NegativeSampler::FromCounts({16, 1, 0, 81}, 0.5));
  // max(count, 1)^0.5 = 4, 1, 1, 9 -> / 15
  EXPECT_NEAR(s.Probability(0), 4.0 / 15, 1e-12);
  EXPECT_NEAR(s.Probability(2), 1.0 / 15, 1e-12);
  EXPECT_NEAR(s.LogQ(3), std::log(9.0 / 15), 1e-12);
  ASSERT_OK_AND_ASSIGN(auto u, NegativeSampler::Uniform(8));
  EXPECT_NEAR(u.LogQ(5), -std::log(8.0), 1e-12);
}

TEST(NegativeSamplerTest, EmpiricalDistributionMatchesQ) {
  const uint64_t seed = vrec::testing::TestSeed(41);
  std::vector<double> counts(50);
  for (int v = 0; v < 50; ++v) counts[v] = 1000.0 / (v + 1);  // Zipf
  ASSERT_OK_AND_ASSIGN(auto s, NegativeSampler::FromCounts(counts, 0.75));
  Rng rng(seed);
  const int n = 400000;
  std::vector<int> hist(50);
  std::vector<int64_t> ids;
  std::vector<float> log_q;
  for (int r = 0; r < n / 1000; ++r) {
    s.Sample(1000, &rng, &ids, &log_q);
    for (size_t k = 0; k < ids.size(); ++k) {
      ASSERT_FLOAT_EQ(log_q[k], static_cast<float>(s.LogQ(ids[k])));
      ++hist[ids[k]];
    }
  }
  double chi2 = 0;
  for (int v = 0; v < 50; ++v) {
    const double expected = n * s.Probability(v);
    chi2 += (hist[v] - expected) * (hist[v] - expected) / expected;
    // Each frequency within 5 standard deviations.
    EXPECT_NEAR(hist[v], expected, 5 * std::sqrt(expected)) << "class " << v;
  }
  // 49 degrees of freedom: P(chi2 > 90) < 3e-4.
  EXPECT_LT(chi2, 90.0);
}

TEST(NegativeSamplerTest, SeededDrawsAreReproducible) {
  ASSERT_OK_AND_ASSIGN(auto s, NegativeSampler::Uniform(1000));
  Rng a(9), b(9);
  std::vector<int64_t> ia, ib;
  std::vector<double> qa, qb;
  s.Sample(100, &a, &ia, &qa);
  s.Sample(100, &b, &ib, &qb);
  EXPECT_EQ(ia, ib);
}

TEST(NegativeSamplerTest, RejectsBadInput) {
  EXPECT_THAT(NegativeSampler::Uniform(0), StatusIs(absl::StatusCode::kInvalidArgument, "0"));
  EXPECT_THAT(NegativeSampler::FromCounts({1, -2, 3}, 0.75),
              StatusIs(absl::StatusCode::kInvalidArgument, "count of class 1"));
  EXPECT_THAT(NegativeSampler::FromCounts({1, 2}, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, "power"));
  SamplerConfig config;
  config.set_kind(SamplerConfig::UNIGRAM);
  config.set_power(1.0);
  ASSERT_OK_AND_ASSIGN(auto s, NegativeSampler::FromConfig(config, {1, 3}));
  EXPECT_NEAR(s.Probability(1), 0.75, 1e-12);
}

}  // namespace
}  // namespace vrec::model
