// Recommendations from a loaded bundle: the paper's two stages at serving.
//
//   1. candidate generation: the user tower turns the request (watch history,
//      search tokens, region, device, age, gender; example age 0) into a user
//      vector u; the index returns the num_candidates videos with the largest
//      [u | 1] . [w | b], already-watched videos removed;
//   2. ranking (when the bundle has a ranking model): each candidate becomes
//      an impression with the request's features and the video's (topic,
//      age on the bundle's clock, the share of the history in its topic,
//      time since the last watch in its topic: 1 day if the history has one,
//      else 365, previous impressions 0) and is scored by the ranking tower;
//      items are ordered by expected watch time exp(logit).
// Without a ranking model items are ordered by the retrieval score.
//
// Thread safety: Recommend is thread-safe (model scratch buffers come from a
// pool, one per request being scored; at most max_concurrent are scored at
// once).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "models/ranking_spec.h"
#include "serve/bundle.h"
#include "vrec/status.h"

namespace vrec::serve {

struct RecommendRequest {
  std::vector<int64_t> watch_history;  // oldest first
  std::vector<int64_t> search_tokens;  // oldest first
  uint32_t region = 0;                 // 0 = unknown
  uint32_t device = 0;
  float age = 0.5f;     // scaled to [0, 1] (13 to 80 years)
  float gender = 0.5f;  // [0, 1], 0.5 = unknown
  int num = 10;
};

struct RecommendItem {
  int64_t video = 0;
  float score = 0;                // ranking logit, or retrieval score without ranking
  float expected_watch_time = 0;  // exp(logit); 0 without ranking
  float retrieval_score = 0;
};

// Where one request's time went (seconds), for profiles (`vrec bench serve`).
struct RecommendProfile {
  double user_tower = 0;     // the request as a CandidateExample, the user vector
  double search = 0;         // the index (coarse step and list scans), watched videos dropped
  double ranking_input = 0;  // impressions assembled, ids deduplicated, embedding rows read,
                             // embedding bags and quantile features
  double first_layer = 0;    // ranking layer 1 (the user's part once, the impressions' GEMM)
  double other_layers = 0;   // ranking layers 2.. and the logit
  double order = 0;          // expected watch time, sort, cut to num
  int64_t index_rows = 0;    // rows of the index read (IVF: centroids and probed lists)
};

struct RecommenderOptions {
  int num_candidates = 300;
  bool exclude_watched = true;
  // Requests scored at once (0 = the machine's hardware threads). More
  // requests than cores only time-slice the arithmetic and stretch the tail;
  // the rest wait their turn.
  int max_concurrent = 0;
};

class Recommender {
 public:
  static StatusOr<std::unique_ptr<Recommender>> Create(std::shared_ptr<const LoadedBundle> bundle,
                                                       const RecommenderOptions& options);
  ~Recommender();

  // Best first. kInvalidArgument for a bad request (naming the field).
  // `profile`, when given, gets the time of each stage added to it.
  StatusOr<std::vector<RecommendItem>> Recommend(const RecommendRequest& request,
                                                 RecommendProfile* profile = nullptr) const;

  const LoadedBundle& bundle() const { return *bundle_; }

  // The impressions the ranking stage scores for `candidates` as full
  // examples (for tests: offline scoring of the same inputs must agree).
  // The ranking stage scores them as a page: RankingUser and PageImpressions.
  std::vector<RankingExample> Impressions(const RecommendRequest& request,
                                          const std::vector<int32_t>& candidates) const;
  CandidateExample UserExample(const RecommendRequest& request) const;
  // The user's side of the ranking features (models/ranking_spec.h).
  RankingExample RankingUser(const RecommendRequest& request) const;
  // Each candidate's side: its video, topic, age on the bundle's clock, the
  // share of the history in its topic and the time since the last watch in
  // it (appended to *out, which is cleared first).
  void PageImpressions(const RecommendRequest& request, const std::vector<int32_t>& candidates,
                       std::vector<models::RankingImpression>* out) const;

 private:
  struct Scorer;
  Recommender() = default;
  StatusOr<std::unique_ptr<Scorer>> NewScorer() const;

  std::shared_ptr<const LoadedBundle> bundle_;
  RecommenderOptions options_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<std::unique_ptr<Scorer>> pool_;
  mutable int busy_ = 0;
  int max_busy_ = 1;
};

}  // namespace vrec::serve
