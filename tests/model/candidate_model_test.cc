#include "model/candidate_model.h"

#include "gradient_check.h"
#include "model/batch_builder.h"
#include "testutil/testutil.h"

namespace vrec::model {
namespace {

using gradcheck::CheckGradients;
using M = RowMatrix<double>;

void Fill(int rows, int cols, Rng* rng, M* m, double scale = 0.5) {
  m->resize(rows, cols);
  for (int64_t k = 0; k < m->size(); ++k) m->data()[k] = scale * (2 * rng->Uniform() - 1);
}

CandidateModelOptions TinyOptions() {
  CandidateModelOptions o;
  o.embedding_dim = 3;
  o.region_dim = 2;
  o.device_dim = 2;
  o.tower = {6, 4};
  o.output_dim = 4;
  o.max_history = 4;
  o.max_tokens = 3;
  return o;
}

// 5 examples: empty and repeated histories, a missing region, an accidental
// hit (example 1's label among the negatives) and a duplicated negative.
CandidateBatch<double> TinyBatch(const CandidateModelOptions& o, Rng* rng) {
  CandidateBatch<double> b;
  b.batch_size = 5;
  Fill(6, o.embedding_dim, rng, &b.video_rows);
  b.history.Append({0, 1, 1});
  b.history.Append({});
  b.history.Append({2, 3, 4, 5});
  b.history.Append({5});
  b.history.Append({0, 2});
  Fill(4, o.embedding_dim, rng, &b.token_rows);
  b.search.Append({0});
  b.search.Append({1, 2, 3});
  b.search.Append({});
  b.search.Append({3, 3});
  b.search.Append({2});
  Fill(2, o.region_dim, rng, &b.region_rows);
  for (int r : {0, 1, 1, 0}) b.region.Append({r});
  b.region.Append({});
  Fill(3, o.device_dim, rng, &b.device_rows);
  for (int d : {0, 1, 2, 2, 1}) b.device.Append({d});
  b.demographics.resize(5, 3);
  for (int64_t k = 0; k < 15; ++k) b.demographics.data()[k] = rng->Uniform();
  b.example_age = {0.1, 0.5, 0.0, 0.9, 0.3};
  const std::vector<int64_t> labels{10, 11, 12, 10, 13};
  const std::vector<int64_t> negatives{20, 11, 21, 20, 22};
  OutputCandidates c = BuildOutputCandidates(labels, negatives);
  Fill(static_cast<int>(c.ids.size()), o.output_dim + 1, rng, &b.output_rows);
  b.labels = c.label_rows;
  b.negatives = c.negative_rows;
  b.label_log_q = {-2.0, -2.5, -3.0, -2.0, -1.0};
  b.negative_log_q = {-1.5, -2.5, -2.2, -1.5, -3.0};
  return b;
}

TEST(CandidateModelOptionsTest, PaperTowersAndConfig) {
  EXPECT_TRUE(CandidateModelOptions::PaperTower(0).empty());
  EXPECT_EQ(CandidateModelOptions::PaperTower(4), (std::vector<int>{2048, 1024, 512, 256}));
  CandidateModelConfig config;
  config.add_tower(512);
  config.add_tower(128);
  config.set_embedding_dim(64);
  config.set_use_example_age(true);
  ASSERT_OK_AND_ASSIGN(CandidateModelOptions o, CandidateModelOptions::FromConfig(config));
  EXPECT_EQ(o.output_dim, 128);
  EXPECT_EQ(o.embedding_dim, 64);
  EXPECT_EQ(o.max_history, 50);
  config.set_output_dim(64);
  EXPECT_THAT(CandidateModelOptions::FromConfig(config),
              StatusIs(absl::StatusCode::kInvalidArgument, "output_dim (64)"));
}

TEST(CandidateModelTest, LayoutHasOneBlockPairPerLayer) {
  ASSERT_OK_AND_ASSIGN(auto m, CandidateModel<float>::Create(TinyOptions()));
  EXPECT_EQ(m.input_width(), 3 + 3 + 2 + 2 + 4);
  ASSERT_EQ(m.layout().blocks().size(), 4u);
  EXPECT_EQ(m.layout().block(0).name, "tower/0/w");
  EXPECT_EQ(m.layout().block(0).rows, 14);
  EXPECT_EQ(m.layout().block(0).cols, 6);
  auto o = TinyOptions();
  o.tower.clear();
  ASSERT_OK_AND_ASSIGN(auto linear, CandidateModel<float>::Create(o));
  ASSERT_EQ(linear.layout().blocks().size(), 2u);
  EXPECT_EQ(linear.layout().block(0).name, "projection/w");
}

class CandidateGradientTest : public ::testing::TestWithParam<int> {};

TEST_P(CandidateGradientTest, MatchesFiniteDifferencesForDenseAndEmbeddingRows) {
  const uint64_t seed = vrec::testing::TestSeed(21);
  Rng rng(seed);
  CandidateModelOptions o = TinyOptions();
  o.tower = GetParam() == 0 ? std::vector<int>{} : std::vector<int>{6, 4};
  ASSERT_OK_AND_ASSIGN(auto model, CandidateModel<double>::Create(o));
  CandidateBatch<double> b = TinyBatch(o, &rng);
  std::vector<double> dense(model.layout().size());
  model.InitializeDense(seed, absl::MakeSpan(dense));
  // Positive biases keep ReLU units away from their kink.
  for (const auto& block : model.layout().blocks()) {
    if (block.rows == 1) {
      for (int j = 0; j < block.cols; ++j) dense[block.offset + j] = 0.1 + 0.05 * j;
    }
  }
  CandidateGradients<double> g;
  ASSERT_OK_AND_ASSIGN(double loss0, model.TrainStep(dense, b, &g));
  EXPECT_GT(loss0, 0);
  auto loss = [&] { return *model.Loss(dense, b); };
  EXPECT_NEAR(loss(), loss0, 1e-12);
  const int checked = CheckGradients(
      loss, {{"dense", dense.data(), g.dense.data(), model.layout().size()},
             {"video_rows", b.video_rows.data(), g.video_rows.data(), b.video_rows.size()},
             {"token_rows", b.token_rows.data(), g.token_rows.data(), b.token_rows.size()},
             {"region_rows", b.region_rows.data(), g.region_rows.data(), b.region_rows.size()},
             {"device_rows", b.device_rows.data(), g.device_rows.data(), b.device_rows.size()},
             {"output_rows", b.output_rows.data(), g.output_rows.data(), b.output_rows.size()}});
  EXPECT_GT(checked, 100);
  EXPECT_GT(g.video_rows.cwiseAbs().sum(), 0);
}

INSTANTIATE_TEST_SUITE_P(Depths, CandidateGradientTest, ::testing::Values(0, 2));

TEST(CandidateModelTest, ServingIgnoresExampleAge) {
  Rng rng(vrec::testing::TestSeed(22));
  CandidateModelOptions o = TinyOptions();
  ASSERT_OK_AND_ASSIGN(auto model, CandidateModel<double>::Create(o));
  CandidateBatch<double> b = TinyBatch(o, &rng);
  std::vector<double> dense(model.layout().size());
  model.InitializeDense(3, absl::MakeSpan(dense));
  M u1, u2, u3;
  ASSERT_OK(model.UserVectors(dense, b, &u1));
  b.example_age = {5, 5, 5, 5, 5};
  ASSERT_OK(model.UserVectors(dense, b, &u2));
  EXPECT_EQ(u1, u2);
  EXPECT_EQ(u1.rows(), 5);
  EXPECT_EQ(u1.cols(), 4);
  // Equal to training-time vectors with example age 0.
  b.example_age.assign(5, 0.0);
  CandidateGradients<double> g;
  ASSERT_OK(model.TrainStep(dense, b, &g));
  ASSERT_OK(model.UserVectors(dense, b, &u3));
  EXPECT_EQ(u1, u3);
  // But the training loss does depend on it.
  ASSERT_OK_AND_ASSIGN(double l0, model.Loss(dense, b));
  b.example_age.assign(5, 3.0);
  ASSERT_OK_AND_ASSIGN(double l1, model.Loss(dense, b));
  EXPECT_NE(l0, l1);
}

// With the example age's quantiles, the tower sees the age's CDF: the same
// as a model without them fed the CDF by hand, and a log whose ages are all
// 1000 times longer (20 years against a week) trains alike.
TEST(CandidateModelTest, ExampleAgeIsFedAsItsQuantileCdf) {
  Rng rng(vrec::testing::TestSeed(23));
  CandidateModelOptions raw = TinyOptions();
  CandidateModelOptions norm = raw;
  norm.example_age_quantiles = {0, 2, 10, 60, 7000};
  CandidateModelOptions longer = raw;
  longer.example_age_quantiles = {0, 2000, 10000, 60000, 7000000};
  ASSERT_OK_AND_ASSIGN(auto raw_model, CandidateModel<double>::Create(raw));
  ASSERT_OK_AND_ASSIGN(auto norm_model, CandidateModel<double>::Create(norm));
  ASSERT_OK_AND_ASSIGN(auto longer_model, CandidateModel<double>::Create(longer));
  ASSERT_OK_AND_ASSIGN(QuantileNormalizer q,
                       QuantileNormalizer::FromQuantiles(norm.example_age_quantiles));
  CandidateBatch<double> b = TinyBatch(raw, &rng);
  b.example_age = {1, 30, 0, 6500, 10000};
  CandidateBatch<double> by_hand = b, scaled = b;
  for (int i = 0; i < 5; ++i) {
    by_hand.example_age[i] = q.Cdf(b.example_age[i]);
    scaled.example_age[i] = 1000 * b.example_age[i];
  }
  std::vector<double> dense(raw_model.layout().size());
  raw_model.InitializeDense(3, absl::MakeSpan(dense));
  ASSERT_OK_AND_ASSIGN(double normalised, norm_model.Loss(dense, b));
  ASSERT_OK_AND_ASSIGN(double reference, raw_model.Loss(dense, by_hand));
  ASSERT_OK_AND_ASSIGN(double long_log, longer_model.Loss(dense, scaled));
  EXPECT_DOUBLE_EQ(normalised, reference);
  EXPECT_DOUBLE_EQ(normalised, long_log);
  ASSERT_OK_AND_ASSIGN(double unnormalised, raw_model.Loss(dense, b));
  EXPECT_NE(normalised, unnormalised);
  // Serving feeds age 0: the CDF's bottom, 0.
  M served, zero;
  ASSERT_OK(norm_model.UserVectors(dense, b, &served));
  by_hand.example_age.assign(5, 0.0);
  ASSERT_OK(raw_model.UserVectors(dense, by_hand, &zero));
  EXPECT_EQ(served, zero);
  // Quantiles that are not a distribution are refused.
  norm.example_age_quantiles = {5, 1};
  EXPECT_FALSE(CandidateModel<double>::Create(norm).ok());
}

TEST(CandidateModelTest, RejectsInconsistentBatches) {
  Rng rng(7);
  CandidateModelOptions o = TinyOptions();
  ASSERT_OK_AND_ASSIGN(auto model, CandidateModel<double>::Create(o));
  std::vector<double> dense(model.layout().size());
  CandidateGradients<double> g;
  {
    auto b = TinyBatch(o, &rng);
    b.history.indices[2] = 6;
    EXPECT_THAT(model.TrainStep(dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "history: example 0 position 2 index 6 out of range [0, 6)"));
  }
  {
    auto b = TinyBatch(o, &rng);
    b.search.Clear();
    for (int i = 0; i < 5; ++i) b.search.Append({0, 1, 2, 3});
    EXPECT_THAT(model.TrainStep(dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument, "at most 3"));
  }
  {
    auto b = TinyBatch(o, &rng);
    b.labels[4] = 99;
    EXPECT_THAT(model.TrainStep(dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument, "label of example 4"));
  }
  {
    auto b = TinyBatch(o, &rng);
    b.output_rows.conservativeResize(Eigen::NoChange, 4);
    EXPECT_THAT(model.TrainStep(dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument, "output_rows"));
  }
  {
    auto b = TinyBatch(o, &rng);
    std::vector<double> short_dense(3);
    EXPECT_THAT(model.TrainStep(short_dense, b, &g),
                StatusIs(absl::StatusCode::kInvalidArgument, "dense weights"));
  }
}

}  // namespace
}  // namespace vrec::model
