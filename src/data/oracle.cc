#include "data/oracle.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace vrec {

void OracleStats::Merge(const OracleStats& other) {
  examples += other.examples;
  for (size_t i = 0; i < kOracleKs.size(); ++i) {
    recall_sum[i] += other.recall_sum[i];
    hit_sum[i] += other.hit_sum[i];
  }
  log_prob_sum += other.log_prob_sum;
  ranking.Merge(other.ranking);
  ranking_impressions += other.ranking_impressions;
}

nlohmann::json OracleStats::ToJson() const {
  nlohmann::json j;
  for (size_t i = 0; i < kOracleKs.size(); ++i) {
    j["recall@" + std::to_string(kOracleKs[i])] = Recall(i);
  }
  j["weighted_per_user_loss"] = ranking.Loss();
  for (size_t i = 0; i < kOracleKs.size(); ++i) {
    j["sampled_hit@" + std::to_string(kOracleKs[i])] = examples ? hit_sum[i] / examples : 0.0;
  }
  j["mean_log_prob"] = examples ? log_prob_sum / examples : 0.0;
  j["test_examples"] = examples;
  j["test_pages"] = ranking.pages;
  j["test_pairs"] = ranking.pairs;
  j["test_impressions"] = ranking_impressions;
  return j;
}

const std::vector<std::pair<double, int32_t>>& NextWatchOracle::TopK(const NextWatchMixture& m,
                                                                     int k) {
  // Within a topic p(v) is increasing in pop(v, d), so the global top-k is
  // inside the union of each mixture topic's top-k list and the series item.
  scratch_.clear();
  if (m.series_video >= 0)
    scratch_.emplace_back(-world_->Probability(m, m.series_video), m.series_video);
  for (int i = 0; i < m.num_topics; ++i) {
    int n = 0;
    const uint32_t* list = world_->TopList(m.day, m.topic[i], &n);
    n = std::min(n, k);
    for (int j = 0; j < n; ++j) {
      const auto v = static_cast<int32_t>(list[j]);
      if (v == m.series_video) continue;  // already in, with its full probability
      scratch_.emplace_back(-world_->Probability(m, v), v);
    }
  }
  // Topics are distinct, so apart from the series item no video repeats.
  const size_t kk = std::min<size_t>(k, scratch_.size());
  std::partial_sort(scratch_.begin(), scratch_.begin() + kk, scratch_.end());
  top_.clear();
  for (size_t i = 0; i < kk; ++i) top_.emplace_back(-scratch_[i].first, scratch_[i].second);
  return top_;
}

void NextWatchOracle::AddExample(const NextWatchMixture& m, int32_t label, OracleStats* stats) {
  const auto& top = TopK(m, kOracleKs.back());
  double mass = 0;
  size_t next_k = 0;
  bool hit = false;
  for (size_t i = 0; i < top.size() && next_k < kOracleKs.size(); ++i) {
    mass += top[i].first;
    hit = hit || top[i].second == label;
    // Record every K reached at position i + 1.
    while (next_k < kOracleKs.size() && static_cast<size_t>(kOracleKs[next_k]) == i + 1) {
      stats->recall_sum[next_k] += mass;
      stats->hit_sum[next_k] += hit ? 1.0 : 0.0;
      ++next_k;
    }
  }
  // Support smaller than K: the whole mass is in the list.
  for (; next_k < kOracleKs.size(); ++next_k) {
    stats->recall_sum[next_k] += mass;
    stats->hit_sum[next_k] += hit ? 1.0 : 0.0;
  }
  const double p = world_->Probability(m, label);
  stats->log_prob_sum += std::log(std::max(p, 1e-300));
  ++stats->examples;
}

}  // namespace vrec
