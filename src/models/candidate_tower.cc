#include "models/candidate_tower.h"

#include "absl/strings/str_cat.h"

namespace vrec::models {

StatusOr<std::unique_ptr<UserTower>> UserTower::Create(const ModelSpec& spec,
                                                       ParameterSource* params) {
  VREC_ASSIGN_OR_RETURN(auto model_options, CandidateOptionsFromSpec(spec));
  VREC_ASSIGN_OR_RETURN(auto model, model::CandidateModel<float>::Create(model_options));
  std::unique_ptr<UserTower> t(new UserTower());
  t->params_ = params;
  t->model_ = std::make_unique<model::CandidateModel<float>>(std::move(model));
  t->video_ = spec.TableIndex(kVideoTable);
  t->token_ = spec.TableIndex(kTokenTable);
  t->region_ = spec.TableIndex(kRegionTable);
  t->device_ = spec.TableIndex(kDeviceTable);
  t->video_out_ = spec.TableIndex(kVideoOutTable);
  if (std::min({t->video_, t->token_, t->region_, t->device_, t->video_out_}) < 0) {
    return absl::InvalidArgumentError("not a candidate-generation model");
  }
  VREC_RETURN_IF_ERROR(GatherDense(spec, params, &t->dense_));
  return t;
}

Status UserTower::UserVectors(absl::Span<const CandidateExample> examples, bool serving,
                              RowMatrix<float>* users) {
  inputs_.Build(examples, model_->options(), &batch_);
  auto pull = [&](int table, const model::IdDeduplicator& ids, RowMatrix<float>* out) {
    keys_.assign(ids.ids().begin(), ids.ids().end());
    return params_->Pull(table, keys_, out->data());
  };
  VREC_RETURN_IF_ERROR(pull(video_, inputs_.video, &batch_.video_rows));
  VREC_RETURN_IF_ERROR(pull(token_, inputs_.token, &batch_.token_rows));
  VREC_RETURN_IF_ERROR(pull(region_, inputs_.region, &batch_.region_rows));
  VREC_RETURN_IF_ERROR(pull(device_, inputs_.device, &batch_.device_rows));
  return model_->UserVectors(dense_, batch_, users, serving);
}

StatusOr<RowMatrix<float>> CorpusRows(const UserTower& tower, absl::Span<const int64_t> ids) {
  const int64_t n = static_cast<int64_t>(ids.size());
  const int width = tower.options().output_dim + 1;
  RowMatrix<float> rows(n, width);
  constexpr int64_t kChunk = 1 << 16;
  std::vector<uint64_t> keys;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
    keys.assign(ids.begin() + begin, ids.begin() + end);
    VREC_RETURN_IF_ERROR(
        tower.params()->Pull(tower.video_out_table(), keys, rows.data() + begin * width));
  }
  return rows;
}

}  // namespace vrec::models
