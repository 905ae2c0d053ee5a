#include "data/world.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "testutil/testutil.h"

namespace vrec {
namespace {

WorldOptions TinyOptions(uint64_t seed) {
  WorldOptions o;
  o.seed = seed;
  o.num_videos = 3000;
  o.num_users = 500;
  o.num_tokens = 1000;
  o.num_topics = 20;
  o.num_days = 20;
  return o;
}

std::unique_ptr<World> BuildOrDie(const WorldOptions& o, int threads = 1) {
  auto world = World::Build(o, threads);
  EXPECT_OK(world);
  return std::move(world).value();
}

// Chi-square statistic of `counts` against probabilities `p` (n draws),
// pooling cells with expected count < 5 into one.
double ChiSquare(const std::vector<int64_t>& counts, const std::vector<double>& p, int64_t n,
                 int* dof) {
  double chi2 = 0, pooled_expected = 0, pooled_observed = 0;
  int cells = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * n;
    if (e < 5) {
      pooled_expected += e;
      pooled_observed += counts[i];
      continue;
    }
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++cells;
  }
  if (pooled_expected > 0) {
    chi2 += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) /
            std::max(pooled_expected, 1e-9);
    ++cells;
  }
  *dof = cells - 1;
  return chi2;
}

// A chi-square with `dof` degrees of freedom exceeds dof + 6 sqrt(2 dof) with
// probability well below 1e-4 for the dof used here (normal approximation).
double ChiSquareBound(int dof) { return dof + 6.0 * std::sqrt(2.0 * dof) + 10; }

TEST(WorldOptionsTest, RejectsBadOptionsNamingTheField) {
  WorldOptions o = TinyOptions(1);
  o.num_videos = 5;
  EXPECT_THAT(World::Build(o), StatusIs(absl::StatusCode::kInvalidArgument, "num_videos"));
  o = TinyOptions(1);
  o.freshness_half_life_days = 0;
  EXPECT_THAT(World::Build(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "freshness_half_life_days"));
  o = TinyOptions(1);
  o.max_interests = kMaxInterests + 1;
  EXPECT_THAT(World::Build(o), StatusIs(absl::StatusCode::kInvalidArgument, "max_interests"));
  o = TinyOptions(1);
  o.p_sticky = 1.5;
  EXPECT_THAT(World::Build(o), StatusIs(absl::StatusCode::kInvalidArgument, "p_sticky"));
  EXPECT_OK(ValidateWorldOptions(WorldOptions()));
}

TEST(WorldTest, DeterministicForASeedAndThreadCount) {
  const uint64_t seed = testing::TestSeed(11);
  auto a = BuildOrDie(TinyOptions(seed), 1);
  auto b = BuildOrDie(TinyOptions(seed), 3);
  auto c = BuildOrDie(TinyOptions(seed + 1), 1);
  ASSERT_EQ(a->videos().size(), b->videos().size());
  int differ_c = 0;
  for (size_t i = 0; i < a->videos().size(); ++i) {
    EXPECT_EQ(a->videos()[i].id, b->videos()[i].id);
    EXPECT_EQ(a->videos()[i].upload_time, b->videos()[i].upload_time);
    EXPECT_EQ(a->videos()[i].appeal, b->videos()[i].appeal);
    differ_c += a->videos()[i].appeal != c->videos()[i].appeal;
  }
  EXPECT_GT(differ_c, 2900);
  for (int d = 0; d < 20; d += 7) {
    for (uint32_t t = 0; t < 20; t += 3) EXPECT_EQ(a->Normalizer(d, t), b->Normalizer(d, t));
  }
  const UserProfile u1 = a->MakeUser(17), u2 = b->MakeUser(17);
  EXPECT_EQ(u1.id, u2.id);
  EXPECT_EQ(u1.interest_topic, u2.interest_topic);
}

TEST(WorldTest, IdsAreDistinctAndNonZero) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(12)));
  std::vector<uint64_t> ids;
  for (const Video& v : world->videos()) ids.push_back(v.id);
  for (int64_t i = 0; i < 1000; ++i) ids.push_back(world->TokenId(i));
  for (int64_t u = 0; u < 500; ++u) ids.push_back(world->MakeUser(u).id);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0u), 0);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
}

TEST(WorldTest, AppealIsHeavyTailed) {
  WorldOptions o = TinyOptions(testing::TestSeed(13));
  o.num_videos = 20000;
  auto world = BuildOrDie(o);
  std::vector<double> appeal;
  for (const Video& v : world->videos()) appeal.push_back(v.appeal);
  std::sort(appeal.rbegin(), appeal.rend());
  const double total = std::accumulate(appeal.begin(), appeal.end(), 0.0);
  const double top1 = std::accumulate(appeal.begin(), appeal.begin() + appeal.size() / 100, 0.0);
  // Lognormal(sigma 1.5): the top 1% holds ~20% of the appeal (uniform: 1%).
  EXPECT_GT(top1 / total, 0.12);
  EXPECT_GT(appeal.front() / appeal[appeal.size() / 2], 100.0);
}

