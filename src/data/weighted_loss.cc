#include "data/weighted_loss.h"

namespace vrec {

void WeightedLoss::AddPage(const std::vector<ScoredImpression>& page) {
  int64_t page_pairs = 0;
  // Pages are short (~10 impressions): the quadratic form is the clearest.
  for (const ScoredImpression& pos : page) {
    if (!pos.clicked) continue;
    for (const ScoredImpression& neg : page) {
      if (neg.clicked) continue;
      ++page_pairs;
      total_watch_time += pos.watch_time;
      if (neg.score > pos.score) {
        mispredicted_watch_time += pos.watch_time;
      } else if (neg.score == pos.score) {
        mispredicted_watch_time += 0.5 * pos.watch_time;
      }
    }
  }
  if (page_pairs > 0) ++pages;
  pairs += page_pairs;
}

void WeightedLoss::Merge(const WeightedLoss& other) {
  mispredicted_watch_time += other.mispredicted_watch_time;
  total_watch_time += other.total_watch_time;
  pages += other.pages;
  pairs += other.pairs;
}

double WeightedLoss::Loss() const {
  return total_watch_time > 0 ? mispredicted_watch_time / total_watch_time : 0.0;
}

double WeightedPerUserLoss(const std::vector<std::vector<ScoredImpression>>& pages) {
  WeightedLoss loss;
  for (const auto& page : pages) loss.AddPage(page);
  return loss.Loss();
}

}  // namespace vrec
