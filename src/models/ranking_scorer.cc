#include "models/ranking_scorer.h"

#include <utility>

namespace vrec::models {

StatusOr<std::unique_ptr<RankingScorer>> RankingScorer::Create(const ModelSpec& spec,
                                                               ParameterSource* params) {
  VREC_ASSIGN_OR_RETURN(auto mo, RankingOptionsFromSpec(spec));
  VREC_ASSIGN_OR_RETURN(auto model, model::RankingModel<float>::Create(mo));
  std::unique_ptr<RankingScorer> r(new RankingScorer());
  r->params_ = params;
  r->model_ = std::make_unique<model::RankingModel<float>>(std::move(model));
  VREC_ASSIGN_OR_RETURN(r->table_index_, RankingTableIndices(spec, mo));
  VREC_RETURN_IF_ERROR(GatherDense(spec, params, &r->dense_));
  return r;
}

Status RankingScorer::Logits(absl::Span<const RankingExample> examples, std::vector<float>* z) {
  const model::RankingModelOptions& mo = model_->options();
  // Eigen's GEMM runs 2-2.5x slower when the rows are not a multiple of its
  // 16-float panels (300 x 258 x 1024: 2.6 ms, 304 x 258 x 1024: 1.1 ms
  // here), so a batch is padded with copies of its last example.
  const size_t n = examples.size();
  if (n % 16 != 0) {
    padded_.assign(examples.begin(), examples.end());
    padded_.resize((n + 15) / 16 * 16, examples.back());
    examples = padded_;
  }
  inputs_.Build(examples, mo, &batch_);
  for (size_t t = 0; t < mo.tables.size(); ++t) {
    keys_.assign(inputs_.tables[t].ids().begin(), inputs_.tables[t].ids().end());
    VREC_RETURN_IF_ERROR(params_->Pull(table_index_[t], keys_, batch_.table_rows[t].data()));
  }
  VREC_RETURN_IF_ERROR(model_->Logits(dense_, batch_, z));
  z->resize(n);
  return absl::OkStatus();
}

Status RankingScorer::PageLogits(const RankingExample& user,
                                 absl::Span<const RankingImpression> impressions,
                                 std::vector<float>* z, model::RankingPageProfile* profile) {
  if (impressions.empty()) return absl::InvalidArgumentError("ranking page: no impressions");
  const model::RankingModelOptions& mo = model_->options();
  if (!page_forward_.has_value()) {
    VREC_ASSIGN_OR_RETURN(page_forward_, model::RankingPageForward<float>::Create(
                                             model_.get(), dense_, RankingUserCategorical(),
                                             RankingUserContinuous()));
  }
  inputs_.BuildPage(user, impressions, mo, &page_);
  for (size_t t = 0; t < mo.tables.size(); ++t) {
    keys_.assign(inputs_.tables[t].ids().begin(), inputs_.tables[t].ids().end());
    VREC_RETURN_IF_ERROR(params_->Pull(table_index_[t], keys_, page_.table_rows[t].data()));
  }
  return page_forward_->Logits(page_, z, profile);
}

}  // namespace vrec::models
