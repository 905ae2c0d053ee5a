#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/random.h"

namespace vrec {

// Zipf(s) over ranks 0..n-1 (P(r) proportional to (r+1)^-s) by
// rejection-inversion (Hoermann and Derflinger 1996): exact, O(1) per draw
// and no table (an inverse-CDF binary search over millions of ranks
// costs a cache miss per step).
//
// Thread safety: immutable after construction; draws use the caller's Rng.
class ZipfSampler {
 public:
  // REQUIRES: n >= 1, s > 0.
  ZipfSampler(uint64_t n, double s)
      : n_(static_cast<double>(n)),
        s_(s),
        h_x1_(HIntegral(1.5) - 1.0),
        h_n_(HIntegral(n_ + 0.5)),
        squeeze_(2.0 - HIntegralInverse(HIntegral(2.5) - H(2.0))) {}

  uint64_t Rank(Rng& rng) const {
    for (;;) {
      const double u = h_n_ + rng.Uniform() * (h_x1_ - h_n_);
      const double x = HIntegralInverse(u);
      double k = std::floor(x + 0.5);
      k = std::min(std::max(k, 1.0), n_);
      if (k - x <= squeeze_ || u >= HIntegral(k + 0.5) - H(k)) {
        return static_cast<uint64_t>(k) - 1;
      }
    }
  }

 private:
  // h(x) = x^-s and its integral H(x) = (x^(1-s) - 1) / (1-s) (log x at s = 1).
  double H(double x) const { return std::exp(-s_ * std::log(x)); }
  double HIntegral(double x) const {
    const double log_x = std::log(x);
    return Expm1OverX((1.0 - s_) * log_x) * log_x;
  }
  double HIntegralInverse(double y) const {
    double t = y * (1.0 - s_);
    if (t < -1.0) t = -1.0;  // rounding at the far end of the support
    return std::exp(Log1pOverX(t) * y);
  }
  static double Expm1OverX(double x) {
    return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1.0 + x / 2;
  }
  static double Log1pOverX(double x) {
    return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x / 2;
  }

  const double n_, s_, h_x1_, h_n_, squeeze_;
};

}  // namespace vrec
