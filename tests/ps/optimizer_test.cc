#include "ps/optimizer.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::ps {
namespace {

// Plain scalar references, written from the papers' formulas in double.
struct RefState {
  std::vector<double> w, a, m, v, z, n;
  int t = 0;
};

void RefSgd(RefState& s, const std::vector<double>& g, double lr) {
  for (size_t i = 0; i < g.size(); ++i) s.w[i] = s.w[i] - lr * g[i];
}

void RefAdagrad(RefState& s, const std::vector<double>& g, double lr, double eps) {
  for (size_t i = 0; i < g.size(); ++i) {
    s.a[i] = s.a[i] + g[i] * g[i];
    s.w[i] = s.w[i] - lr * g[i] / (std::sqrt(s.a[i]) + eps);
  }
}

void RefAdam(RefState& s, const std::vector<double>& g, double lr, double b1, double b2,
             double eps) {
  s.t += 1;
  for (size_t i = 0; i < g.size(); ++i) {
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    const double mhat = s.m[i] / (1 - std::pow(b1, s.t));
    const double vhat = s.v[i] / (1 - std::pow(b2, s.t));
    s.w[i] = s.w[i] - lr * mhat / (std::sqrt(vhat) + eps);
  }
}

// McMahan et al. 2013, Algorithm 1 (per coordinate).
void RefFtrl(RefState& s, const std::vector<double>& g, double alpha, double beta, double l1,
             double l2) {
  for (size_t i = 0; i < g.size(); ++i) {
    const double sigma = (std::sqrt(s.n[i] + g[i] * g[i]) - std::sqrt(s.n[i])) / alpha;
    s.z[i] += g[i] - sigma * s.w[i];
    s.n[i] += g[i] * g[i];
    if (std::abs(s.z[i]) <= l1) {
      s.w[i] = 0;
    } else {
      const double sgn = s.z[i] > 0 ? 1 : -1;
      s.w[i] = -(s.z[i] - sgn * l1) / ((beta + std::sqrt(s.n[i])) / alpha + l2);
    }
  }
}

class OptimizerReferenceTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kDim = 8;
  static constexpr int kSteps = 300;

  // Runs `config` and `ref` over the same random gradient sequence and
  // compares weights after every step.
  template <typename RefFn>
  void Compare(const OptimizerConfig& config, RefState ref, RefFn ref_fn, double tol) {
    ASSERT_OK_AND_ASSIGN(auto opt, Optimizer::Create(config));
    std::vector<float> row(kDim + opt->StateFloats(kDim));
    for (uint32_t i = 0; i < kDim; ++i) row[i] = static_cast<float>(ref.w[i]);
    opt->InitState(row.data(), kDim, row.data() + kDim);
    Rng rng(testing::TestSeed(5));
    for (int step = 0; step < kSteps; ++step) {
      std::vector<float> g(kDim);
      std::vector<double> gd(kDim);
      for (uint32_t i = 0; i < kDim; ++i) {
        // Mixed scales and some exact zeros (a row touched in some coords only).
        g[i] = rng.Bernoulli(0.1) ? 0.0f : static_cast<float>(rng.Normal() * (i + 1) * 0.3);
        gd[i] = g[i];
      }
      opt->Apply(row.data(), row.data() + kDim, g.data(), kDim);
      ref_fn(ref, gd);
      for (uint32_t i = 0; i < kDim; ++i) {
        ASSERT_NEAR(row[i], ref.w[i], tol * (1 + std::abs(ref.w[i])))
            << "step " << step << " coord " << i;
      }
    }
  }

  static RefState InitialState(double a0) {
    RefState s;
    for (uint32_t i = 0; i < kDim; ++i) s.w.push_back(0.05 * (static_cast<double>(i) - 3.5));
    s.a.assign(kDim, a0);
    s.m.assign(kDim, 0);
    s.v.assign(kDim, 0);
    s.n.assign(kDim, 0);
    s.z.assign(kDim, 0);
    return s;
  }
};

TEST_F(OptimizerReferenceTest, Sgd) {
  OptimizerConfig c;
  c.set_kind(OptimizerConfig::SGD);
  c.set_learning_rate(0.05f);
  Compare(
      c, InitialState(0), [](RefState& s, const auto& g) { RefSgd(s, g, 0.05f); }, 1e-5);
}

TEST_F(OptimizerReferenceTest, Adagrad) {
  OptimizerConfig c;
  c.set_kind(OptimizerConfig::ADAGRAD);
  c.set_learning_rate(0.1f);
  // Initial accumulator left at its default (0.1).
  Compare(
      c, InitialState(0.1f), [](RefState& s, const auto& g) { RefAdagrad(s, g, 0.1f, 1e-8f); },
      1e-5);
}

TEST_F(OptimizerReferenceTest, AdamWithPerRowBiasCorrection) {
  OptimizerConfig c;
  c.set_kind(OptimizerConfig::ADAM);
  c.set_learning_rate(0.01f);
  c.set_beta1(0.8f);
  c.set_beta2(0.99f);
  c.set_epsilon(1e-6f);
  Compare(
      c, InitialState(0),
      [](RefState& s, const auto& g) { RefAdam(s, g, 0.01f, 0.8f, 0.99f, 1e-6f); }, 1e-4);
}