TEST(WorldTest, FreshnessDecaysAndNothingIsWatchableBeforeUpload) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(14)));
  const WorldOptions& o = world->options();
  EXPECT_DOUBLE_EQ(world->Freshness(0), 1.0);
  EXPECT_NEAR(world->Freshness(o.freshness_half_life_days) - o.freshness_floor,
              (1 - o.freshness_floor) / 2, 1e-12);
  EXPECT_NEAR(world->Freshness(1e6), o.freshness_floor, 1e-12);
  int checked = 0;
  for (int32_t i = 0; i < static_cast<int32_t>(world->videos().size()); ++i) {
    const Video& v = world->videos()[i];
    if (v.upload_time < 0 || v.upload_time > 15) continue;
    const int first = static_cast<int>(std::ceil(v.upload_time));
    if (first > 0) {
      EXPECT_EQ(world->Popularity(i, first - 1), 0.0);
    }
    for (int d = first; d + 1 < 20; ++d) {
      EXPECT_GT(world->Popularity(i, d), world->Popularity(i, d + 1)) << "video " << i;
    }
    ++checked;
  }
  EXPECT_GT(checked, 500);
}

TEST(WorldTest, NewUploadsEveryDayAndSeriesOnSuccessiveDays) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(15)));
  std::vector<int> per_day(20, 0);
  int series_links = 0;
  for (const Video& v : world->videos()) {
    if (v.upload_time >= 0 && v.upload_time < 20) per_day[static_cast<int>(v.upload_time)]++;
    if (v.next_episode >= 0) {
      const Video& next = world->videos()[v.next_episode];
      EXPECT_EQ(next.series, v.series);
      EXPECT_EQ(next.topic, v.topic);
      EXPECT_EQ(next.episode, v.episode + 1);
      EXPECT_DOUBLE_EQ(next.upload_time, v.upload_time + 1);
      ++series_links;
    }
  }
  for (int d = 0; d < 20; ++d) EXPECT_GT(per_day[d], 0) << "day " << d;
  EXPECT_GT(series_links, 100);
}

TEST(WorldTest, NormalizerIsTheSumOfPopularity) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(16)));
  for (int d : {0, 9, 19}) {
    std::vector<double> z(20, 0.0);
    for (int32_t i = 0; i < static_cast<int32_t>(world->videos().size()); ++i) {
      z[world->videos()[i].topic] += world->Popularity(i, d);
    }
    for (uint32_t t = 0; t < 20; ++t) {
      EXPECT_GT(world->Normalizer(d, t), 0);
      EXPECT_NEAR(world->Normalizer(d, t), z[t], 1e-9 * z[t]);
    }
  }
}

TEST(WorldTest, UsersHaveValidSparseInterests) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(17)));
  for (int64_t u = 0; u < 500; ++u) {
    const UserProfile p = world->MakeUser(u);
    ASSERT_GE(p.num_interests, 1);
    ASSERT_LE(p.num_interests, world->options().max_interests);
    double sum = 0;
    for (int j = 0; j < p.num_interests; ++j) {
      sum += p.interest_weight[j];
      EXPECT_LT(p.interest_topic[j], 20u);
      for (int k = 0; k < j; ++k) EXPECT_NE(p.interest_topic[j], p.interest_topic[k]);
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_GE(p.region, 1u);
    EXPECT_LE(p.region, 20u);
    EXPECT_GE(p.device, 1u);
    EXPECT_LE(p.device, 4u);
    EXPECT_GE(p.age, 0.0f);
    EXPECT_LE(p.age, 1.0f);
  }
}

// Random states over the whole world: with and without a last video, a
// search, series continuations.
std::vector<std::pair<UserProfile, NextWatchState>> RandomStates(const World& world, int n,
                                                                 uint64_t seed) {
  Rng rng(seed);
  std::vector<std::pair<UserProfile, NextWatchState>> out(n);
  const auto& videos = world.videos();
  for (int i = 0; i < n; ++i) {
    out[i].first = world.MakeUser(static_cast<int64_t>(rng.UniformInt(500)));
    NextWatchState& s = out[i].second;
    s.day = static_cast<int32_t>(rng.UniformInt(world.options().num_days));
    if (i % 4 != 0) {
      // Prefer series episodes so that continuations are exercised.
      for (int tries = 0; tries < 50; ++tries) {
        const auto v = static_cast<int32_t>(rng.UniformInt(videos.size()));
        if (!world.Available(v, s.day)) continue;
        s.last_video = v;
        if (videos[v].next_episode >= 0 && world.Available(videos[v].next_episode, s.day)) break;
      }
    }
    if (i % 3 == 0)
      s.search_topic = static_cast<int32_t>(rng.UniformInt(world.options().num_topics));
  }
  return out;
}

