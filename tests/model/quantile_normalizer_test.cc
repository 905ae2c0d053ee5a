#include "model/quantile_normalizer.h"

#include <algorithm>
#include <cmath>

#include "testutil/testutil.h"

namespace vrec::model {
namespace {

// Exact type-7 quantile of sorted data.
double ExactQuantile(const std::vector<double>& sorted, double p) {
  const double h = (sorted.size() - 1) * p;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

TEST(QuantileNormalizerTest, SmallStreamGivesExactQuantiles) {
  Rng rng(vrec::testing::TestSeed(51));
  QuantileNormalizer::Builder builder(/*num_quantiles=*/20, /*reservoir_size=*/5000, 1);
  std::vector<double> values;
  for (int i = 0; i < 3000; ++i) {
    values.push_back(rng.Exponential(3.0));
    ASSERT_OK(builder.Add(values.back()));
  }
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer q, builder.Build());
  std::sort(values.begin(), values.end());
  ASSERT_EQ(q.num_quantiles(), 20);
  for (int k = 0; k <= 20; ++k) {
    EXPECT_DOUBLE_EQ(q.quantiles()[k], ExactQuantile(values, k / 20.0)) << k;
  }
  // The CDF at a quantile is its level; in between it interpolates.
  EXPECT_NEAR(q.Cdf(q.quantiles()[7]), 7 / 20.0, 1e-12);
  EXPECT_NEAR(q.Cdf(0.5 * (q.quantiles()[7] + q.quantiles()[8])), 7.5 / 20.0, 1e-12);
  EXPECT_EQ(q.Cdf(-1.0), 0.0);
  EXPECT_LT(q.Cdf(1e9), 1.0);
  EXPECT_GT(q.Cdf(1e9), 0.999999);
  float f[3];
  q.Features(q.quantiles()[5], f);
  EXPECT_NEAR(f[0], 0.25, 1e-6);
  EXPECT_NEAR(f[1], 0.0625, 1e-6);
  EXPECT_NEAR(f[2], 0.5, 1e-6);
}

TEST(QuantileNormalizerTest, LargeStreamCdfWithinStatedBound) {
  Rng rng(vrec::testing::TestSeed(52));
  const int q = 50, reservoir = 20000;
  QuantileNormalizer::Builder builder(q, reservoir, 2);
  std::vector<double> values;
  for (int i = 0; i < 200000; ++i) {
    // Heavy-tailed and with a point mass, like counts of impressions.
    const double x = rng.Bernoulli(0.2) ? 0.0 : std::exp(2 * rng.Normal());
    values.push_back(x);
    ASSERT_OK(builder.Add(x));
  }
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer norm, builder.Build());
  std::sort(values.begin(), values.end());
  // eps at 99.9% for K = 20000: sqrt(ln(2000) / (2 K)) = 0.0138.
  const double bound = 1.0 / q + 0.0138;
  double worst = 0;
  for (int k = 1; k < 200; ++k) {
    const double x = values[values.size() * k / 200];
    const double exact =
        static_cast<double>(std::upper_bound(values.begin(), values.end(), x) - values.begin()) /
        values.size();
    worst = std::max(worst, std::abs(norm.Cdf(x) - exact));
  }
  EXPECT_LT(worst, bound);
}

TEST(QuantileNormalizerTest, SerializesAsItsQuantiles) {
  QuantileNormalizer::Builder builder(4, 100, 3);
  for (double x : {5.0, 1.0, 3.0, 2.0, 4.0}) ASSERT_OK(builder.Add(x));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer a, builder.Build());
  EXPECT_EQ(a.quantiles(), (std::vector<double>{1, 2, 3, 4, 5}));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer b, QuantileNormalizer::FromQuantiles(a.quantiles()));
  for (double x = 0; x < 6; x += 0.37) EXPECT_EQ(a.Cdf(x), b.Cdf(x));
}

TEST(QuantileNormalizerTest, RejectsBadInput) {
  QuantileNormalizer::Builder builder;
  EXPECT_THAT(builder.Build(), StatusIs(absl::StatusCode::kFailedPrecondition, "no values"));
  ASSERT_OK(builder.Add(1.0));
  EXPECT_THAT(builder.Add(std::nan("")),
              StatusIs(absl::StatusCode::kInvalidArgument, "value #1 is not finite"));
  EXPECT_THAT(QuantileNormalizer::FromQuantiles({1, 3, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, "quantile 2 (2) < quantile 1 (3)"));
  EXPECT_THAT(QuantileNormalizer::FromQuantiles({1}),
              StatusIs(absl::StatusCode::kInvalidArgument, "at least 2"));
}

TEST(QuantileMixtureTest, ANormalizerMixedWithItselfIsItself) {
  // With a point mass (the repeated 2s) and a gap.
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer a,
                       QuantileNormalizer::FromQuantiles({0, 1, 2, 2, 2, 7, 8, 8.5, 10}));
  for (double w : {1.0, 0.3}) {
    ASSERT_OK_AND_ASSIGN(QuantileNormalizer m,
                         QuantileNormalizer::Mixture({{&a, w}, {&a, 2.5}}, 8));
    ASSERT_EQ(m.quantiles().size(), a.quantiles().size());
    for (size_t k = 0; k < a.quantiles().size(); ++k) {
      EXPECT_NEAR(m.quantiles()[k], a.quantiles()[k], 1e-9) << k;
    }
  }
  // A part of weight 0 is left out.
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer b, QuantileNormalizer::FromQuantiles({100, 200}));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer m, QuantileNormalizer::Mixture({{&a, 1}, {&b, 0}}, 8));
  for (size_t k = 0; k < a.quantiles().size(); ++k) {
    EXPECT_NEAR(m.quantiles()[k], a.quantiles()[k], 1e-9) << k;
  }
}

