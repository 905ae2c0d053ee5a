// The oracle: what a perfect model would score on a generated world.
//
// For a held-out (state, next watch) pair the oracle knows the exact
// next-watch distribution P (World::Mixture). Its recall@K is the expected hit
// rate of the true top-K list, i.e. the sum of the K largest probabilities;
// averaged over held-out examples it is the ceiling any candidate generator
// can reach in expectation. The oracle also records the realised hit rate of
// its top-K on the sampled labels (an unbiased estimate of the same figure:
// a built-in consistency check between generator and oracle) and the mean
// log-probability of the labels (the best achievable cross-entropy).
//
// For held-out ranking pages the oracle ranks by the true expected watch
// time; its weighted per-user loss (weighted_loss.h) is the ceiling for a
// ranker, above zero because clicks and watch times are random.
//
// Thread safety: OracleStats is a value type. NextWatchOracle holds scratch
// space: one per thread.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "data/weighted_loss.h"
#include "data/world.h"
#include "nlohmann/json.hpp"

namespace vrec {

inline constexpr std::array<int, 4> kOracleKs = {1, 10, 50, 100};

struct OracleStats {
  int64_t examples = 0;
  std::array<double, kOracleKs.size()> recall_sum{};  // sum of top-K masses
  std::array<double, kOracleKs.size()> hit_sum{};     // label in the top-K
  double log_prob_sum = 0;
  WeightedLoss ranking;
  int64_t ranking_impressions = 0;

  void Merge(const OracleStats& other);
  double Recall(size_t k_index) const { return examples ? recall_sum[k_index] / examples : 0.0; }
  // {"recall@1": ..., "recall@100": ..., "weighted_per_user_loss": ...,
  //  "sampled_hit@K": ..., "mean_log_prob": ..., counts}
  nlohmann::json ToJson() const;
};

class NextWatchOracle {
 public:
  // REQUIRES: `world` outlives the oracle.
  explicit NextWatchOracle(const World* world) : world_(world) {}

  // The min(k, support) most likely next watches, most likely first (ties by
  // video index): exact, without scanning all videos. REQUIRES: k <= kOracleMaxK.
  const std::vector<std::pair<double, int32_t>>& TopK(const NextWatchMixture& m, int k);

  // Adds one held-out example with label `label` to *stats.
  void AddExample(const NextWatchMixture& m, int32_t label, OracleStats* stats);

 private:
  const World* world_;
  std::vector<std::pair<double, int32_t>> scratch_;  // (-probability, video)
  std::vector<std::pair<double, int32_t>> top_;      // (probability, video)
};

}  // namespace vrec
