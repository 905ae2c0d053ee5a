// Evaluation of a ranking model on a dataset's held-out impressions: the
// logit ranks each test page's impressions; weighted per-user loss
// (data/weighted_loss.h) and AUC of clicks, beside the oracle's loss from
// truth.json for a generated world.
//
// Thread safety: functions; the ParameterSource is used from the calling
// thread only.
#pragma once

#include <cstdint>
#include <string>

#include "models/parameters.h"
#include "nlohmann/json.hpp"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec::models {

struct RankingEvalOptions {
  uint64_t max_examples = 0;  // 0 = every test impression
  int batch_size = 1024;
};

// {"impressions", "pages", "weighted_per_user_loss", "auc", "oracle": {...}}
StatusOr<nlohmann::json> EvaluateRanking(const ModelSpec& spec, ParameterSource* params,
                                         const std::string& data_dir,
                                         const DatasetManifest& manifest,
                                         const RankingEvalOptions& options);

}  // namespace vrec::models
