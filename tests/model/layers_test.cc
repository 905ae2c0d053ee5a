#include "model/layers.h"

#include <cmath>

#include "gradient_check.h"
#include "testutil/testutil.h"

namespace vrec::model {
namespace {

using gradcheck::CheckGradients;
using gradcheck::GradBlock;
using M = RowMatrix<double>;

M Random(int rows, int cols, Rng* rng, double scale = 1.0) {
  M m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = scale * (2 * rng->Uniform() - 1);
  return m;
}

double Dot(const M& a, const M& b) { return a.cwiseProduct(b).sum(); }

TEST(EmbeddingBagTest, MeanOfListsEmptyGivesZerosRepeatsCount) {
  M rows(3, 2);
  rows << 1, 2, 3, 4, 10, 20;
  IndexLists lists;
  lists.Append({0, 1});
  lists.Append({});
  lists.Append({2, 2, 0});
  M out;
  EmbeddingBagForward(rows, lists, &out);
  ASSERT_EQ(out.rows(), 3);
  EXPECT_DOUBLE_EQ(out(0, 0), 2);
  EXPECT_DOUBLE_EQ(out(0, 1), 3);
  EXPECT_DOUBLE_EQ(out(1, 0), 0);
  EXPECT_DOUBLE_EQ(out(1, 1), 0);
  EXPECT_DOUBLE_EQ(out(2, 0), 7);
  EXPECT_DOUBLE_EQ(out(2, 1), 14);
}

TEST(EmbeddingBagTest, GradientMatchesFiniteDifferences) {
  Rng rng(vrec::testing::TestSeed(11));
  M rows = Random(5, 3, &rng);
  IndexLists lists;
  lists.Append({0, 1, 1});
  lists.Append({});
  lists.Append({4});
  lists.Append({2, 4, 0, 2});
  const M r = Random(4, 3, &rng);
  M out;
  auto loss = [&] {
    EmbeddingBagForward(rows, lists, &out);
    return Dot(out, r);
  };
  M grad = M::Zero(5, 3);
  EmbeddingBagBackward(r, lists, &grad);
  // Row 3 is never used: zero gradient.
  EXPECT_EQ(grad.row(3).squaredNorm(), 0);
  EXPECT_EQ(CheckGradients(loss, {{"rows", rows.data(), grad.data(), rows.size()}}), 15);
}

TEST(ConcatTest, GradientMatchesFiniteDifferences) {
  Rng rng(vrec::testing::TestSeed(12));
  M a = Random(3, 2, &rng), b = Random(3, 4, &rng);
  const M r = Random(3, 6, &rng);
  M out;
  auto loss = [&] {
    ConcatForward<double>({&a, &b}, &out);
    return Dot(out, r);
  };
  loss();
  EXPECT_EQ(out(1, 3), b(1, 1));
  M ga, gb;
  ConcatBackward<double>(r, {2, 4}, {&ga, &gb});
  CheckGradients(loss,
                 {{"a", a.data(), ga.data(), a.size()}, {"b", b.data(), gb.data(), b.size()}});
}

TEST(DenseLayerTest, ReluGradientMatchesFiniteDifferences) {
  Rng rng(vrec::testing::TestSeed(13));
  DenseParameters layout;
  DenseLayer layer(&layout, "l", 5, 4, DenseLayer::Activation::kRelu);
  std::vector<double> params(layout.size());
  layer.Initialize(&rng, params.data());
  for (int j = 0; j < 4; ++j) params[layout.block(1).offset + j] = 0.1 * (j - 1.5);
  M x = Random(6, 5, &rng);
  const M r = Random(6, 4, &rng);
  M y;
  auto loss = [&] {
    layer.Forward(params.data(), x, &y);
    return Dot(y, r);
  };
  loss();
  // Away from the kink: no pre-activation within 1e-4 of 0 for this seed.
  M pre = x * layout.Matrix(params.data(), 0);
  pre.rowwise() += layout.Matrix(params.data(), 1).row(0);
  ASSERT_GT(pre.cwiseAbs().minCoeff(), 1e-4);
  EXPECT_GT((y.array() == 0).count(), 0) << "want some inactive units";
  std::vector<double> grads(layout.size());
  M gy = r, gx;
  layer.Backward(params.data(), x, y, &gy, grads.data(), &gx);
  CheckGradients(loss, {{"params", params.data(), grads.data(), layout.size()},
                        {"x", x.data(), gx.data(), x.size()}});
}

struct SoftmaxFixture {
  int batch = 4, d = 3, rows = 6;
  M u, out_rows;
  std::vector<int32_t> labels{0, 1, 2, 0};
  std::vector<int32_t> negatives{3, 1, 4, 3, 5};  // row 1 is example 1's label; 3 twice
  std::vector<double> label_log_q{-1.0, -2.0, -1.5, -1.0};
  std::vector<double> negative_log_q{-0.5, -2.0, -1.2, -0.5, -3.0};
  explicit SoftmaxFixture(Rng* rng) : u(Random(4, 3, rng)), out_rows(Random(6, 4, rng)) {}
};

TEST(SampledSoftmaxTest, GradientMatchesFiniteDifferences) {
  Rng rng(vrec::testing::TestSeed(14));
  SoftmaxFixture f(&rng);
  SampledSoftmax<double> sm;
  auto loss = [&] {
    return sm.Compute(f.u, f.out_rows, f.labels, f.negatives, f.label_log_q.data(),
                      f.negative_log_q.data(), nullptr, nullptr);
  };
  M gu, grows = M::Zero(f.rows, f.d + 1);
  const double l = sm.Compute(f.u, f.out_rows, f.labels, f.negatives, f.label_log_q.data(),
                              f.negative_log_q.data(), &gu, &grows);
  EXPECT_NEAR(l, loss(), 1e-12);
  CheckGradients(loss, {{"u", f.u.data(), gu.data(), f.u.size()},
                        {"out_rows", f.out_rows.data(), grows.data(), f.out_rows.size()}});
}

// The loss by hand: logQ-corrected logits, accidental hits dropped.
TEST(SampledSoftmaxTest, MatchesDirectFormulaWithAccidentalHitsRemoved) {
  Rng rng(vrec::testing::TestSeed(15));
  SoftmaxFixture f(&rng);
  double expected = 0;
  for (int i = 0; i < f.batch; ++i) {
    auto logit = [&](int row, double log_q) {
      return f.u.row(i).dot(f.out_rows.row(row).head(f.d)) + f.out_rows(row, f.d) - log_q;
    };
    const double t = logit(f.labels[i], f.label_log_q[i]);
    double sum = std::exp(t);
    for (size_t j = 0; j < f.negatives.size(); ++j) {
      if (f.negatives[j] == f.labels[i]) continue;
      sum += std::exp(logit(f.negatives[j], f.negative_log_q[j]));
    }
    expected += std::log(sum) - t;
  }
  expected /= f.batch;
  SampledSoftmax<double> sm;
  EXPECT_NEAR(sm.Compute(f.u, f.out_rows, f.labels, f.negatives, f.label_log_q.data(),
                         f.negative_log_q.data(), nullptr, nullptr),
              expected, 1e-12);
}

// Masked slots (an example's watched videos) leave that example's softmax
// exactly as if the negatives were not drawn for it; the masked rows get no
// gradient from it; the gradient still matches finite differences.
TEST(SampledSoftmaxTest, MaskedSlotsAreLeftOutOfTheirExampleOnly) {
  Rng rng(vrec::testing::TestSeed(17));
  SoftmaxFixture f(&rng);
  IndexLists masked;
  masked.Append({0, 3});  // example 0: row 3 (both slots)
  masked.Append({});
  masked.Append({4});  // example 2: row 5
  masked.Append({2});  // example 3: row 4
  SampledSoftmax<double> sm;
  M gu, grows = M::Zero(f.rows, f.d + 1);
  const double l = sm.Compute(f.u, f.out_rows, f.labels, f.negatives, f.label_log_q.data(),
                              f.negative_log_q.data(), &gu, &grows, &masked);
  // Reference: each example alone, its masked negatives removed.
  double expected = 0;
  M gu_ref(f.batch, f.d), grows_ref = M::Zero(f.rows, f.d + 1);
  for (int i = 0; i < f.batch; ++i) {
    std::vector<int32_t> negs;
    std::vector<double> log_q;
    for (size_t j = 0; j < f.negatives.size(); ++j) {
      bool drop = false;
      for (int k = masked.offsets[i]; k < masked.offsets[i + 1]; ++k) {
        drop = drop || masked.indices[k] == static_cast<int>(j);
      }
      if (drop) continue;
      negs.push_back(f.negatives[j]);
      log_q.push_back(f.negative_log_q[j]);
    }
    SampledSoftmax<double> one;
    M gu_i, grows_i = M::Zero(f.rows, f.d + 1);
    expected += one.Compute(f.u.row(i), f.out_rows, {f.labels[i]}, negs, &f.label_log_q[i],
                            log_q.data(), &gu_i, &grows_i) /
                f.batch;
    gu_ref.row(i) = gu_i.row(0) / f.batch;
    grows_ref += grows_i / f.batch;
  }
  EXPECT_NEAR(l, expected, 1e-12);
  EXPECT_LT((gu - gu_ref).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((grows - grows_ref).cwiseAbs().maxCoeff(), 1e-12);
  // A masked row still learns from the examples that do not mask it.
  EXPECT_GT(grows.row(3).cwiseAbs().maxCoeff(), 0);
  auto loss = [&] {
    return sm.Compute(f.u, f.out_rows, f.labels, f.negatives, f.label_log_q.data(),
                      f.negative_log_q.data(), nullptr, nullptr, &masked);
  };
  CheckGradients(loss, {{"u", f.u.data(), gu.data(), f.u.size()},
                        {"out_rows", f.out_rows.data(), grows.data(), f.out_rows.size()}});
}

TEST(SampledSoftmaxTest, AllClassesWithUniformQEqualsFullSoftmax) {
  Rng rng(vrec::testing::TestSeed(16));
  const int v = 7, d = 4, batch = 5;
  M u = Random(batch, d, &rng), table = Random(v, d + 1, &rng, 2.0);
  std::vector<int32_t> labels{0, 6, 3, 3, 1};
  std::vector<int32_t> all(v);
  for (int k = 0; k < v; ++k) all[k] = k;
  std::vector<double> label_log_q(batch, -std::log(v)), neg_log_q(v, -std::log(v));
  SampledSoftmax<double> sm;
  M gu_s, gt_s = M::Zero(v, d + 1), gu_f, gt_f = M::Zero(v, d + 1);
  const double sampled =
      sm.Compute(u, table, labels, all, label_log_q.data(), neg_log_q.data(), &gu_s, &gt_s);
  const double full = FullSoftmax(u, table, labels, &gu_f, &gt_f);
  EXPECT_NEAR(sampled, full, 1e-12);
  EXPECT_LT((gu_s - gu_f).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((gt_s - gt_f).cwiseAbs().maxCoeff(), 1e-12);
  // And the full softmax's own value: mean -log p(label).
  double expected = 0;
  for (int i = 0; i < batch; ++i) {
    Eigen::VectorXd logits = table.leftCols(d) * u.row(i).transpose() + table.col(d);
    expected += std::log(logits.array().exp().sum()) - logits(labels[i]);
  }
  EXPECT_NEAR(full, expected / batch, 1e-12);
}

TEST(FullSoftmaxTest, GradientMatchesFiniteDifferences) {
  Rng rng(vrec::testing::TestSeed(17));
  M u = Random(3, 4, &rng), table = Random(5, 5, &rng);
  std::vector<int32_t> labels{4, 0, 4};
  auto loss = [&] { return FullSoftmax<double>(u, table, labels, nullptr, nullptr); };
  M gu, gt = M::Zero(5, 5);
  FullSoftmax(u, table, labels, &gu, &gt);
  CheckGradients(loss, {{"u", u.data(), gu.data(), u.size()},
                        {"table", table.data(), gt.data(), table.size()}});
}

TEST(WeightedLogisticTest, ValueAndGradient) {
  std::vector<double> z{0.3, -2.0, 5.0, -40.0}, y{1, 0, 1, 0}, w{2.5, 1, 10, 1};
  double expected = 0;
  for (int i = 0; i < 4; ++i) {
    const double p = 1 / (1 + std::exp(-z[i]));
    expected -= w[i] * (y[i] * std::log(p) + (1 - y[i]) * std::log(1 - p));
  }
  expected /= 14.5;
  std::vector<double> g(4);
  EXPECT_NEAR(WeightedLogisticLoss(z.data(), y.data(), w.data(), 4, g.data()), expected, 1e-12);
  auto loss = [&] {
    return WeightedLogisticLoss<double>(z.data(), y.data(), w.data(), 4, nullptr);
  };
  CheckGradients(loss, {{"z", z.data(), g.data(), 4}});
  // Large |z| stays finite.
  std::vector<double> big{800, -800}, yb{0, 1}, wb{1, 1};
  EXPECT_NEAR(WeightedLogisticLoss<double>(big.data(), yb.data(), wb.data(), 2, nullptr), 800,
              1e-9);
}

// The optimum of weighted LR with watch-time weights: the odds equal the
// expected watch time (for a small click rate this is the paper's claim).
TEST(WeightedLogisticTest, OptimalOddsAreWatchTimeWeighted) {
  // 1 clicked impression with watch time 30 and 4 unclicked, identical features.
  std::vector<double> y{1, 0, 0, 0, 0}, w{30, 1, 1, 1, 1};
  double best_z = 0, best = 1e9;
  for (double z = 0; z < 5; z += 1e-4) {
    std::vector<double> zs(5, z);
    const double l = WeightedLogisticLoss<double>(zs.data(), y.data(), w.data(), 5, nullptr);
    if (l < best) best = l, best_z = z;
  }
  EXPECT_NEAR(std::exp(best_z), 30.0 / 4.0, 1e-2);  // sum of click weights / #unclicked
}

}  // namespace
}  // namespace vrec::model
