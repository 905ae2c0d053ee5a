#include "data/oracle.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "data/weighted_loss.h"
#include "data/world.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

std::unique_ptr<World> TinyWorld(uint64_t seed, int64_t videos = 3000) {
  WorldOptions o;
  o.seed = seed;
  o.num_videos = videos;
  o.num_users = 300;
  o.num_tokens = 500;
  o.num_topics = 10;
  o.num_days = 15;
  auto world = World::Build(o, 2);
  EXPECT_OK(world);
  return std::move(world).value();
}

NextWatchState RandomState(const World& world, const UserProfile* user, Rng& rng) {
  NextWatchState s;
  s.user = user;
  s.day = static_cast<int32_t>(rng.UniformInt(world.options().num_days));
  for (int tries = 0; tries < 100; ++tries) {
    const auto v = static_cast<int32_t>(rng.UniformInt(world.videos().size()));
    if (!world.Available(v, s.day)) continue;
    s.last_video = v;
    const int32_t next = world.videos()[v].next_episode;
    if (tries > 20 || (next >= 0 && world.Available(next, s.day))) break;
  }
  if (rng.Bernoulli(0.4)) s.search_topic = static_cast<int32_t>(rng.UniformInt(10));
  return s;
}

TEST(NextWatchOracleTest, TopKMatchesBruteForce) {
  auto world = TinyWorld(testing::TestSeed(31));
  NextWatchOracle oracle(world.get());
  Rng rng(testing::TestSeed(32));
  for (int trial = 0; trial < 40; ++trial) {
    const UserProfile user = world->MakeUser(static_cast<int64_t>(rng.UniformInt(300)));
    const NextWatchMixture m = world->Mixture(RandomState(*world, &user, rng));
    std::vector<double> p = world->Distribution(m);
    std::sort(p.begin(), p.end(), std::greater<double>());
    for (int k : {1, 10, 50, 100}) {
      const auto& top = oracle.TopK(m, k);
      ASSERT_EQ(top.size(), static_cast<size_t>(k));
      double mass = 0, brute = 0;
      for (int i = 0; i < k; ++i) {
        mass += top[i].first;
        brute += p[i];
        EXPECT_NEAR(top[i].first, p[i], 1e-12) << "rank " << i << " k " << k;
        if (i > 0) {
          EXPECT_GE(top[i - 1].first, top[i].first);
        }
      }
      EXPECT_NEAR(mass, brute, 1e-12);
    }
  }
}

TEST(NextWatchOracleTest, SmallSupportPutsAllMassInTheList) {
  // 10 topics and 30 videos: a topic has ~3 videos, fewer than K.
  auto world = TinyWorld(testing::TestSeed(33), 30);
  NextWatchOracle oracle(world.get());
  const UserProfile user = world->MakeUser(0);
  NextWatchState s;
  s.user = &user;
  s.day = 14;
  const NextWatchMixture m = world->Mixture(s);
  OracleStats stats;
  oracle.AddExample(m, oracle.TopK(m, 1)[0].second, &stats);
  EXPECT_EQ(stats.examples, 1);
  EXPECT_DOUBLE_EQ(stats.hit_sum[0], 1.0);
  EXPECT_NEAR(stats.recall_sum[3], 1.0, 1e-12);  // recall@100 = everything
  EXPECT_LE(stats.recall_sum[0], stats.recall_sum[1]);
}

TEST(NextWatchOracleTest, RecallIsMonotoneAndHitRateAgreesWithIt) {
  auto world = TinyWorld(testing::TestSeed(34));
  NextWatchOracle oracle(world.get());
  Rng rng(testing::TestSeed(35));
  OracleStats stats;
  double variance[4] = {0, 0, 0, 0};
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const UserProfile user = world->MakeUser(static_cast<int64_t>(rng.UniformInt(300)));
    const NextWatchMixture m = world->Mixture(RandomState(*world, &user, rng));
    const OracleStats before = stats;
    oracle.AddExample(m, world->SampleNextWatch(m, rng), &stats);
    for (int k = 0; k < 4; ++k) {
      const double p = stats.recall_sum[k] - before.recall_sum[k];
      variance[k] += p * (1 - p);
    }
  }
  ASSERT_EQ(stats.examples, n);
  for (int k = 0; k < 4; ++k) {
    if (k > 0) {
      EXPECT_LE(stats.Recall(k - 1), stats.Recall(k));
    }
    EXPECT_GT(stats.Recall(k), 0.0);
    EXPECT_LE(stats.Recall(k), 1.0);
    // The realised hit rate is a sum of independent Bernoulli(p_i): within 5
    // standard errors of the oracle's expectation.
    const double se = std::sqrt(variance[k]) / n;
    EXPECT_NEAR(stats.hit_sum[k] / n, stats.Recall(k), 5 * se + 1e-9) << "K " << kOracleKs[k];
  }
  EXPECT_LT(stats.log_prob_sum / n, 0.0);
  const nlohmann::json j = stats.ToJson();
  EXPECT_DOUBLE_EQ(j["recall@10"].get<double>(), stats.Recall(1));
  EXPECT_TRUE(j.contains("weighted_per_user_loss"));
}

TEST(WeightedLossTest, HandMadePages) {
  // Page 1: clicked A (score 3, 10 s); unclicked B (2) and C (4).
  // Pairs (A,B) ordered right, (A,C) wrong: 10 of 20 s mispredicted.
  std::vector<ScoredImpression> page1 = {{3, true, 10}, {2, false, 0}, {4, false, 0}};
  WeightedLoss loss;
  loss.AddPage(page1);
  EXPECT_EQ(loss.pairs, 2);
  EXPECT_EQ(loss.pages, 1);
  EXPECT_DOUBLE_EQ(loss.Loss(), 0.5);
  // Page 2: clicked D (1, 30 s) and E (5, 5 s) vs unclicked F (2): D is
  // mispredicted (30), E is not: 30 / 35 on this page.
  std::vector<ScoredImpression> page2 = {{1, true, 30}, {5, true, 5}, {2, false, 0}};
  EXPECT_DOUBLE_EQ(WeightedPerUserLoss({page2}), 30.0 / 35.0);
  loss.AddPage(page2);
  EXPECT_DOUBLE_EQ(loss.Loss(), (10.0 + 30.0) / (20.0 + 35.0));
  // Ties count half.
  EXPECT_DOUBLE_EQ(WeightedPerUserLoss({{{2, true, 8}, {2, false, 0}}}), 0.5);
  // Pages with only clicks or only non-clicks add nothing.
  WeightedLoss none;
  none.AddPage({{1, true, 5}, {2, true, 7}});
  none.AddPage({{1, false, 0}, {2, false, 0}});
  EXPECT_EQ(none.pages, 0);
  EXPECT_EQ(none.pairs, 0);
  EXPECT_EQ(none.Loss(), 0.0);
  // A perfect ranking loses nothing; the reversed one loses everything.
  EXPECT_DOUBLE_EQ(WeightedPerUserLoss({{{9, true, 4}, {8, true, 6}, {1, false, 0}}}), 0.0);
  EXPECT_DOUBLE_EQ(WeightedPerUserLoss({{{0, true, 4}, {-1, true, 6}, {1, false, 0}}}), 1.0);
  // Merge equals adding the pages to one accumulator.
  WeightedLoss a, b;
  a.AddPage(page1);
  b.AddPage(page2);
  a.Merge(b);
  EXPECT_DOUBLE_EQ(a.Loss(), loss.Loss());
  EXPECT_EQ(a.pairs, loss.pairs);
}

}  // namespace
}  // namespace vrec