TEST(NextWatchTest, DistributionSumsToOneAndMatchesProbability) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(18)));
  int with_series = 0;
  for (auto& [user, state] : RandomStates(*world, 60, testing::TestSeed(19))) {
    state.user = &user;
    const NextWatchMixture m = world->Mixture(state);
    double weights = m.series_weight;
    for (int i = 0; i < m.num_topics; ++i) weights += m.weight[i];
    EXPECT_NEAR(weights, 1.0, 1e-12);
    with_series += m.series_video >= 0;
    const std::vector<double> p = world->Distribution(m);
    EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-9);
    for (int32_t v = 0; v < static_cast<int32_t>(p.size()); v += 7) {
      EXPECT_NEAR(world->Probability(m, v), p[v], 1e-12);
      if (!world->Available(v, state.day)) {
        EXPECT_EQ(p[v], 0.0);
      }
    }
  }
  EXPECT_GT(with_series, 5);
}

TEST(NextWatchTest, SamplesFollowTheExactDistribution) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(20)));
  Rng rng(testing::TestSeed(21));
  for (auto& [user, state] : RandomStates(*world, 4, testing::TestSeed(22))) {
    state.user = &user;
    const NextWatchMixture m = world->Mixture(state);
    const std::vector<double> p = world->Distribution(m);
    const int64_t n = 200000;
    std::vector<int64_t> counts(p.size(), 0);
    for (int64_t i = 0; i < n; ++i) counts[world->SampleNextWatch(m, rng)]++;
    int dof = 0;
    const double chi2 = ChiSquare(counts, p, n, &dof);
    EXPECT_LT(chi2, ChiSquareBound(dof)) << "dof " << dof;
    EXPECT_GT(dof, 20);
    for (size_t v = 0; v < p.size(); ++v) {
      if (p[v] == 0) {
        ASSERT_EQ(counts[v], 0) << "sampled an impossible video " << v;
      }
    }
  }
}

TEST(AliasTableTest, SamplesFollowTheWeights) {
  const std::vector<double> w = {5, 0, 1, 3, 0.5, 0.5, 10, 2};
  std::vector<float> prob(w.size());
  std::vector<uint32_t> other(w.size());
  BuildAliasTable(w.data(), w.size(), prob.data(), other.data());
  Rng rng(testing::TestSeed(23));
  const int64_t n = 400000;
  std::vector<int64_t> counts(w.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<uint32_t>(rng.UniformInt(w.size()));
    counts[rng.Uniform() < prob[k] ? k : other[k]]++;
  }
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  for (size_t i = 0; i < w.size(); ++i) {
    const double p = w[i] / total;
    EXPECT_NEAR(counts[i], n * p, 6 * std::sqrt(n * p * (1 - p)) + 1e-9) << i;
  }
}

TEST(ImpressionTest, ClickbaitClicksMoreAndIsWatchedLess) {
  WorldOptions o = TinyOptions(testing::TestSeed(24));
  o.clickbait_fraction = 0.5;
  auto world = BuildOrDie(o);
  const UserProfile user = world->MakeUser(3);
  NextWatchState s;
  s.user = &user;
  s.day = 10;
  const NextWatchMixture m = world->Mixture(s);
  double click[2] = {0, 0}, watch_fraction[2] = {0, 0};
  int n[2] = {0, 0};
  for (int32_t v = 0; v < static_cast<int32_t>(world->videos().size()); ++v) {
    const Video& video = world->videos()[v];
    if (!world->Available(v, 10)) continue;
    const ImpressionTruth t = world->Impression(user, m, v, 0);
    ASSERT_GT(t.click_prob, 0);
    ASSERT_LT(t.click_prob, 1);
    ASSERT_LE(t.expected_watch_if_clicked, video.duration);
    click[video.clickbait] += t.click_prob;
    watch_fraction[video.clickbait] += t.expected_watch_if_clicked / video.duration;
    n[video.clickbait]++;
    // More previous impressions, fewer clicks.
    EXPECT_LT(world->Impression(user, m, v, 3).click_prob, t.click_prob);
  }
  ASSERT_GT(n[0], 100);
  ASSERT_GT(n[1], 100);
  if (user.clickbait_susceptibility > 0.2) {
    EXPECT_GT(click[1] / n[1], click[0] / n[0]);
  }
  EXPECT_LT(watch_fraction[1] / n[1], 0.5 * watch_fraction[0] / n[0]);
}

TEST(ImpressionTest, SampledWatchTimeHasTheStatedMean) {
  auto world = BuildOrDie(TinyOptions(testing::TestSeed(25)));
  Rng rng(testing::TestSeed(26));
  for (double e : {0.1, 0.4, 0.5, 0.7, 0.95}) {
    ImpressionTruth t;
    t.click_prob = 1;
    t.engagement = e;
    t.expected_watch_if_clicked = world->videos()[0].duration * (e <= 0.5 ? e : 1 - 1 / (4 * e));
    const int n = 200000;
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += world->SampleWatchTime(0, t, rng);
    // Watch fraction is bounded in [0, 1]: standard error <= 0.5 / sqrt(n).
    EXPECT_NEAR(sum / n, t.expected_watch_if_clicked,
                6 * 0.5 / std::sqrt(n) * world->videos()[0].duration)
        << "engagement " << e;
  }
}

}  // namespace
}  // namespace vrec
