// The candidate model's two towers as serving and evaluation use them: the
// user tower (user vectors from examples, over any ParameterSource: the
// parameter servers or a saved model) and the video side (the corpus's
// output rows [w_v | b_v]). Scores are dot products u . w_v + b_v.
//
// Thread safety: a UserTower is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "model/candidate_model.h"
#include "model/tensor.h"
#include "models/candidate_spec.h"
#include "models/parameters.h"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec::models {

using model::RowMatrix;

// The candidate model's user side over a ParameterSource: user vectors of
// examples (their history, tokens, demographics, example age).
class UserTower {
 public:
  // kInvalidArgument if `spec` is not a candidate-generation model.
  static StatusOr<std::unique_ptr<UserTower>> Create(const ModelSpec& spec,
                                                     ParameterSource* params);
  // users row i = the user vector of examples[i]; serving = example age 0.
  Status UserVectors(absl::Span<const CandidateExample> examples, bool serving,
                     RowMatrix<float>* users);
  const model::CandidateModelOptions& options() const { return model_->options(); }
  ParameterSource* params() const { return params_; }
  int video_out_table() const { return video_out_; }

 private:
  UserTower() = default;
  ParameterSource* params_ = nullptr;
  std::unique_ptr<model::CandidateModel<float>> model_;
  std::vector<float> dense_;
  int video_ = -1, token_ = -1, region_ = -1, device_ = -1, video_out_ = -1;
  CandidateInputs inputs_;
  model::CandidateBatch<float> batch_;
  std::vector<uint64_t> keys_;
};

// The corpus's output rows [w | b] (n x (d+1)), in corpus order.
StatusOr<RowMatrix<float>> CorpusRows(const UserTower& tower, absl::Span<const int64_t> ids);

}  // namespace vrec::models
