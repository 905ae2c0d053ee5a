#include "train/early_stopping.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace vrec::train {
namespace {

constexpr double kNoBaseline = std::numeric_limits<double>::quiet_NaN();

// The state after validations scoring `scores`, as the coordinator keeps it.
ValidationState After(const std::vector<double>& scores) {
  ValidationState s;
  for (double score : scores) {
    const bool better = s.count() == 0 || score > s.best();
    s.set_count(s.count() + 1);
    if (better) {
      s.set_best(score);
      s.set_since_best(0);
    } else {
      s.set_since_best(s.since_best() + 1);
    }
  }
  return s;
}

// The validation (1-based) at which the rule stops a job scoring `scores`;
// 0 when it never does.
int StopsAt(const StoppingRule& rule, const std::vector<double>& scores, double baseline) {
  for (size_t n = 1; n <= scores.size(); ++n) {
    std::vector<double> prefix(scores.begin(), scores.begin() + n);
    if (DecideStop(rule, After(prefix), baseline).stop) return static_cast<int>(n);
  }
  return 0;
}

TEST(EarlyStoppingTest, PatienceGrowsWithTheValidationsItTookToReachTheBest) {
  const StoppingRule rule{3, 0.5};
  EXPECT_EQ(RequiredPatience(rule, 1), 3u);
  EXPECT_EQ(RequiredPatience(rule, 6), 3u);
  EXPECT_EQ(RequiredPatience(rule, 7), 4u);  // ceil(3.5)
  EXPECT_EQ(RequiredPatience(rule, 20), 10u);
  EXPECT_EQ(RequiredPatience({3, 1.0}, 20), 20u);
  EXPECT_EQ(RequiredPatience({3, 0}, 20), 3u);  // a fixed patience
  EXPECT_EQ(RequiredPatience({0, 0.5}, 20), 0u);
}

TEST(EarlyStoppingTest, AFixedPatienceStopsAtTheFirstRunOfNoBetterScores) {
  EXPECT_EQ(StopsAt({3, 0}, {0.1, 0.3, 0.2, 0.25, 0.2, 0.4}, kNoBaseline), 5);
}

TEST(EarlyStoppingTest, ANoisyRisingCurveIsNotStoppedByALuckyScore) {
  // A curve rising 0.005 a validation under +-0.02 of noise (the shape of
  // movielens-dev's), then flat at 0.20 +- 0.01: a lucky 0.19 at the 8th
  // validation is followed by 4 no better while the curve still climbs.
  const std::vector<double> scores = {0.10, 0.12, 0.14, 0.15, 0.16, 0.15, 0.17, 0.19, 0.17, 0.18,
                                      0.16, 0.19, 0.20, 0.21, 0.20, 0.19, 0.21, 0.20, 0.20, 0.19,
                                      0.20, 0.21, 0.20, 0.21, 0.19, 0.20, 0.21, 0.20, 0.19, 0.20};
  EXPECT_EQ(StopsAt({3, 0}, scores, kNoBaseline), 11);
  // Half of the validations to the best is not enough here: 4 after the 8th.
  EXPECT_EQ(StopsAt({3, 0.5}, scores, kNoBaseline), 12);
  // As many as it took (the default): the best (0.21 at the 14th) is found,
  // and the job stops 14 validations later.
  EXPECT_EQ(StopsAt({3, 1.0}, scores, kNoBaseline), 28);
}

TEST(EarlyStoppingTest, NeverStopsBeforeTheBestBeatsPopularity) {
  // A plateau at popularity's level while the model learns the counts.
  const std::vector<double> scores = {0.12, 0.11, 0.12, 0.11, 0.12, 0.11, 0.12,
                                      0.11, 0.15, 0.14, 0.13, 0.14, 0.13, 0.14};
  EXPECT_EQ(StopsAt({3, 0}, scores, kNoBaseline), 4);
  // Equal to popularity is not above it; once above, the patience counts
  // from the best (the 9th validation).
  EXPECT_EQ(StopsAt({3, 0}, scores, 0.12), 12);
  EXPECT_EQ(StopsAt({3, 0.5}, scores, 0.12), 14);  // needs ceil(4.5) = 5
  const StopDecision d = DecideStop({3, 0}, After({0.12, 0.11, 0.12, 0.11}), 0.12);
  EXPECT_FALSE(d.stop);
  EXPECT_TRUE(d.below_baseline);
  EXPECT_EQ(d.patience, 3u);
}

TEST(EarlyStoppingTest, PatienceZeroNeverStops) {
  EXPECT_EQ(StopsAt({0, 0.5}, {0.3, 0.2, 0.1, 0.1, 0.1, 0.1}, kNoBaseline), 0);
  EXPECT_FALSE(DecideStop({3, 0.5}, ValidationState(), kNoBaseline).stop);
}

}  // namespace
}  // namespace vrec::train
