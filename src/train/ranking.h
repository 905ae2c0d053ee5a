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

#include "model/batch_builder.h"
#include "model/ranking_model.h"
#include "nlohmann/json.hpp"
#include "train/data_source.h"
#include "train/model_spec.h"
#include "train/parameters.h"
#include "train/worker_loop.h"

namespace vrec::train {

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

// The input side of a ranking batch: per-table distinct ids, per-feature
// index lists, raw continuous values and the labels.
struct RankingInputs {
  std::vector<model::IdDeduplicator> tables;  // in options.tables order
  void Build(absl::Span<const RankingExample> examples, const model::RankingModelOptions& options,
             model::RankingBatch<float>* batch);
};

struct RankingWorkerOptions {
  int worker = 0;
  int batch_size = 512;
  uint64_t max_examples = 0;
  WorkerLoopOptions loop;
};

class RankingWorker : public PipelinedWorker {
 public:
  static StatusOr<std::unique_ptr<RankingWorker>> Create(const ModelSpec* spec,
                                                         ps::PsClient* client,
                                                         const RankingWorkerOptions& options);
  ~RankingWorker() override;
  Status Run(ExampleSource<RankingExample>* stream, const std::atomic<bool>* stop,
             const std::function<void(const WorkerProgress&)>& report);

 private:
  struct Step;
  RankingWorker() = default;
  StatusOr<bool> PrepareSlot(int slot) override;
  Status ComputeSlot(int slot, double* loss, int* examples) override;
  SourcePosition Position() const override { return stream_->Position(); }
  void ExampleIds(int slot, std::vector<uint64_t>* ids) const override;

  const ModelSpec* spec_ = nullptr;
  ps::PsClient* client_ = nullptr;
  RankingWorkerOptions options_;
  std::unique_ptr<model::RankingModel<float>> model_;
  std::vector<int> table_index_;  // model table -> spec table
  model::RankingGradients<float> grads_;
  ExampleSource<RankingExample>* stream_ = nullptr;
  std::unique_ptr<Step> steps_[2];
};

// The ranking model over a ParameterSource: logits of impressions (their
// odds estimate the expected watch time: exp(logit)).
class RankingScorer {
 public:
  static StatusOr<std::unique_ptr<RankingScorer>> Create(const ModelSpec& spec,
                                                         ParameterSource* params);
  // z[i] = the logit of examples[i].
  Status Logits(absl::Span<const RankingExample> examples, std::vector<float>* z);

 private:
  RankingScorer() = default;
  ParameterSource* params_ = nullptr;
  std::unique_ptr<model::RankingModel<float>> model_;
  std::vector<int> table_index_;
  std::vector<float> dense_;
  RankingInputs inputs_;
  model::RankingBatch<float> batch_;
  std::vector<uint64_t> keys_;
  std::vector<RankingExample> padded_;
};

struct RankingEvalOptions {
  uint64_t max_examples = 0;  // 0 = every test impression
  int batch_size = 1024;
};

// {"impressions", "pages", "weighted_per_user_loss", "auc", "oracle": {...}}
StatusOr<nlohmann::json> EvaluateRanking(const ModelSpec& spec, ParameterSource* params,
                                         const std::string& data_dir,
                                         const DatasetManifest& manifest,
                                         const RankingEvalOptions& options);

}  // namespace vrec::train
