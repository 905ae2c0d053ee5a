// How a model is evaluated on a dataset's held-out examples (`vrec eval`,
// and during and at the end of `vrec train`). The candidate model reads every
// field; the ranking model reads max_examples.
#pragma once

#include <cstdint>

namespace vrec::models {

struct EvalOptions {
  uint64_t max_examples = 0;     // 0 = every test example
  bool exclude_watched = false;  // candidate: drop already-watched videos from the ranking
  // Candidate: score each held-out example at its own time (its example
  // age), as the oracle does; false: example age 0 for all, as at serving.
  bool own_example_age = true;
  int batch_size = 512;  // candidate: examples per user-tower batch
  // Candidate: the item-kNN baseline beside popularity (a pass over the
  // training files; models/item_knn.h). Off for the short evaluations during
  // training.
  bool item_knn = true;
};

}  // namespace vrec::models
