// Evaluation of a candidate-generation model on a dataset's held-out
// examples (`vrec eval`, and during `vrec train`).
//
// User vectors come from the model (example age 0, as at serving); every
// corpus video is scored by its output row [w_v | b_v]; the label's exact
// rank over the whole corpus gives recall@{1,10,50,100} and MAP (see
// metrics.h). Beside them: the popularity baseline (videos ranked by their
// training label counts, with the same exclusions) and, for a generated
// world, the oracle's figures from truth.json.
//
// Thread safety: functions; the ParameterSource is used from the calling
// thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/example_source.h"
#include "models/eval_options.h"
#include "models/model_spec.h"
#include "models/parameters.h"
#include "nlohmann/json.hpp"
#include "proto/data.pb.h"

namespace vrec::models {

// The paper's Figure 4: how the model spreads its probability over videos by
// their age (days since upload at the example's time), beside where the
// held-out next watches actually fell. For each held-out example the full
// softmax over the corpus is summed into day buckets (0 .. max_days - 1, the
// last bucket also holding older videos; videos not yet uploaded go to
// "not_yet_uploaded"), then averaged over examples; the empirical share is
// the labels' histogram. Scored at each example's own example age unless
// options.own_example_age is false.
// {"examples", "days": [0..], "predicted": [...], "empirical": [...],
//  "not_yet_uploaded": p}
StatusOr<nlohmann::json> VideoAgeShares(const ModelSpec& spec, ParameterSource* params,
                                        const std::string& data_dir,
                                        const DatasetManifest& manifest, const Corpus& corpus,
                                        const EvalOptions& options, int max_days = 30);

// {"examples", "recall@1", ..., "map", "popularity": {...}, "oracle": {...}}
// `corpus` needs label_counts for the popularity figures (omitted without).
StatusOr<nlohmann::json> EvaluateCandidate(const ModelSpec& spec, ParameterSource* params,
                                           const std::string& data_dir,
                                           const DatasetManifest& manifest, const Corpus& corpus,
                                           const EvalOptions& options);

// The model's figures (recall@K, map) on `examples` (e.g. a validation
// slice), and popularity's ("popularity") when the corpus has label counts;
// no item-kNN. kFailedPrecondition when there are no examples.
StatusOr<nlohmann::json> EvaluateCandidateExamples(const ModelSpec& spec, ParameterSource* params,
                                                   const Corpus& corpus,
                                                   const std::vector<CandidateExample>& examples,
                                                   const EvalOptions& options);

// Writes one JSON line per held-out example (options.max_examples of them,
// 0 = all) into `path`: {"user": .., "label": .., "rank": r, "top": [..]},
// the label's rank (as the metrics count it, with the same exclusions) and
// the model's `top` best videos (watched ones left out with
// options.exclude_watched), best first. Users and videos are named by the
// dataset's id tables (DIR/ids/, a converted log of string ids) when it has
// them, else by their numeric ids. Written atomically; returns the count.
StatusOr<uint64_t> DumpRecommendations(const ModelSpec& spec, ParameterSource* params,
                                       const std::string& data_dir,
                                       const DatasetManifest& manifest, const Corpus& corpus,
                                       const EvalOptions& options, int top,
                                       const std::string& path);

// The oracle's figures of a generated dataset (truth.json's "oracle"), or
// null when the dataset has none.
nlohmann::json OracleFigures(const std::string& data_dir, const DatasetManifest& manifest);

}  // namespace vrec::models