TEST_F(OptimizerReferenceTest, Ftrl) {
  OptimizerConfig c;
  c.set_kind(OptimizerConfig::FTRL);
  c.set_ftrl_alpha(0.1f);
  c.set_ftrl_beta(1.0f);
  c.set_l1(0.05f);
  c.set_l2(0.5f);
  RefState s = InitialState(0);
  // Our InitState picks z so that w(z, n=0) equals the initial weights.
  for (uint32_t i = 0; i < kDim; ++i) s.z[i] = -s.w[i] * (1.0f / 0.1f + 0.5f);
  Compare(
      c, s, [](RefState& r, const auto& g) { RefFtrl(r, g, 0.1f, 1.0f, 0.05f, 0.5f); }, 1e-4);
}

TEST(OptimizerTest, AdamStepCounterIsPerRow) {
  OptimizerConfig c;
  c.set_kind(OptimizerConfig::ADAM);
  c.set_learning_rate(0.1f);
  ASSERT_OK_AND_ASSIGN(auto opt, Optimizer::Create(c));
  ASSERT_EQ(opt->StateFloats(4), 9u);
  std::vector<float> a(13, 0.0f), b(13, 0.0f);
  const std::vector<float> g = {1, -1, 0.5, 2};
  for (int i = 0; i < 5; ++i) opt->Apply(a.data(), a.data() + 4, g.data(), 4);
  opt->Apply(b.data(), b.data() + 4, g.data(), 4);
  uint32_t ta, tb;
  std::memcpy(&ta, &a[12], 4);
  std::memcpy(&tb, &b[12], 4);
  EXPECT_EQ(ta, 5u);
  EXPECT_EQ(tb, 1u);
  // First bias-corrected Adam step is lr * sign(g) (up to eps).
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(b[i], -0.1f * (g[i] > 0 ? 1 : -1), 1e-5);
}

TEST(OptimizerTest, SgdConvergesOnQuadratic) {
  OptimizerConfig c;
  c.set_kind(OptimizerConfig::SGD);
  c.set_learning_rate(0.1f);
  ASSERT_OK_AND_ASSIGN(auto opt, Optimizer::Create(c));
  // f(w) = 0.5 * |w - target|^2, gradient w - target.
  std::vector<float> w = {5, -3, 0, 10}, target = {1, 2, -1, 0.5f}, g(4);
  for (int it = 0; it < 300; ++it) {
    for (int i = 0; i < 4; ++i) g[i] = w[i] - target[i];
    opt->Apply(w.data(), nullptr, g.data(), 4);
  }
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(w[i], target[i], 1e-4);
}

TEST(OptimizerTest, FtrlLargeL1GivesExactZeros) {
  OptimizerConfig c;
  c.set_kind(OptimizerConfig::FTRL);
  c.set_ftrl_alpha(0.5f);
  c.set_l1(100.0f);
  ASSERT_OK_AND_ASSIGN(auto opt, Optimizer::Create(c));
  std::vector<float> row(3 * 6, 0.0f);
  opt->InitState(row.data(), 6, row.data() + 6);
  Rng rng(3);
  std::vector<float> g(6);
  for (int it = 0; it < 200; ++it) {
    for (auto& x : g) x = static_cast<float>(rng.Normal());
    opt->Apply(row.data(), row.data() + 6, g.data(), 6);
  }
  for (int i = 0; i < 6; ++i) EXPECT_EQ(row[i], 0.0f);
  // And with no l1 the same gradients move the weights.
  c.set_l1(0);
  ASSERT_OK_AND_ASSIGN(auto free_opt, Optimizer::Create(c));
  std::vector<float> row2(18, 0.0f);
  free_opt->InitState(row2.data(), 6, row2.data() + 6);
  free_opt->Apply(row2.data(), row2.data() + 6, g.data(), 6);
  EXPECT_NE(row2[0], 0.0f);
}

TEST(OptimizerTest, StateLayoutAndValidation) {
  OptimizerConfig c;
  c.set_learning_rate(0.1f);
  for (auto [kind, floats] :
       std::vector<std::pair<OptimizerConfig::Kind, uint32_t>>{{OptimizerConfig::SGD, 0},
                                                               {OptimizerConfig::ADAGRAD, 16},
                                                               {OptimizerConfig::ADAM, 33},
                                                               {OptimizerConfig::FTRL, 32}}) {
    c.set_kind(kind);
    ASSERT_OK_AND_ASSIGN(auto opt, Optimizer::Create(c));
    EXPECT_EQ(opt->StateFloats(16), floats) << kind;
  }
  c.set_kind(OptimizerConfig::ADAGRAD);
  ASSERT_OK_AND_ASSIGN(auto ada, Optimizer::Create(c));
  std::vector<float> state(4);
  ada->InitState(nullptr, 4, state.data());
  EXPECT_EQ(state, std::vector<float>(4, 0.1f));
  c.set_learning_rate(0);
  EXPECT_THAT(Optimizer::Create(c), StatusIs(absl::StatusCode::kInvalidArgument, "learning rate"));
  c.set_learning_rate(0.1f);
  c.set_beta1(1.5f);
  EXPECT_THAT(Optimizer::Create(c), StatusIs(absl::StatusCode::kInvalidArgument, "betas"));
  c.set_beta1(0.9f);
  c.set_l1(-1);
  EXPECT_THAT(Optimizer::Create(c), StatusIs(absl::StatusCode::kInvalidArgument, "l1"));
}

}  // namespace
}  // namespace vrec::ps
