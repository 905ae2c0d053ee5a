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

}  // namespace
}  // namespace vrec::model
