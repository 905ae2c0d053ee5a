#include "model/negative_sampler.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace vrec::model {
namespace {
constexpr int64_t kMaxClasses = std::numeric_limits<int32_t>::max();
}  // namespace

StatusOr<NegativeSampler> NegativeSampler::Uniform(int64_t num_classes) {
  if (num_classes <= 0 || num_classes > kMaxClasses) {
    return absl::InvalidArgumentError(
        absl::StrCat("negative sampler: num_classes ", num_classes, " not in [1, 2^31)"));
  }
  return NegativeSampler(std::vector<double>(num_classes, 1.0 / num_classes));
}

StatusOr<NegativeSampler> NegativeSampler::FromCounts(const std::vector<double>& counts,
                                                      double power) {
  if (counts.empty() || static_cast<int64_t>(counts.size()) > kMaxClasses) {
    return absl::InvalidArgumentError(
        absl::StrCat("negative sampler: ", counts.size(), " counts; need 1 to 2^31-1"));
  }
  if (!std::isfinite(power) || power < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("negative sampler: power ", power, " must be finite and >= 0"));
  }
  std::vector<double> p(counts.size());
  double total = 0;
  for (size_t v = 0; v < counts.size(); ++v) {
    if (!std::isfinite(counts[v]) || counts[v] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative sampler: count of class ", v, " is ", counts[v]));
    }
    p[v] = std::pow(std::max(counts[v], 1.0), power);
    total += p[v];
  }
  for (double& x : p) x /= total;
  return NegativeSampler(p);
}

StatusOr<NegativeSampler> NegativeSampler::FromConfig(const SamplerConfig& config,
                                                      const std::vector<double>& counts) {
  switch (config.kind()) {
    case SamplerConfig::UNIFORM:
      return Uniform(static_cast<int64_t>(counts.size()));
    case SamplerConfig::UNIGRAM:
      return FromCounts(counts, config.power());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("negative sampler: unknown kind ", config.kind()));
  }
}

NegativeSampler::NegativeSampler(const std::vector<double>& probabilities) {
  const int64_t n = static_cast<int64_t>(probabilities.size());
  accept_.assign(n, 1.0);
  alias_.resize(n);
  log_q_.resize(n);
  std::vector<double> scaled(n);
  std::vector<int32_t> small, large;
  for (int64_t v = 0; v < n; ++v) {
    log_q_[v] = std::log(probabilities[v]);
    alias_[v] = static_cast<int32_t>(v);
    scaled[v] = probabilities[v] * n;
    (scaled[v] < 1.0 ? small : large).push_back(static_cast<int32_t>(v));
  }
  while (!small.empty() && !large.empty()) {
    const int32_t s = small.back();
    small.pop_back();
    const int32_t l = large.back();
    accept_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are 1 up to rounding: they keep their own class.
}

double NegativeSampler::Probability(int64_t id) const { return std::exp(log_q_[id]); }

}  // namespace vrec::model
