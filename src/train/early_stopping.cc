#include "train/early_stopping.h"

#include <algorithm>
#include <cmath>

namespace vrec::train {

uint32_t RequiredPatience(const StoppingRule& rule, uint32_t best_count) {
  if (rule.patience <= 0) return 0;
  const double grown = std::ceil(std::max(0.0, rule.patience_fraction) * best_count);
  return std::max(static_cast<uint32_t>(rule.patience), static_cast<uint32_t>(grown));
}

double RecordSmoothed(const StoppingRule& rule, double score, ValidationState* state) {
  const int window = std::max(1, rule.window);
  auto* recent = state->mutable_recent_scores();
  if (recent->empty() && state->count() > 1) {
    // Resumed from a checkpoint written before the smoothed state was kept:
    // carry on from the raw best (as the coordinator has just updated it).
    recent->Add(score);
    state->set_best_smoothed(state->best());
    state->set_since_best_smoothed(state->since_best());
    return score;
  }
  recent->Add(score);
  if (recent->size() > window) recent->erase(recent->begin(), recent->end() - window);
  double sum = 0;
  for (double s : *recent) sum += s;
  const double smoothed = sum / recent->size();
  // The first validation is always the best so far.
  if (state->count() <= 1 || smoothed > state->best_smoothed()) {
    state->set_best_smoothed(smoothed);
    state->set_since_best_smoothed(0);
  } else {
    state->set_since_best_smoothed(state->since_best_smoothed() + 1);
  }
  return smoothed;
}

StopDecision DecideStop(const StoppingRule& rule, const ValidationState& state, double baseline) {
  StopDecision d;
  if (rule.patience <= 0 || state.count() == 0) return d;
  const uint32_t since = state.since_best_smoothed();
  const uint32_t best_count = state.count() - std::min(state.count(), since);
  d.patience = RequiredPatience(rule, best_count);
  d.below_baseline = !std::isnan(baseline) && !(state.best_smoothed() > baseline);
  d.stop = since >= d.patience && !d.below_baseline;
  return d;
}

}  // namespace vrec::train
