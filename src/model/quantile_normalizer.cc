#include "model/quantile_normalizer.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace vrec::model {

QuantileNormalizer::Builder::Builder(int num_quantiles, int reservoir_size, uint64_t seed)
    : num_quantiles_(num_quantiles), reservoir_size_(reservoir_size), rng_(seed, 0x9a47) {
  CHECK_GE(num_quantiles, 1);
  CHECK_GE(reservoir_size, 1);
}

Status QuantileNormalizer::Builder::Add(double x) {
  if (!std::isfinite(x)) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantile normalizer: value #", count_, " is not finite (", x, ")"));
  }
  if (static_cast<int64_t>(reservoir_.size()) < reservoir_size_) {
    reservoir_.push_back(x);
  } else {
    const uint64_t k = rng_.UniformInt(static_cast<uint64_t>(count_) + 1);
    if (k < static_cast<uint64_t>(reservoir_size_)) reservoir_[k] = x;
  }
  ++count_;
  return absl::OkStatus();
}

StatusOr<QuantileNormalizer> QuantileNormalizer::Builder::Build() const {
  if (reservoir_.empty()) {
    return absl::FailedPreconditionError("quantile normalizer: no values were added");
  }
  std::vector<double> sorted = reservoir_;
  std::sort(sorted.begin(), sorted.end());
  const int64_t n = static_cast<int64_t>(sorted.size());
  std::vector<double> q(num_quantiles_ + 1);
  for (int k = 0; k <= num_quantiles_; ++k) {
    const double h = static_cast<double>(n - 1) * k / num_quantiles_;
    const int64_t lo = static_cast<int64_t>(std::floor(h));
    const int64_t hi = std::min(lo + 1, n - 1);
    q[k] = sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
  }
  // Rounding can break monotonicity by an ulp; restore it.
  for (int k = 1; k <= num_quantiles_; ++k) q[k] = std::max(q[k], q[k - 1]);
  return QuantileNormalizer(std::move(q));
}

StatusOr<QuantileNormalizer> QuantileNormalizer::FromQuantiles(std::vector<double> quantiles) {
  if (quantiles.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("quantile normalizer: ", quantiles.size(),
                                                   " quantiles given, need at least 2"));
  }
  for (size_t k = 0; k < quantiles.size(); ++k) {
    if (!std::isfinite(quantiles[k])) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantile normalizer: quantile ", k, " is not finite"));
    }
    if (k > 0 && quantiles[k] < quantiles[k - 1]) {
      return absl::InvalidArgumentError(absl::StrCat("quantile normalizer: quantile ", k, " (",
                                                     quantiles[k], ") < quantile ", k - 1, " (",
                                                     quantiles[k - 1], ")"));
    }
  }
  return QuantileNormalizer(std::move(quantiles));
}

double QuantileNormalizer::Cdf(double x) const {
  const std::vector<double>& q = quantiles_;
  if (!(x >= q.front())) return 0.0;  // also NaN
  if (x >= q.back()) return std::nextafter(1.0, 0.0);
  const int j = static_cast<int>(std::upper_bound(q.begin(), q.end(), x) - q.begin()) - 1;
  const double c = (j + (x - q[j]) / (q[j + 1] - q[j])) / num_quantiles();
  return std::min(c, std::nextafter(1.0, 0.0));
}

double QuantileNormalizer::MassAtMost(double x) const {
  const std::vector<double>& q = quantiles_;
  if (x < q.front()) return 0.0;
  if (x >= q.back()) return 1.0;
  // The last quantile <= x; the next one is > x.
  const int j = static_cast<int>(std::upper_bound(q.begin(), q.end(), x) - q.begin()) - 1;
  return (j + (x - q[j]) / (q[j + 1] - q[j])) / num_quantiles();
}

double QuantileNormalizer::MassBelow(double x) const {
  const std::vector<double>& q = quantiles_;
  if (x <= q.front()) return 0.0;
  if (x > q.back()) return 1.0;
  // The first quantile >= x; the one before is < x.
  const int j = static_cast<int>(std::lower_bound(q.begin(), q.end(), x) - q.begin());
  if (q[j] == x) return static_cast<double>(j) / num_quantiles();
  return (j - 1 + (x - q[j - 1]) / (q[j] - q[j - 1])) / num_quantiles();
}

StatusOr<QuantileNormalizer> QuantileNormalizer::Mixture(
    const std::vector<std::pair<const QuantileNormalizer*, double>>& parts, int num_quantiles) {
  if (parts.empty() || num_quantiles < 1) {
    return absl::InvalidArgumentError(absl::StrCat("quantile mixture: ", parts.size(),
                                                   " parts and ", num_quantiles,
                                                   " quantiles; need at least 1 of each"));
  }
  double total = 0;
  for (const auto& [part, weight] : parts) {
    if (!(weight >= 0) || !std::isfinite(weight)) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantile mixture: weight ", weight, " is not a finite number >= 0"));
    }
    total += weight;
  }
  if (!(total > 0)) return absl::InvalidArgumentError("quantile mixture: every weight is 0");
  // The mixture's CDF is linear between consecutive breakpoints (every
  // part's quantiles) and may jump at one.
  std::vector<double> points;
  for (const auto& [part, weight] : parts) {
    if (weight > 0) points.insert(points.end(), part->quantiles_.begin(), part->quantiles_.end());
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  const size_t n = points.size();
  std::vector<double> at_most(n), below(n);
  for (size_t k = 0; k < n; ++k) {
    for (const auto& [part, weight] : parts) {
      if (weight == 0) continue;
      at_most[k] += weight / total * part->MassAtMost(points[k]);
      below[k] += weight / total * part->MassBelow(points[k]);
    }
  }
  at_most[n - 1] = 1.0;  // exactly, whatever the rounding
  std::vector<double> q(num_quantiles + 1);
  q.front() = points.front();
  q.back() = points.back();
  size_t k = 0;
  for (int j = 1; j < num_quantiles; ++j) {
    const double t = static_cast<double>(j) / num_quantiles;
    while (k + 1 < n && at_most[k] < t) ++k;  // the first breakpoint with P(X <= b) >= t
    if (k == 0 || t > below[k] || below[k] <= at_most[k - 1]) {
      q[j] = points[k];  // in the jump at points[k] (or at its edge)
    } else {             // on the line from points[k-1] to points[k]
      const double f = (t - at_most[k - 1]) / (below[k] - at_most[k - 1]);
      q[j] = points[k - 1] + f * (points[k] - points[k - 1]);
    }
  }
  for (int j = 1; j <= num_quantiles; ++j) q[j] = std::max(q[j], q[j - 1]);
  return QuantileNormalizer(std::move(q));
}

}  // namespace vrec::model
