// Training and evaluating the ranking model (Covington et al. 2016, section
// 4): impressions of generated or logged pages, weighted logistic regression
// whose odds estimate expected watch time.
//
// Features of a RankingExample (proto/data.proto), in the model's order:
//   categorical  impression_video -> table "video" (shared with the watch
//                history, as the paper shares embeddings by ID space),
//                watched_videos (the last max_history, averaged) -> "video",
//                search_tokens -> "token", video_topic -> "topic",
//                region -> "region", device -> "device" (0 = unknown: zeros)
//   continuous   time_since_last_watch, previous_impressions, video_age,
//                topic_watch_share, age, gender: each normalised by its
//                quantiles (fitted in one pass before training), fed as
//                x~, x~^2, sqrt(x~)
// PS tables are "rank/<table>" and "rank/<dense block>".
//
// Evaluation: the logit ranks each test page's impressions; weighted
// per-user loss (data/weighted_loss.h) and AUC of clicks, beside the
// oracle's loss from truth.json.
//
// Thread safety: RankingWorker is used by one thread; functions are
// thread-compatible.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "model/batch_builder.h"
#include "model/ranking_model.h"
#include "model/ranking_page.h"
#include "models/model_spec.h"
#include "nlohmann/json.hpp"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec::models {

struct RankingSpecOptions {
  uint64_t seed = 1;
  int embedding_dim = 32;  // video and token tables; topic half of it, region/device 8
  std::vector<int> tower = {256, 128};
  bool weighted = true;  // false: click-trained logistic regression
  int max_history = 50;
  int num_quantiles = 100;
  OptimizerConfig optimizer;
  float embedding_init_scale = 0.05f;
};

// The continuous features, in the model's order.
const std::vector<std::string>& RankingContinuousFeatures();

StatusOr<ModelSpec> RankingSpec(const RankingSpecOptions& options);

// The model options of a spec whose quantiles are set (kFailedPrecondition
// otherwise).
StatusOr<model::RankingModelOptions> RankingOptionsFromSpec(const ModelSpec& spec);

// One pass over `files`: each continuous feature's quantiles.
StatusOr<std::vector<QuantileInfo>> FitRankingQuantiles(const std::vector<std::string>& files,
                                                        int num_quantiles, uint64_t seed);

// Serving ranks a page: the impressions one request shows one user. The
// user's features (watch history, search tokens, region, device; age,
// gender) are the same for all of them; a RankingImpression carries the rest.
struct RankingImpression {
  uint64_t video = 0;
  uint32_t topic = 0;  // 0 = unknown
  float time_since_last_watch = 0;  // days
  float previous_impressions = 0;
  float video_age = 0;  // days
  float topic_watch_share = 0;
};

// Per categorical feature / per continuous feature (the model's order):
// whether it is the user's, hence the same for every impression of a page.
const std::vector<bool>& RankingUserCategorical();
const std::vector<bool>& RankingUserContinuous();

// The full example of impression `i` shown to `user` (the user's features
// from `user`, the impression's from `i`; no labels): what the page's row
// stands for.
RankingExample ImpressionExample(const RankingExample& user, const RankingImpression& i);

// The input side of a ranking batch: per-table distinct ids, per-feature
// index lists, raw continuous values and the labels.
struct RankingInputs {
  std::vector<model::IdDeduplicator> tables;  // in options.tables order
  void Build(absl::Span<const RankingExample> examples, const model::RankingModelOptions& options,
             model::RankingBatch<float>* batch);
  // The page of `impressions` shown to `user` (its user features only are
  // read), the user's features carried once (model/ranking_page.h);
  // page->table_rows are sized, not filled. REQUIRES: impressions non-empty.
  void BuildPage(const RankingExample& user, absl::Span<const RankingImpression> impressions,
                 const model::RankingModelOptions& options, model::RankingPage<float>* page);
};

// The spec table of each of the model's tables (options.tables order).
StatusOr<std::vector<int>> RankingTableIndices(const ModelSpec& spec,
                                               const model::RankingModelOptions& options);

}  // namespace vrec::models
