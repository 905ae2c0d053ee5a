#include "model/ranking_page.h"

#include <algorithm>
#include <cmath>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::model {
namespace {

QuantileNormalizer Normalizer(std::vector<double> q) {
  return *QuantileNormalizer::FromQuantiles(q);
}

// The serving model's shape (features as models/ranking_spec.cc declares
// them), sizes scaled by `dim` and `tower`.
RankingModelOptions PageOptions(int dim, std::vector<int> tower) {
  RankingModelOptions o;
  o.tables = {{"video", dim}, {"token", dim}, {"topic", std::max(1, dim / 2)},
              {"region", 8},  {"device", 8}};
  o.categorical = {{"impression_video", "video", false, 0}, {"watched_videos", "video", true, 50},
                   {"search_tokens", "token", true, 50},    {"video_topic", "topic", false, 0},
                   {"region", "region", false, 0},          {"device", "device", false, 0}};
  for (const char* name : {"time_since_last_watch", "previous_impressions", "video_age",
                           "topic_watch_share", "age", "gender"}) {
    o.continuous.push_back({name, Normalizer({0, 0.5, 1, 2, 10, 400})});
  }
  o.tower = std::move(tower);
  return o;
}

// The user's features: history, tokens, region, device, age, gender.
const std::vector<bool> kSharedCategorical = {false, true, true, false, true, true};
const std::vector<bool> kSharedContinuous = {false, false, false, false, true, true};

struct User {
  std::vector<int32_t> history, tokens;  // rows of the video / token tables
  int region = -1, device = -1;          // a row, or -1: unknown (no id)
  double age = 0.3, gender = 0.5;
};

// A page of n impressions of `user` and the same impressions as a plain
// batch (the user's features copied into every row).
template <typename S>
struct Pair {
  RankingPage<S> page;
  RankingBatch<S> batch;
};

template <typename S>
Pair<S> MakePair(const RankingModelOptions& o, const User& user, int n, Rng* rng,
                 const std::vector<bool>& shared_cat, const std::vector<bool>& shared_cont) {
  Pair<S> p;
  const int num_videos = 400, num_rows[] = {num_videos, 60, 20, 5, 4};
  std::vector<RowMatrix<S>> tables;
  for (size_t t = 0; t < o.tables.size(); ++t) {
    RowMatrix<S> m(num_rows[t], o.tables[t].dim);
    for (int64_t k = 0; k < m.size(); ++k) m.data()[k] = static_cast<S>(rng->Uniform() - 0.5);
    tables.push_back(std::move(m));
  }
  std::vector<int32_t> video(n), topic(n);
  RowMatrix<S> cont(n, 6);
  for (int i = 0; i < n; ++i) {
    video[i] = static_cast<int32_t>(rng->UniformInt(num_videos));
    topic[i] = static_cast<int32_t>(rng->UniformInt(num_rows[2] + 1)) - 1;  // -1: none
    for (int c = 0; c < 4; ++c) cont(i, c) = static_cast<S>(rng->Uniform() * (c == 2 ? 500 : 3));
    cont(i, 4) = static_cast<S>(user.age);
    cont(i, 5) = static_cast<S>(user.gender);
  }
  // A feature the page shares is the same for every impression.
  for (int i = 1; i < n; ++i) {
    if (shared_cat[0]) video[i] = video[0];
    if (shared_cat[3]) topic[i] = topic[0];
    for (int c = 0; c < 6; ++c) {
      if (shared_cont[c]) cont(i, c) = cont(0, c);
    }
  }
  auto list_of = [&](int f, int i) -> std::vector<int32_t> {
    switch (f) {
      case 0: return {video[i]};
      case 1: return user.history;
      case 2: return user.tokens;
      case 3: return topic[i] < 0 ? std::vector<int32_t>{} : std::vector<int32_t>{topic[i]};
      case 4: return user.region < 0 ? std::vector<int32_t>{} : std::vector<int32_t>{user.region};
      default: return user.device < 0 ? std::vector<int32_t>{} : std::vector<int32_t>{user.device};
    }
  };
  p.page.num_impressions = p.batch.batch_size = n;
  p.page.table_rows = p.batch.table_rows = tables;
  p.page.categorical.resize(o.categorical.size());
  p.batch.categorical.resize(o.categorical.size());
  for (size_t f = 0; f < o.categorical.size(); ++f) {
    for (int i = 0; i < n; ++i) {
      const std::vector<int32_t> l = list_of(static_cast<int>(f), i);
      p.batch.categorical[f].Append(l.begin(), l.end());
      if (!shared_cat[f] || i == 0) p.page.categorical[f].Append(l.begin(), l.end());
    }
  }
  p.batch.continuous = cont;
  p.page.continuous = cont;
  // A shared continuous feature is read from row 0 only: garbage elsewhere.
  for (int c = 0; c < 6; ++c) {
    if (!shared_cont[c]) continue;
    for (int i = 1; i < n; ++i) p.page.continuous(i, c) = static_cast<S>(-1e6);
  }
  return p;
}

template <typename S>
std::vector<S> Dense(const RankingModel<S>& model, Rng* rng) {
  std::vector<S> dense(model.layout().size());
  model.InitializeDense(rng->Next(), absl::MakeSpan(dense));
  for (const auto& block : model.layout().blocks()) {  // nonzero biases
    if (block.rows != 1) continue;
    for (int j = 0; j < block.cols; ++j) {
      dense[block.offset + j] = static_cast<S>(0.2 * (rng->Uniform() - 0.3));
    }
  }
  return dense;
}

// The page's logits against the plain forward's on the same impressions:
// returns the largest |difference| / (1 + |plain|).
template <typename S>
double MaxRelativeDifference(const RankingModelOptions& o, const User& user, int n, uint64_t seed,
                             const std::vector<bool>& shared_cat = kSharedCategorical,
                             const std::vector<bool>& shared_cont = kSharedContinuous) {
  Rng rng(seed);
  auto model = RankingModel<S>::Create(o);
  EXPECT_OK(model);
  const std::vector<S> dense = Dense(*model, &rng);
  Pair<S> p = MakePair<S>(o, user, n, &rng, shared_cat, shared_cont);
  std::vector<S> plain, split;
  EXPECT_OK(model->Logits(dense, p.batch, &plain));
  auto forward = RankingPageForward<S>::Create(&*model, dense, shared_cat, shared_cont);
  EXPECT_OK(forward);
  RankingPageProfile profile;
  EXPECT_OK(forward->Logits(p.page, &split, &profile));
  EXPECT_EQ(split.size(), static_cast<size_t>(n));
  EXPECT_EQ(plain.size(), static_cast<size_t>(n));
  double worst = 0, spread = 0;
  for (int i = 0; i < n && i < static_cast<int>(split.size()); ++i) {
    worst = std::max(worst, std::abs(double{split[i]} - plain[i]) / (1 + std::abs(double{plain[i]})));
    spread = std::max(spread, std::abs(double{plain[i]} - plain[0]));
  }
  // The impressions must differ, or the test could not tell them apart.
  if (n > 4) {
    EXPECT_GT(spread, 1e-3);
  }
  EXPECT_GE(profile.first_layer, 0);
  return worst;
}

User SomeUser(int history, int tokens, Rng* rng) {
  User u;
  for (int i = 0; i < history; ++i) u.history.push_back(static_cast<int32_t>(rng->UniformInt(400)));
  for (int i = 0; i < tokens; ++i) u.tokens.push_back(static_cast<int32_t>(rng->UniformInt(60)));
  u.region = 2;
  u.device = 1;
  u.age = 0.7;
  u.gender = 1;
  return u;
}

TEST(RankingPageForwardTest, EqualsThePlainForwardForRandomPages) {
  const uint64_t seed = vrec::testing::TestSeed(41);
  Rng rng(seed);
  const RankingModelOptions o = PageOptions(8, {32, 16});
  for (int n : {1, 2, 15, 16, 17, 300}) {
    for (int history : {0, 1, 10, 50}) {
      User u = SomeUser(history, history % 7, &rng);
      if (history == 0) u.region = u.device = -1;  // an unknown user: empty lists everywhere
      const uint64_t s = rng.Next();
      SCOPED_TRACE(::testing::Message() << "n " << n << " history " << history << " seed " << s);
      EXPECT_LT(MaxRelativeDifference<double>(o, u, n, s), 1e-12);
      EXPECT_LT(MaxRelativeDifference<float>(o, u, n, s), 1e-5);
    }
  }
}

// The paper-sized tower (1024-512-256 over 258 inputs, 150 of them the
// user's) at 300 impressions, in float as served.
TEST(RankingPageForwardTest, EqualsThePlainForwardAtThePaperSize) {
  const uint64_t seed = vrec::testing::TestSeed(42);
  Rng rng(seed);
  const RankingModelOptions o = PageOptions(64, {1024, 512, 256});
  auto model = RankingModel<float>::Create(o);
  ASSERT_OK(model);
  ASSERT_EQ(model->input_width(), 258);
  const std::vector<float> dense(model->layout().size());
  ASSERT_OK_AND_ASSIGN(auto forward, RankingPageForward<float>::Create(
                                         &*model, dense, kSharedCategorical, kSharedContinuous));
  EXPECT_EQ(forward.shared_width(), 150);
  EXPECT_EQ(forward.impression_width(), 108);
  // 300 x (108 x 1024 + 1024 x 512 + 512 x 256 + 256) + 150 x 1024 multiply-adds.
  EXPECT_EQ(forward.ForwardFlops(300), 2LL * (300LL * (108 * 1024 + 1024 * 512 + 512 * 256 + 256) +
                                              150 * 1024));
  const User u = SomeUser(10, 3, &rng);
  EXPECT_LT(MaxRelativeDifference<float>(o, u, 300, rng.Next()), 1e-5) << "seed " << seed;
}

// Any split: nothing shared (the plain first layer), everything but the video
// shared, no hidden layer (the logit is the first layer).
TEST(RankingPageForwardTest, AnySplitAndTowerDepth) {
  const uint64_t seed = vrec::testing::TestSeed(43);
  Rng rng(seed);
  const User u = SomeUser(5, 2, &rng);
  const std::vector<bool> none_cat(6, false), none_cont(6, false);
  const std::vector<bool> most_cat = {false, true, true, true, true, true}, all_cont(6, true);
  for (const std::vector<int>& tower : {std::vector<int>{}, std::vector<int>{12}}) {
    const RankingModelOptions o = PageOptions(4, tower);
    SCOPED_TRACE(::testing::Message() << "layers " << tower.size() << " seed " << seed);
    EXPECT_LT(MaxRelativeDifference<double>(o, u, 33, rng.Next(), none_cat, none_cont), 1e-12);
    EXPECT_LT(MaxRelativeDifference<double>(o, u, 33, rng.Next(), most_cat, all_cont), 1e-12);
  }
}

TEST(RankingPageForwardTest, RefusesMasksAndPagesThatDoNotFit) {
  Rng rng(vrec::testing::TestSeed(44));
  const RankingModelOptions o = PageOptions(4, {8});
  ASSERT_OK_AND_ASSIGN(auto model, RankingModel<float>::Create(o));
  std::vector<float> dense(model.layout().size());
  EXPECT_THAT(RankingPageForward<float>::Create(&model, dense, {true}, kSharedContinuous),
              StatusIs(absl::StatusCode::kInvalidArgument, "masks"));
  EXPECT_THAT(RankingPageForward<float>::Create(&model, absl::MakeSpan(dense).subspan(1),
                                                kSharedCategorical, kSharedContinuous),
              StatusIs(absl::StatusCode::kInvalidArgument, "dense"));
  ASSERT_OK_AND_ASSIGN(auto forward, RankingPageForward<float>::Create(
                                         &model, dense, kSharedCategorical, kSharedContinuous));
  const User u = SomeUser(3, 1, &rng);
  std::vector<float> z;
  {  // a shared feature given per impression (the plain batch's lists)
    Pair<float> p = MakePair<float>(o, u, 5, &rng, kSharedCategorical, kSharedContinuous);
    p.page.categorical[1] = p.batch.categorical[1];
    EXPECT_THAT(forward.Logits(p.page, &z),
                StatusIs(absl::StatusCode::kInvalidArgument, "watched_videos' (shared)"));
  }
  {  // an impression without its video list
    Pair<float> p = MakePair<float>(o, u, 5, &rng, kSharedCategorical, kSharedContinuous);
    p.page.categorical[0].offsets.pop_back();
    p.page.categorical[0].indices.pop_back();
    EXPECT_THAT(forward.Logits(p.page, &z),
                StatusIs(absl::StatusCode::kInvalidArgument, "impression_video"));
  }
  {  // an id beyond the table's rows
    Pair<float> p = MakePair<float>(o, u, 5, &rng, kSharedCategorical, kSharedContinuous);
    p.page.categorical[2].indices[0] = 1000;
    EXPECT_THAT(forward.Logits(p.page, &z),
                StatusIs(absl::StatusCode::kInvalidArgument, "search_tokens"));
  }
  {  // continuous values for fewer impressions
    Pair<float> p = MakePair<float>(o, u, 5, &rng, kSharedCategorical, kSharedContinuous);
    p.page.continuous.conservativeResize(4, 6);
    EXPECT_THAT(forward.Logits(p.page, &z),
                StatusIs(absl::StatusCode::kInvalidArgument, "continuous"));
  }
  RankingPage<float> empty;
  EXPECT_THAT(forward.Logits(empty, &z),
              StatusIs(absl::StatusCode::kInvalidArgument, "0 impressions"));
}

}  // namespace
}  // namespace vrec::model
