#include "model/ranking_model.h"

#include <cmath>

#include "gradient_check.h"
#include "testutil/testutil.h"

namespace vrec::model {
namespace {

using gradcheck::CheckGradients;
using M = RowMatrix<double>;

void Fill(int rows, int cols, Rng* rng, M* m) {
  m->resize(rows, cols);
  for (int64_t k = 0; k < m->size(); ++k) m->data()[k] = 0.5 * (2 * rng->Uniform() - 1);
}

QuantileNormalizer Normalizer(std::vector<double> q) {
  return *QuantileNormalizer::FromQuantiles(q);
}

// Two tables; "video" is shared by the univalent impression video and the
// multivalent watch history.
RankingModelOptions TinyOptions() {
  RankingModelOptions o;
  o.tables = {{"video", 3}, {"language", 2}};
  o.categorical = {{"impression_video", "video", false, 0},
                   {"watched_videos", "video", true, 4},
                   {"user_language", "language", false, 0}};
  o.continuous = {{"time_since_last_watch", Normalizer({0, 1, 2, 4, 8})},
                  {"previous_impressions", Normalizer({0, 1, 3, 10})}};
  o.tower = {5, 3};
  return o;
}

RankingBatch<double> TinyBatch(Rng* rng) {
  RankingBatch<double> b;
  b.batch_size = 4;
  b.table_rows.resize(2);
  Fill(5, 3, rng, &b.table_rows[0]);
  Fill(2, 2, rng, &b.table_rows[1]);
  b.categorical.resize(3);
  for (int v : {0, 1, 2, 0}) b.categorical[0].Append({v});
  b.categorical[1].Append({3, 4});
  b.categorical[1].Append({});
  b.categorical[1].Append({0, 0, 1, 4});
  b.categorical[1].Append({2});
  b.categorical[2].Append({0});
  b.categorical[2].Append({1});
  b.categorical[2].Append({});
  b.categorical[2].Append({1});
  b.continuous.resize(4, 2);
  // Values strictly inside quantile intervals (the CDF is piecewise linear).
  b.continuous << 0.5, 2.5, 3.3, 0.2, 7.0, 6.0, 1.5, 1.7;
  b.clicked = {1, 0, 1, 0};
  b.watch_time = {12.0, 0.0, 3.5, 0.0};
  return b;
}

TEST(RankingModelTest, GradientMatchesFiniteDifferences) {
  const uint64_t seed = vrec::testing::TestSeed(31);
  Rng rng(seed);
  ASSERT_OK_AND_ASSIGN(auto model, RankingModel<double>::Create(TinyOptions()));
  EXPECT_EQ(model.input_width(), 3 + 3 + 2 + 6);
  RankingBatch<double> b = TinyBatch(&rng);
  std::vector<double> dense(model.layout().size());
  model.InitializeDense(seed, absl::MakeSpan(dense));
  for (const auto& block : model.layout().blocks()) {
    if (block.rows == 1) {
      for (int j = 0; j < block.cols; ++j) dense[block.offset + j] = 0.1 + 0.05 * j;
    }
  }
  RankingGradients<double> g;
  ASSERT_OK_AND_ASSIGN(double loss0, model.TrainStep(dense, b, &g));
  auto loss = [&] { return *model.Loss(dense, b); };
  EXPECT_NEAR(loss(), loss0, 1e-12);
  CheckGradients(
      loss, {{"dense", dense.data(), g.dense.data(), model.layout().size()},
             {"video", b.table_rows[0].data(), g.table_rows[0].data(), b.table_rows[0].size()},
             {"language", b.table_rows[1].data(), g.table_rows[1].data(), b.table_rows[1].size()}});
  // The shared table gets gradient from both features: row 3 is used only by
  // the history, row 2 by both.
  EXPECT_GT(g.table_rows[0].row(3).cwiseAbs().sum(), 0);
}

TEST(RankingModelTest, ServingScoreIsExpOfLogitAndLossUsesWatchTimeWeights) {
  Rng rng(vrec::testing::TestSeed(32));
  RankingModelOptions o = TinyOptions();
  ASSERT_OK_AND_ASSIGN(auto model, RankingModel<double>::Create(o));
  RankingBatch<double> b = TinyBatch(&rng);
  std::vector<double> dense(model.layout().size());
  model.InitializeDense(5, absl::MakeSpan(dense));
  std::vector<double> z, scores;
  ASSERT_OK(model.Logits(dense, b, &z));
  ASSERT_OK(model.ExpectedWatchTime(dense, b, &scores));
  ASSERT_EQ(scores.size(), 4u);
  double expected = 0, total = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(scores[i], std::exp(z[i]));
    const double w = b.clicked[i] == 1 ? b.watch_time[i] : 1.0;
    const double p = 1 / (1 + std::exp(-z[i]));
    expected -= w * (b.clicked[i] * std::log(p) + (1 - b.clicked[i]) * std::log(1 - p));
    total += w;
  }
  ASSERT_OK_AND_ASSIGN(double weighted, model.Loss(dense, b));
  EXPECT_NEAR(weighted, expected / total, 1e-12);
  o.weighted = false;
  ASSERT_OK_AND_ASSIGN(auto unweighted_model, RankingModel<double>::Create(o));
  ASSERT_OK_AND_ASSIGN(double unweighted, unweighted_model.Loss(dense, b));
  EXPECT_GT(std::abs(unweighted - weighted), 1e-6);
}

TEST(RankingModelTest, RejectsBadOptionsAndBatches) {
  RankingModelOptions o = TinyOptions();
  o.categorical[1].table = "nope";
  EXPECT_THAT(RankingModel<double>::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown table 'nope'"));
  Rng rng(3);
  ASSERT_OK_AND_ASSIGN(auto model, RankingModel<double>::Create(TinyOptions()));
  std::vector<double> dense(model.layout().size());
  RankingGradients<double> g;
  {
    auto b = TinyBatch(&rng);
    b.categorical[0].Clear();
    for (int i = 0; i < 4; ++i) b.categorical[0].Append({0, 1});
    EXPECT_THAT(model.TrainStep(dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "feature 'impression_video': example 0 has 2 ids, at most 1"));
  }
  {
    auto b = TinyBatch(&rng);
    b.clicked[2] = 0.5;
    EXPECT_THAT(model.TrainStep(dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument, "clicked of example 2"));
  }
  {
    auto b = TinyBatch(&rng);
    b.watch_time[1] = -1;
    EXPECT_THAT(model.TrainStep(dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument, "watch_time of example 1"));
  }
}

}  // namespace
}  // namespace vrec::model
