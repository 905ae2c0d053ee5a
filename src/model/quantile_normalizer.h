// QuantileNormalizer: maps a continuous feature x to its empirical CDF in
// [0, 1), the ranking model's normalisation ("a continuous feature x with
// distribution f is transformed to x~ by scaling the values such that the
// feature is equally distributed in [0, 1) using the cumulative
// distribution, x~ = integral of f up to x ... approximated by linear
// interpolation on the quantiles ... computed in a single pass").
//
// Fitting: a Builder keeps a uniform reservoir of at most `reservoir_size`
// values (Vitter's Algorithm R, seeded), so one pass over a stream of any
// length suffices. Build() takes Q + 1 quantiles q_0 = min .. q_Q = max of
// the reservoir (linear interpolation between order statistics, "type 7").
// Error bound: a stream no longer than the reservoir gives its exact
// quantiles; otherwise, by the Dvoretzky-Kiefer-Wolfowitz inequality (which
// holds a fortiori for sampling without replacement), the reservoir's CDF is
// within eps of the stream's with probability >= 1 - 2 exp(-2 K eps^2), K
// the reservoir size: for the default K = 65536, eps = 0.0076 at 99.9%.
// Interpolating between Q quantiles adds at most 1/Q, so |Cdf(x) - F(x)| <=
// 1/Q + eps.
//
// Cdf(x) = (j + (x - q_j) / (q_{j+1} - q_j)) / Q for q_j <= x < q_{j+1}, j
// the LAST such index (so a point mass holding several quantiles maps to the
// top of its step, like F(x) = P(X <= x)); 0 below q_0 and the largest double
// below 1 from q_Q up. The model feeds
// x~, x~^2 and sqrt(x~) (Features()).
//
// Serialised as its quantile vector (quantiles() / FromQuantiles()).
//
// Mixture(): the quantiles of a weighted mixture of normalisers' piecewise-
// linear distributions (each quantile step holding 1/Q of its mass, spread
// evenly; equal quantiles a point mass), computed exactly by inverting the
// mixture's CDF. Merging the normaliser fitted on yesterday's N examples
// with one fitted on today's M, weighted N and M, approximates the
// normaliser of both days' examples together (a warm start: docs/training.md).
//
// Thread safety: a QuantileNormalizer is immutable and safe to share; a
// Builder is not.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/random.h"
#include "vrec/status.h"

namespace vrec::model {

class QuantileNormalizer {
 public:
  class Builder {
   public:
    // REQUIRES: num_quantiles >= 1, reservoir_size >= 1.
    explicit Builder(int num_quantiles = 100, int reservoir_size = 1 << 16, uint64_t seed = 0);
    // kInvalidArgument for a non-finite x (names the value's position in the
    // stream).
    Status Add(double x);
    int64_t count() const { return count_; }
    // kFailedPrecondition if nothing was added.
    StatusOr<QuantileNormalizer> Build() const;

   private:
    int num_quantiles_;
    int reservoir_size_;
    Rng rng_;
    int64_t count_ = 0;
    std::vector<double> reservoir_;
  };

  // kInvalidArgument unless there are at least 2 finite, non-decreasing values.
  static StatusOr<QuantileNormalizer> FromQuantiles(std::vector<double> quantiles);

  // The `num_quantiles` + 1 quantiles of the mixture of `parts` (each
  // normaliser's distribution, as above, with its weight). kInvalidArgument
  // for no parts, a weight that is negative or not finite, all weights 0, or
  // num_quantiles < 1.
  static StatusOr<QuantileNormalizer> Mixture(
      const std::vector<std::pair<const QuantileNormalizer*, double>>& parts, int num_quantiles);

  const std::vector<double>& quantiles() const { return quantiles_; }
  int num_quantiles() const { return static_cast<int>(quantiles_.size()) - 1; }

  // In [0, 1); non-decreasing in x. NaN maps to 0.
  double Cdf(double x) const;

  // out[0..2] = c, c^2, sqrt(c) for c = Cdf(x).
  template <typename S>
  void Features(double x, S* out) const {
    const double c = Cdf(x);
    out[0] = static_cast<S>(c);
    out[1] = static_cast<S>(c * c);
    out[2] = static_cast<S>(std::sqrt(c));
  }

 private:
  explicit QuantileNormalizer(std::vector<double> q) : quantiles_(std::move(q)) {}
  // P(X <= x) and P(X < x) of the piecewise-linear distribution (Mixture).
  double MassAtMost(double x) const;
  double MassBelow(double x) const;
  std::vector<double> quantiles_;
};

}  // namespace vrec::model
