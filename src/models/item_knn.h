// ItemKnn: the item-based nearest-neighbour baseline printed beside every
// candidate evaluation (with popularity): a video j is scored for a user by
// its cosine co-occurrence with the user's recent videos H,
//
//   score(j) = sum over i in H of |U_i n U_j| / sqrt(|U_i| |U_j|)
//
// U_i the training users who watched i (a user's videos: every label and
// history video of their training examples). Ranks over the whole corpus are
// exact, ties counted half, exclusions as RetrievalEvaluator's (metrics.h),
// so its figures compare with the model's on the same examples.
//
// Cost: a user's scores touch every training user who shares a video with H
// and all of their videos; Fit refuses (kResourceExhausted, saying so) when
// the corpus or the training interactions exceed the options' limits, and
// the evaluation then skips the baseline.
//
// Thread safety: immutable after Fit; Evaluate is const and thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "data/example_source.h"
#include "models/metrics.h"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec::models {

class ItemKnn {
 public:
  struct Options {
    int recent = 50;                      // the user's most recent videos used as H
    int64_t max_items = 200000;           // corpus size beyond which it is skipped
    int64_t max_interactions = 20000000;  // (user, video) pairs beyond which it is skipped
    // Evaluate's bound on its work: training pairs x examples (a user's scores
    // touch at most every pair once).
    double max_work = 2e9;
  };

  // Reads one pass of `train` (its first epoch) and indexes the videos of
  // `corpus_ids`; videos outside the corpus are ignored.
  static StatusOr<ItemKnn> Fit(ExampleSource<CandidateExample>* train,
                               absl::Span<const int64_t> corpus_ids, const Options& options);

  // Scores of every corpus video (corpus order) for a user whose recent
  // history is `history` (oldest first; the last options.recent are used).
  void Scores(absl::Span<const int64_t> history, std::vector<double>* scores) const;

  // Metrics over examples: labels[e] ranked by Scores(histories[e]), the
  // label and exclude[e] (if given) taken out of the competition.
  // kResourceExhausted (before any work) beyond options.max_work.
  StatusOr<RetrievalMetrics> Evaluate(const std::vector<std::vector<int64_t>>& histories,
                                      absl::Span<const int64_t> labels,
                                      const std::vector<std::vector<int64_t>>* exclude) const;

 private:
  ItemKnn() = default;

  Options options_;
  std::vector<int64_t> ids_;                     // corpus order
  absl::flat_hash_map<int64_t, int32_t> index_;  // video id -> corpus position
  std::vector<std::vector<int32_t>> users_of_;   // video -> users (U_i)
  std::vector<std::vector<int32_t>> videos_of_;  // user -> videos (I_u)
  int64_t interactions_ = 0;
};

}  // namespace vrec::models
