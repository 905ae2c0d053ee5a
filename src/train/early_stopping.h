// The rule that ends a job with a validation slice: when the validation
// scores so far say that more training will not find a better model.
//
// Why more than "no better score for `patience` validations": a validation
// score is noisy (a recall on n examples carries a standard error of
// sqrt(p(1-p)/n): +-0.02 at p = 0.2 on 336 examples) and a slowly learning
// model gains less than that per epoch, so a fixed patience stops a rising
// curve after one lucky score; and every model starts at popularity level
// (it learns the label counts first), a plateau that a small patience takes
// for the end (docs/quality.md measures both). The rule therefore judges
// the curve smoothed, the mean of the last `window` scores (its noise
// shrinks by sqrt(window)), and stops only when all of these hold:
//   - the best smoothed score is `patience` validations old or more;
//   - and at least `patience_fraction` of the validations it took to reach
//     it (patience grows with the run: at 1, the default, a best found at
//     the 20th validation needs 20 more without a better one; a model that
//     gains g per validation under noise sigma needs about 2 sigma / g
//     validations to beat a lucky score, and g shrinks as training goes on);
//   - and the best smoothed score beats the popularity baseline on the
//     same slice (when the kind reports one): until then the model has
//     learned nothing a count of the labels does not know (smoothed: one
//     lucky score above it is no proof).
// The model kept is the one with the best raw score (the coordinator's).
// Pure functions; thread-compatible.
#pragma once

#include <cstdint>

#include "proto/checkpoint.pb.h"

namespace vrec::train {

struct StoppingRule {
  int patience = 3;  // 0 = never stop early
  double patience_fraction = 1.0;
  int window = 3;  // validations in the smoothed score (1 = the raw score)
};

struct StopDecision {
  bool stop = false;
  // Validations without a better smoothed score the rule waits for now.
  uint32_t patience = 0;
  // The best is not above the baseline yet (the rule keeps going).
  bool below_baseline = false;
};

// Validations without a better smoothed score needed before stopping, when
// that best came at validation `best_count` (1-based).
uint32_t RequiredPatience(const StoppingRule& rule, uint32_t best_count);

// Records `score` in the rule's part of `state` (recent_scores,
// best_smoothed, since_best_smoothed); call once per validation, after
// state->count() counts it. Returns the smoothed score.
double RecordSmoothed(const StoppingRule& rule, double score, ValidationState* state);

// The decision after the validation recorded in `state` (count, best,
// and the smoothed fields). `baseline`: popularity's score on the slice,
// NaN when there is none.
StopDecision DecideStop(const StoppingRule& rule, const ValidationState& state, double baseline);

}  // namespace vrec::train
