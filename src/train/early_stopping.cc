#include "train/early_stopping.h"

#include <algorithm>
#include <cmath>

namespace vrec::train {

uint32_t RequiredPatience(const StoppingRule& rule, uint32_t best_count) {
  if (rule.patience <= 0) return 0;
  const double grown = std::ceil(std::max(0.0, rule.patience_fraction) * best_count);
  return std::max(static_cast<uint32_t>(rule.patience), static_cast<uint32_t>(grown));
}

StopDecision DecideStop(const StoppingRule& rule, const ValidationState& state, double baseline) {
  StopDecision d;
  if (rule.patience <= 0 || state.count() == 0) return d;
  const uint32_t best_count = state.count() - std::min(state.count(), state.since_best());
  d.patience = RequiredPatience(rule, best_count);
  d.below_baseline = !std::isnan(baseline) && !(state.best() > baseline);
  d.stop = state.since_best() >= d.patience && !d.below_baseline;
  return d;
}

}  // namespace vrec::train
