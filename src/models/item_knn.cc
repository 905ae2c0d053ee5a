#include "models/item_knn.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace vrec::models {

StatusOr<ItemKnn> ItemKnn::Fit(ExampleSource<CandidateExample>* train,
                               absl::Span<const int64_t> corpus_ids, const Options& options) {
  if (static_cast<int64_t>(corpus_ids.size()) > options.max_items) {
    return absl::ResourceExhaustedError(absl::StrCat("item-kNN skipped: ", corpus_ids.size(),
                                                     " videos, more than ", options.max_items));
  }
  ItemKnn knn;
  knn.options_ = options;
  knn.ids_.assign(corpus_ids.begin(), corpus_ids.end());
  knn.index_.reserve(corpus_ids.size());
  for (size_t i = 0; i < corpus_ids.size(); ++i) {
    knn.index_.emplace(corpus_ids[i], static_cast<int32_t>(i));
  }
  // Each training user's videos (as a set).
  absl::flat_hash_map<uint64_t, int32_t> user_index;
  std::vector<absl::flat_hash_set<int32_t>> videos;
  int64_t interactions = 0;
  CandidateExample e;
  while (true) {
    VREC_ASSIGN_OR_RETURN(bool more, train->Next(&e));
    if (!more || train->epoch() > 0) break;
    auto [it, fresh] = user_index.try_emplace(e.user_id(), static_cast<int32_t>(videos.size()));
    if (fresh) videos.emplace_back();
    auto& mine = videos[it->second];
    auto add = [&](uint64_t id) {
      auto v = knn.index_.find(static_cast<int64_t>(id));
      if (v != knn.index_.end() && mine.insert(v->second).second) ++interactions;
    };
    add(e.label_video());
    for (uint64_t id : e.watch_history()) add(id);
    if (interactions > options.max_interactions) {
      return absl::ResourceExhaustedError(absl::StrCat("item-kNN skipped: more than ",
                                                       options.max_interactions,
                                                       " training (user, video) pairs"));
    }
  }
  knn.interactions_ = interactions;
  knn.users_of_.resize(corpus_ids.size());
  knn.videos_of_.resize(videos.size());
  for (size_t u = 0; u < videos.size(); ++u) {
    knn.videos_of_[u].assign(videos[u].begin(), videos[u].end());
    std::sort(knn.videos_of_[u].begin(), knn.videos_of_[u].end());
    for (int32_t v : knn.videos_of_[u]) knn.users_of_[v].push_back(static_cast<int32_t>(u));
  }
  return knn;
}

void ItemKnn::Scores(absl::Span<const int64_t> history, std::vector<double>* scores) const {
  scores->assign(ids_.size(), 0.0);
  // H: the recent history's distinct corpus videos.
  const size_t from = history.size() > static_cast<size_t>(options_.recent)
                          ? history.size() - static_cast<size_t>(options_.recent)
                          : 0;
  // Sums run in index order: a hash container's order changes from process
  // to process (Abseil salts its hashes), and with it the last bits of a sum.
  std::vector<int32_t> h;
  for (size_t k = from; k < history.size(); ++k) {
    auto it = index_.find(history[k]);
    if (it != index_.end()) h.push_back(it->second);
  }
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  // score(j) = 1/sqrt|U_j| * sum over users u with j in I_u of
  //            sum over i in H n I_u of 1/sqrt|U_i|.
  absl::flat_hash_map<int32_t, double> weight;  // user -> the inner sum
  for (int32_t i : h) {
    const auto& users = users_of_[i];
    if (users.empty()) continue;
    const double w = 1.0 / std::sqrt(static_cast<double>(users.size()));
    for (int32_t u : users) weight[u] += w;
  }
  std::vector<std::pair<int32_t, double>> by_user(weight.begin(), weight.end());
  std::sort(by_user.begin(), by_user.end());
  for (const auto& [u, w] : by_user) {
    for (int32_t j : videos_of_[u]) (*scores)[j] += w;
  }
  for (size_t j = 0; j < ids_.size(); ++j) {
    if (!users_of_[j].empty()) {
      (*scores)[j] /= std::sqrt(static_cast<double>(users_of_[j].size()));
    }
  }
}

StatusOr<RetrievalMetrics> ItemKnn::Evaluate(
    const std::vector<std::vector<int64_t>>& histories, absl::Span<const int64_t> labels,
    const std::vector<std::vector<int64_t>>* exclude) const {
  if (histories.size() != labels.size() ||
      (exclude != nullptr && exclude->size() != labels.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "item-kNN: ", histories.size(), " histories and ", exclude == nullptr ? 0 : exclude->size(),
        " exclusion lists for ", labels.size(), " labels"));
  }
  const double work = static_cast<double>(interactions_) * static_cast<double>(labels.size());
  if (work > options_.max_work) {
    return absl::ResourceExhaustedError(
        absl::StrCat("item-kNN skipped: ", interactions_, " training (user, video) pairs x ",
                     labels.size(), " examples is beyond ", options_.max_work));
  }
  RetrievalCounts counts;
  std::vector<double> scores;
  std::vector<char> out(ids_.size(), 0);
  for (size_t e = 0; e < labels.size(); ++e) {
    auto label = index_.find(labels[e]);
    if (label == index_.end()) {
      counts.AddRank(kMissingRank);
      continue;
    }
    Scores(histories[e], &scores);
    std::vector<int32_t> excluded;
    if (exclude != nullptr) {
      for (int64_t id : (*exclude)[e]) {
        auto it = index_.find(id);
        if (it != index_.end() && it->second != label->second && !out[it->second]) {
          out[it->second] = 1;
          excluded.push_back(it->second);
        }
      }
    }
    const double s = scores[label->second];
    int64_t higher = 0, tied = 0;
    for (size_t j = 0; j < scores.size(); ++j) {
      if (static_cast<int32_t>(j) == label->second || out[j]) continue;
      higher += scores[j] > s;
      tied += scores[j] == s;
    }
    counts.AddRank(1.0 + static_cast<double>(higher) + 0.5 * static_cast<double>(tied));
    for (int32_t j : excluded) out[j] = 0;
  }
  return counts.Metrics();
}

}  // namespace vrec::models
