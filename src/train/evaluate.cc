#include "train/evaluate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "model/candidate_model.h"
#include "train/candidate_worker.h"

namespace vrec::train {

nlohmann::json OracleFigures(const std::string& data_dir, const DatasetManifest& manifest) {
  if (manifest.truth().empty()) return nullptr;
  auto text = ReadFileToString(JoinPath(data_dir, manifest.truth()));
  if (!text.ok()) return nullptr;
  nlohmann::json truth = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (truth.is_discarded() || !truth.contains("oracle")) return nullptr;
  return truth["oracle"];
}

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

StatusOr<nlohmann::json> EvaluateCandidate(const ModelSpec& spec, ParameterSource* params,
                                           const std::string& data_dir,
                                           const DatasetManifest& manifest, const Corpus& corpus,
                                           const CandidateEvalOptions& options) {
  VREC_ASSIGN_OR_RETURN(auto tower, UserTower::Create(spec, params));
  VREC_ASSIGN_OR_RETURN(RowMatrix<float> rows, CorpusRows(*tower, corpus.ids));
  VREC_ASSIGN_OR_RETURN(RetrievalEvaluator evaluator,
                        RetrievalEvaluator::Create(corpus.ids, std::move(rows)));

  // Test examples, in batches.
  VREC_ASSIGN_OR_RETURN(auto reader,
                        ShardedReader::Open(ShardPaths(data_dir, manifest.candidate_test())));
  std::vector<CandidateExample> batch;
  std::vector<int64_t> labels, all_labels;
  std::vector<std::vector<int64_t>> exclude, all_exclude;
  RowMatrix<float> users;
  uint64_t seen = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return absl::OkStatus();
    VREC_RETURN_IF_ERROR(tower->UserVectors(batch, /*serving=*/!options.own_example_age, &users));
    VREC_RETURN_IF_ERROR(
        evaluator.Add(users, labels, options.exclude_watched ? &exclude : nullptr));
    all_labels.insert(all_labels.end(), labels.begin(), labels.end());
    if (options.exclude_watched) {
      for (auto& e : exclude) all_exclude.push_back(std::move(e));
    }
    batch.clear();
    labels.clear();
    exclude.clear();
    return absl::OkStatus();
  };
  CandidateExample e;
  while (options.max_examples == 0 || seen < options.max_examples) {
    VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&e));
    if (!more) break;
    ++seen;
    labels.push_back(static_cast<int64_t>(e.label_video()));
    if (options.exclude_watched) {
      exclude.emplace_back(e.watch_history().begin(), e.watch_history().end());
    }
    batch.push_back(std::move(e));
    if (static_cast<int>(batch.size()) >= options.batch_size) VREC_RETURN_IF_ERROR(flush());
  }
  VREC_RETURN_IF_ERROR(flush());
  if (seen == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset ", data_dir, " has no candidate-generation test examples"));
  }

  nlohmann::json out = evaluator.Metrics().ToJson();
  out["exclude_watched"] = options.exclude_watched;
  out["example_age"] = options.own_example_age ? "own" : "zero";
  if (!corpus.label_counts.empty()) {
    absl::flat_hash_map<int64_t, int64_t> counts;
    for (size_t i = 0; i < corpus.ids.size(); ++i) {
      if (corpus.label_counts[i] > 0) {
        counts[corpus.ids[i]] = static_cast<int64_t>(corpus.label_counts[i]);
      }
    }
    VREC_ASSIGN_OR_RETURN(
        RetrievalMetrics pop,
        PopularityMetrics(counts, corpus.ids, all_labels,
                          options.exclude_watched ? &all_exclude : nullptr));
    out["popularity"] = pop.ToJson();
  }
  nlohmann::json oracle = OracleFigures(data_dir, manifest);
  if (!oracle.is_null()) out["oracle"] = oracle;
  return out;
}

}  // namespace vrec::train
