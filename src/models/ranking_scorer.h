// The ranking model as serving and evaluation use it: logits of impressions
// over any ParameterSource (the parameter servers or a saved model).
//
// Thread safety: a RankingScorer is used by one thread.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "model/ranking_model.h"
#include "model/ranking_page.h"
#include "models/parameters.h"
#include "models/ranking_spec.h"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec::models {

// The ranking model over a ParameterSource: logits of impressions (their
// odds estimate the expected watch time: exp(logit)).
class RankingScorer {
 public:
  static StatusOr<std::unique_ptr<RankingScorer>> Create(const ModelSpec& spec,
                                                         ParameterSource* params);
  // z[i] = the logit of examples[i].
  Status Logits(absl::Span<const RankingExample> examples, std::vector<float>* z);
  // z[i] = the logit of impressions[i] shown to `user` (its watch history,
  // search tokens, region, device, age and gender are read), the user's part
  // of the first layer computed once for the page (model/ranking_page.h):
  // Logits() of ImpressionExample(user, impressions[i]) up to float
  // rounding, for a sixth fewer FLOPs at the paper's sizes. `profile`, when
  // given, gets the model's time added to it. REQUIRES: impressions non-empty.
  Status PageLogits(const RankingExample& user, absl::Span<const RankingImpression> impressions,
                    std::vector<float>* z, model::RankingPageProfile* profile = nullptr);

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
  // Built on the first PageLogits (it copies the first layer's weights).
  std::optional<model::RankingPageForward<float>> page_forward_;
  model::RankingPage<float> page_;
};

}  // namespace vrec::models
