#include "ps/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vrec::ps {
namespace {

class Sgd final : public Optimizer {
 public:
  explicit Sgd(const OptimizerConfig& c) : Optimizer(c), lr_(c.learning_rate()) {}
  uint32_t StateFloats(uint32_t) const override { return 0; }
  void InitState(const float*, uint32_t, float*) const override {}
  void Apply(float* w, float*, const float* g, uint32_t dim) const override {
    for (uint32_t i = 0; i < dim; ++i) w[i] -= lr_ * g[i];
  }

 private:
  const float lr_;
};

class Adagrad final : public Optimizer {
 public:
  explicit Adagrad(const OptimizerConfig& c)
      : Optimizer(c),
        lr_(c.learning_rate()),
        init_(c.adagrad_initial_accumulator()),
        eps_(c.epsilon()) {}
  uint32_t StateFloats(uint32_t dim) const override { return dim; }
  void InitState(const float*, uint32_t dim, float* s) const override {
    std::fill(s, s + dim, init_);
  }
  void Apply(float* w, float* acc, const float* g, uint32_t dim) const override {
    for (uint32_t i = 0; i < dim; ++i) {
      acc[i] += g[i] * g[i];
      w[i] -= lr_ * g[i] / (std::sqrt(acc[i]) + eps_);
    }
  }

 private:
  const float lr_, init_, eps_;
};

class Adam final : public Optimizer {
 public:
  explicit Adam(const OptimizerConfig& c)
      : Optimizer(c), lr_(c.learning_rate()), b1_(c.beta1()), b2_(c.beta2()), eps_(c.epsilon()) {}
  uint32_t StateFloats(uint32_t dim) const override { return 2 * dim + 1; }
  void InitState(const float*, uint32_t dim, float* s) const override {
    std::fill(s, s + 2 * dim + 1, 0.0f);  // t = 0 is the all-zero bit pattern
  }
  void Apply(float* w, float* s, const float* g, uint32_t dim) const override {
    float* m = s;
    float* v = s + dim;
    uint32_t t;
    std::memcpy(&t, s + 2 * dim, sizeof(t));
    if (t != UINT32_MAX) ++t;
    std::memcpy(s + 2 * dim, &t, sizeof(t));
    // Bias corrections in double: 1 - beta^t loses precision in float for
    // small t and beta close to 1.
    const double c1 = 1.0 - std::pow(static_cast<double>(b1_), t);
    const double c2 = 1.0 - std::pow(static_cast<double>(b2_), t);
    const float step = static_cast<float>(lr_ * std::sqrt(c2) / c1);
    const float eps_hat = static_cast<float>(eps_ * std::sqrt(c2));
    for (uint32_t i = 0; i < dim; ++i) {
      m[i] = b1_ * m[i] + (1.0f - b1_) * g[i];
      v[i] = b2_ * v[i] + (1.0f - b2_) * g[i] * g[i];
      // == lr * mhat / (sqrt(vhat) + eps) with mhat = m/c1, vhat = v/c2.
      w[i] -= step * m[i] / (std::sqrt(v[i]) + eps_hat);
    }
  }

 private:
  const float lr_, b1_, b2_, eps_;
};

class Ftrl final : public Optimizer {
 public:
  explicit Ftrl(const OptimizerConfig& c)
      : Optimizer(c), alpha_(c.ftrl_alpha()), beta_(c.ftrl_beta()), l1_(c.l1()), l2_(c.l2()) {}
  uint32_t StateFloats(uint32_t dim) const override { return 2 * dim; }
  void InitState(const float* w, uint32_t dim, float* s) const override {
    // z chosen so that the weights implied by (z, n = 0) equal the initial
    // weights when l1 = 0: w = -z / (beta/alpha + l2).
    const float denom = beta_ / alpha_ + l2_;
    for (uint32_t i = 0; i < dim; ++i) {
      s[i] = -w[i] * denom;
      s[dim + i] = 0.0f;
    }
  }
  void Apply(float* w, float* s, const float* g, uint32_t dim) const override {
    float* z = s;
    float* n = s + dim;
    for (uint32_t i = 0; i < dim; ++i) {
      const float n_new = n[i] + g[i] * g[i];
      const float sigma = (std::sqrt(n_new) - std::sqrt(n[i])) / alpha_;
      z[i] += g[i] - sigma * w[i];
      n[i] = n_new;
      if (std::fabs(z[i]) <= l1_) {
        w[i] = 0.0f;
      } else {
        const float sign = z[i] < 0 ? -1.0f : 1.0f;
        w[i] = -(z[i] - sign * l1_) / ((beta_ + std::sqrt(n[i])) / alpha_ + l2_);
      }
    }
  }

 private:
  const float alpha_, beta_, l1_, l2_;
};

}  // namespace

StatusOr<std::unique_ptr<Optimizer>> Optimizer::Create(const OptimizerConfig& config) {
  OptimizerConfig c = config;
  if (c.adagrad_initial_accumulator() == 0) c.set_adagrad_initial_accumulator(0.1f);
  if (c.beta1() == 0) c.set_beta1(0.9f);
  if (c.beta2() == 0) c.set_beta2(0.999f);
  if (c.epsilon() == 0) c.set_epsilon(1e-8f);
  if (c.ftrl_alpha() == 0) c.set_ftrl_alpha(c.learning_rate());
  if (c.ftrl_beta() == 0) c.set_ftrl_beta(1.0f);
  const float lr = c.kind() == OptimizerConfig::FTRL ? c.ftrl_alpha() : c.learning_rate();
  if (!(lr > 0) || !std::isfinite(lr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer learning rate (or FTRL alpha) must be finite and > 0, got ", lr));
  }
  if (!(c.beta1() >= 0 && c.beta1() < 1) || !(c.beta2() >= 0 && c.beta2() < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Adam betas must be in [0, 1), got ", c.beta1(), ", ", c.beta2()));
  }
  if (!(c.l1() >= 0) || !(c.l2() >= 0) || !(c.ftrl_beta() >= 0) || !(c.epsilon() > 0) ||
      !(c.adagrad_initial_accumulator() > 0)) {
    return absl::InvalidArgumentError(
        "optimizer l1, l2, ftrl_beta must be >= 0; epsilon and the Adagrad initial "
        "accumulator > 0");
  }
  switch (c.kind()) {
    case OptimizerConfig::SGD:
      return std::unique_ptr<Optimizer>(new Sgd(c));
    case OptimizerConfig::ADAGRAD:
      return std::unique_ptr<Optimizer>(new Adagrad(c));
    case OptimizerConfig::ADAM:
      return std::unique_ptr<Optimizer>(new Adam(c));
    case OptimizerConfig::FTRL:
      return std::unique_ptr<Optimizer>(new Ftrl(c));
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown optimizer kind ", static_cast<int>(c.kind())));
  }
}

}  // namespace vrec::ps
