#include "models/ranking_scorer.h"

#include <cmath>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::models {
namespace {

// Every row of every table a fixed function of (table, key): a model that
// was never trained but whose weights are all nonzero and distinct.
class HashedParameters : public ParameterSource {
 public:
  explicit HashedParameters(const ModelSpec* spec) : spec_(spec) {}
  Status Pull(int table, absl::Span<const uint64_t> keys, float* out) override {
    const uint32_t dim = spec_->Table(table).dim();
    for (size_t i = 0; i < keys.size(); ++i) {
      Rng rng(HashCombine(static_cast<uint64_t>(table) + 1, keys[i]));
      for (uint32_t j = 0; j < dim; ++j) out[i * dim + j] = static_cast<float>(rng.Uniform() - 0.5);
    }
    return absl::OkStatus();
  }

 private:
  const ModelSpec* spec_;
};

ModelSpec Spec() {
  RankingSpecOptions o;
  o.embedding_dim = 8;
  o.tower = {32, 16};
  o.max_history = 50;
  ModelSpec spec = *RankingSpec(o);
  for (const std::string& name : RankingContinuousFeatures()) {
    QuantileInfo q;
    q.set_feature(name);
    for (double v : {0.0, 0.3, 1.0, 2.0, 30.0, 400.0}) q.add_quantiles(v);
    spec.quantiles.push_back(q);
  }
  return spec;
}

RankingExample User(int history, int tokens, uint32_t region, Rng* rng) {
  RankingExample u;
  for (int i = 0; i < history; ++i) u.add_watch_history(rng->UniformInt(1000) + 1);
  for (int i = 0; i < tokens; ++i) u.add_search_tokens(rng->UniformInt(100) + 1);
  u.set_region(region);
  u.set_device(region == 0 ? 0 : 2);
  u.set_age(static_cast<float>(rng->Uniform()));
  u.set_gender(0.5f);
  // Fields of an impression, which the page must not read from the user.
  u.set_impression_video(7);
  u.set_video_topic(3);
  u.set_video_age(99);
  return u;
}

std::vector<RankingImpression> Impressions(int n, Rng* rng) {
  std::vector<RankingImpression> out(n);
  for (RankingImpression& i : out) {
    i.video = rng->UniformInt(1000) + 1;
    i.topic = static_cast<uint32_t>(rng->UniformInt(6));  // 0: unknown
    i.time_since_last_watch = rng->Bernoulli(0.5) ? 1.f : 365.f;
    i.previous_impressions = static_cast<float>(rng->UniformInt(3));
    i.video_age = static_cast<float>(rng->Uniform() * 400);
    i.topic_watch_share = static_cast<float>(rng->Uniform());
  }
  return out;
}

// A page's logits equal the plain scorer's on the same impressions as full
// examples: the user's features (history truncated to max_history as in
// training, empty lists, unknown region and device) and the impressions'
// land in the same columns. One scorer serves pages of every size in turn.
TEST(RankingScorerTest, PageLogitsEqualLogitsOfTheSameImpressions) {
  const uint64_t seed = vrec::testing::TestSeed(51);
  Rng rng(seed);
  const ModelSpec spec = Spec();
  HashedParameters params(&spec);
  ASSERT_OK_AND_ASSIGN(auto scorer, RankingScorer::Create(spec, &params));
  struct Case {
    int history, tokens;
    uint32_t region;
    int n;
  };
  for (const Case& c : std::vector<Case>{
           {10, 3, 2, 300}, {0, 0, 0, 1}, {80, 60, 1, 17}, {1, 0, 3, 16}, {50, 2, 0, 300}}) {
    SCOPED_TRACE(::testing::Message() << "history " << c.history << " n " << c.n << " seed "
                                      << seed);
    const RankingExample user = User(c.history, c.tokens, c.region, &rng);
    const std::vector<RankingImpression> page = Impressions(c.n, &rng);
    std::vector<RankingExample> examples;
    for (const RankingImpression& i : page) examples.push_back(ImpressionExample(user, i));
    std::vector<float> plain, split;
    ASSERT_OK(scorer->Logits(examples, &plain));
    model::RankingPageProfile profile;
    ASSERT_OK(scorer->PageLogits(user, page, &split, &profile));
    ASSERT_EQ(split.size(), page.size());
    double spread = 0;
    for (size_t i = 0; i < page.size(); ++i) {
      EXPECT_NEAR(split[i], plain[i], 1e-5 * (1 + std::abs(plain[i]))) << i;
      spread = std::max(spread, std::abs(double{plain[i]} - plain[0]));
    }
    if (c.n > 1) {
      EXPECT_GT(spread, 1e-4);  // the impressions' features reach the logits
    }
  }
  // A different user changes every logit of the same impressions.
  const std::vector<RankingImpression> page = Impressions(5, &rng);
  std::vector<float> a, b;
  ASSERT_OK(scorer->PageLogits(User(5, 1, 1, &rng), page, &a));
  ASSERT_OK(scorer->PageLogits(User(5, 1, 1, &rng), page, &b));
  for (size_t i = 0; i < page.size(); ++i) EXPECT_NE(a[i], b[i]) << i;
  EXPECT_THAT(scorer->PageLogits(User(1, 1, 1, &rng), {}, &a),
              StatusIs(absl::StatusCode::kInvalidArgument, "no impressions"));
}

}  // namespace
}  // namespace vrec::models