TEST(QuantileMixtureTest, TwoUniformsSideBySideMakeOneTwiceAsWide) {
  std::vector<double> low, high;
  for (int k = 0; k <= 10; ++k) {
    low.push_back(k / 10.0);
    high.push_back(1 + k / 10.0);
  }
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer a, QuantileNormalizer::FromQuantiles(low));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer b, QuantileNormalizer::FromQuantiles(high));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer m, QuantileNormalizer::Mixture({{&a, 5}, {&b, 5}}, 4));
  ASSERT_EQ(m.quantiles().size(), 5u);
  for (int j = 0; j <= 4; ++j) EXPECT_NEAR(m.quantiles()[j], j / 2.0, 1e-12) << j;
  // Weighted 3:1, the first quartile boundary is at 1/3 of the lower one.
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer w, QuantileNormalizer::Mixture({{&a, 3}, {&b, 1}}, 4));
  EXPECT_NEAR(w.quantiles()[1], 1 / 3.0, 1e-12);
  EXPECT_NEAR(w.quantiles()[3], 1.0, 1e-12);
  EXPECT_NEAR(w.quantiles()[4], 2.0, 1e-12);
  // Point masses: half the mass at 1, half at 3.
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer one, QuantileNormalizer::FromQuantiles({1, 1}));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer three, QuantileNormalizer::FromQuantiles({3, 3}));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer d,
                       QuantileNormalizer::Mixture({{&one, 1}, {&three, 1}}, 4));
  EXPECT_EQ(d.quantiles(), (std::vector<double>{1, 1, 1, 3, 3}));
}

// Reference: fitting day 1 and day 2 apart and mixing them by their counts
// gives (within the fits' own error) the fit of both days together.
TEST(QuantileMixtureTest, MixingTwoDaysFitsMatchesFittingThemTogether) {
  const uint64_t seed = vrec::testing::TestSeed(77);
  Rng rng(seed);
  QuantileNormalizer::Builder day1(50, 1 << 16, 1), day2(50, 1 << 16, 2), both(50, 1 << 16, 3);
  std::vector<double> all;
  for (int i = 0; i < 30000; ++i) {
    const double x = rng.Exponential(1.0);
    ASSERT_OK(day1.Add(x));
    ASSERT_OK(both.Add(x));
    all.push_back(x);
  }
  for (int i = 0; i < 10000; ++i) {  // another distribution, a third as many
    const double x = 2 + 3 * rng.Uniform();
    ASSERT_OK(day2.Add(x));
    ASSERT_OK(both.Add(x));
    all.push_back(x);
  }
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer a, day1.Build());
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer b, day2.Build());
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer together, both.Build());
  ASSERT_OK_AND_ASSIGN(
      QuantileNormalizer mixed,
      QuantileNormalizer::Mixture(
          {{&a, static_cast<double>(day1.count())}, {&b, static_cast<double>(day2.count())}}, 50));
  std::sort(all.begin(), all.end());
  double worst = 0, worst_together = 0;
  for (size_t i = 0; i < all.size(); i += 37) {
    const double exact = static_cast<double>(i + 1) / all.size();
    worst = std::max(worst, std::abs(mixed.Cdf(all[i]) - exact));
    worst_together = std::max(worst_together, std::abs(together.Cdf(all[i]) - exact));
  }
  // Both are within the interpolation error 1/Q of the exact CDF (seed
  // printed on failure).
  EXPECT_LT(worst, 1.0 / 50) << "seed " << seed;
  EXPECT_LT(worst_together, 1.0 / 50) << "seed " << seed;
}

TEST(QuantileMixtureTest, RejectsBadInput) {
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer a, QuantileNormalizer::FromQuantiles({0, 1}));
  EXPECT_THAT(QuantileNormalizer::Mixture({}, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, "0 parts"));
  EXPECT_THAT(QuantileNormalizer::Mixture({{&a, 1}}, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, "need at least 1"));
  EXPECT_THAT(QuantileNormalizer::Mixture({{&a, -1}}, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, "weight -1"));
  EXPECT_THAT(QuantileNormalizer::Mixture({{&a, 0}}, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, "every weight is 0"));
}

}  // namespace
}  // namespace vrec::model
