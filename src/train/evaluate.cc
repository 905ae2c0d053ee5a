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

StatusOr<nlohmann::json> EvaluateCandidate(const ModelSpec& spec, ParameterSource* params,
                                           const std::string& data_dir,
                                           const DatasetManifest& manifest, const Corpus& corpus,
                                           const CandidateEvalOptions& options) {
  VREC_ASSIGN_OR_RETURN(auto model_options, CandidateOptionsFromSpec(spec));
  VREC_ASSIGN_OR_RETURN(auto model, model::CandidateModel<float>::Create(model_options));
  const int video = spec.TableIndex(kVideoTable), token = spec.TableIndex(kTokenTable),
            region = spec.TableIndex(kRegionTable), device = spec.TableIndex(kDeviceTable),
            video_out = spec.TableIndex(kVideoOutTable);
  if (std::min({video, token, region, device, video_out}) < 0) {
    return absl::InvalidArgumentError("not a candidate-generation model");
  }
  std::vector<float> dense;
  VREC_RETURN_IF_ERROR(GatherDense(spec, params, &dense));

  // The corpus's output rows, pulled in chunks.
  const int64_t n = static_cast<int64_t>(corpus.ids.size());
  const int width = model_options.output_dim + 1;
  RowMatrix<float> rows(n, width);
  constexpr int64_t kChunk = 1 << 16;
  std::vector<uint64_t> keys;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t end = std::min(n, begin + kChunk);
    keys.assign(corpus.ids.begin() + begin, corpus.ids.begin() + end);
    VREC_RETURN_IF_ERROR(params->Pull(video_out, keys, rows.data() + begin * width));
  }
  VREC_ASSIGN_OR_RETURN(RetrievalEvaluator evaluator,
                        RetrievalEvaluator::Create(corpus.ids, std::move(rows)));

  // Test examples, in batches.
  VREC_ASSIGN_OR_RETURN(auto reader,
                        ShardedReader::Open(ShardPaths(data_dir, manifest.candidate_test())));
  std::vector<CandidateExample> batch;
  std::vector<int64_t> labels, all_labels;
  std::vector<std::vector<int64_t>> exclude, all_exclude;
  CandidateInputs inputs;
  model::CandidateBatch<float> b;
  RowMatrix<float> users;
  uint64_t seen = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return absl::OkStatus();
    inputs.Build(batch, model_options, &b);
    auto pull = [&](int table, const model::IdDeduplicator& ids, RowMatrix<float>* out) {
      keys.assign(ids.ids().begin(), ids.ids().end());
      return params->Pull(table, keys, out->data());
    };
    VREC_RETURN_IF_ERROR(pull(video, inputs.video, &b.video_rows));
    VREC_RETURN_IF_ERROR(pull(token, inputs.token, &b.token_rows));
    VREC_RETURN_IF_ERROR(pull(region, inputs.region, &b.region_rows));
    VREC_RETURN_IF_ERROR(pull(device, inputs.device, &b.device_rows));
    VREC_RETURN_IF_ERROR(
        model.UserVectors(dense, b, &users, /*serving=*/!options.own_example_age));
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
