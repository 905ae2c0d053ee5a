// The candidate-generation model (Covington et al. 2016, section 3) as the
// parameter servers hold it: its spec (tables "video", "token", "region",
// "device" keyed by the example's ids, "video_out" the softmax's [w_v | b_v]
// keyed by video id, and the tower's dense blocks "cand/<block>"), the model
// options back from a spec, and how a batch of examples becomes the model's
// inputs (CandidateInputs), shared by the worker, evaluation and serving.
//
// Thread safety: functions are thread-safe; a CandidateInputs is used by one
// thread.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "data/example_source.h"
#include "model/batch_builder.h"
#include "model/candidate_model.h"
#include "model/quantile_normalizer.h"
#include "models/model_spec.h"
#include "proto/data.pb.h"
#include "proto/model.pb.h"
#include "vrec/status.h"

namespace vrec::models {

struct CandidateSpecOptions {
  uint64_t seed = 1;
  model::CandidateModelOptions model;
  OptimizerConfig optimizer;  // every table's optimizer
  float embedding_init_scale = 0.05f;
  SamplerConfig sampler;  // kind, power, num_negatives
};

// The candidate-generation model's tables. kInvalidArgument for invalid
// model options (see CandidateModelOptions::Validate).
StatusOr<ModelSpec> CandidateSpec(const CandidateSpecOptions& options);

// The feature name of the example age's quantiles in ModelSpec::quantiles
// (and TrainedModel.quantiles).
inline constexpr char kExampleAgeFeature[] = "example_age";

// Fits the example age's quantiles (the candidate tower's normalisation,
// fitted on the training data before training) one example at a time.
class ExampleAgeFit {
 public:
  ExampleAgeFit(int num_quantiles, uint64_t seed) : builder_(num_quantiles, 1 << 16, seed) {}
  // kInvalidArgument for an age that is not finite (naming the example).
  Status Add(const CandidateExample& e);
  // kFailedPrecondition when nothing was added.
  StatusOr<QuantileInfo> Build() const;

 private:
  model::QuantileNormalizer::Builder builder_;
};

// ExampleAgeFit over `source`'s examples: its first epoch, at most
// max_examples of it (0 = all).
StatusOr<QuantileInfo> FitExampleAgeQuantiles(ExampleSource<CandidateExample>* source,
                                              uint64_t max_examples, int num_quantiles,
                                              uint64_t seed);

// The model options back from a spec (what `vrec eval` rebuilds), with the
// example age's quantiles when the spec has them.
StatusOr<model::CandidateModelOptions> CandidateOptionsFromSpec(const ModelSpec& spec);

// The PS table names of the candidate model's sparse tables.
inline constexpr char kVideoTable[] = "video";
inline constexpr char kTokenTable[] = "token";
inline constexpr char kRegionTable[] = "region";
inline constexpr char kDeviceTable[] = "device";
inline constexpr char kVideoOutTable[] = "video_out";

// The input side of a candidate batch: each table's distinct ids and the
// model's index lists into them, demographics and example ages. Lists are
// oldest first; the most recent max_history / max_tokens ids are kept.
// Region and device 0 (unknown) give an empty list (zeros).
struct CandidateInputs {
  model::IdDeduplicator video, token, region, device;
  void Build(absl::Span<const CandidateExample> examples,
             const model::CandidateModelOptions& options, model::CandidateBatch<float>* batch);
};

}  // namespace vrec::models
