#include "models/ranking_eval.h"

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/record_reader.h"
#include "data/weighted_loss.h"
#include "models/candidate_eval.h"
#include "models/metrics.h"
#include "models/ranking_scorer.h"

namespace vrec::models {

StatusOr<nlohmann::json> EvaluateRanking(const ModelSpec& spec, ParameterSource* params,
                                         const std::string& data_dir,
                                         const DatasetManifest& manifest,
                                         const RankingEvalOptions& options) {
  VREC_ASSIGN_OR_RETURN(auto scorer, RankingScorer::Create(spec, params));
  // Clickbait videos (generated worlds), to see what each ranker puts first.
  absl::flat_hash_set<uint64_t> clickbait;
  if (!manifest.videos().empty()) {
    VREC_ASSIGN_OR_RETURN(auto videos, RecordReader::Open(JoinPath(data_dir, manifest.videos())));
    VideoInfo v;
    while (true) {
      VREC_ASSIGN_OR_RETURN(bool more, videos->NextMessage(&v));
      if (!more) break;
      if (v.clickbait()) clickbait.insert(v.video_id());
    }
  }
  struct Top {
    float score = -std::numeric_limits<float>::infinity();
    bool clickbait = false;
    float truth = -1;
    bool truth_clickbait = false;
  };
  std::map<uint64_t, Top> tops;
  uint64_t clickbait_impressions = 0;
  VREC_ASSIGN_OR_RETURN(auto reader,
                        ShardedReader::Open(ShardPaths(data_dir, manifest.ranking_test())));
  std::map<uint64_t, std::vector<ScoredImpression>> pages;
  std::vector<double> scores;
  std::vector<uint8_t> clicks;
  std::vector<RankingExample> batch;
  std::vector<float> logits;
  uint64_t seen = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return absl::OkStatus();
    VREC_RETURN_IF_ERROR(scorer->Logits(batch, &logits));
    for (size_t j = 0; j < batch.size(); ++j) {
      const RankingExample& e = batch[j];
      pages[e.page_id()].push_back({logits[j], e.clicked(), e.watch_time()});
      const bool cb = clickbait.contains(e.impression_video());
      clickbait_impressions += cb;
      Top& top = tops[e.page_id()];
      if (logits[j] > top.score) {
        top.score = logits[j];
        top.clickbait = cb;
      }
      if (e.true_expected_watch_time() > top.truth) {
        top.truth = e.true_expected_watch_time();
        top.truth_clickbait = cb;
      }
      scores.push_back(logits[j]);
      clicks.push_back(e.clicked() ? 1 : 0);
    }
    batch.clear();
    return absl::OkStatus();
  };
  RankingExample e;
  while (options.max_examples == 0 || seen < options.max_examples) {
    VREC_ASSIGN_OR_RETURN(bool more, reader->NextMessage(&e));
    if (!more) break;
    ++seen;
    batch.push_back(std::move(e));
    if (static_cast<int>(batch.size()) >= options.batch_size) VREC_RETURN_IF_ERROR(flush());
  }
  VREC_RETURN_IF_ERROR(flush());
  if (seen == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset ", data_dir, " has no ranking test examples"));
  }
  WeightedLoss loss;
  for (const auto& [page, impressions] : pages) loss.AddPage(impressions);
  nlohmann::json out = {{"impressions", seen},
                        {"pages", pages.size()},
                        {"pages_with_pairs", loss.pages},
                        {"weighted_per_user_loss", loss.Loss()},
                        {"auc", Auc(scores, clicks)}};
  if (!clickbait.empty()) {
    uint64_t top_cb = 0, truth_cb = 0;
    for (const auto& [page, top] : tops) {
      top_cb += top.clickbait;
      truth_cb += top.truth_clickbait;
    }
    out["clickbait"] = {{"top1_share", static_cast<double>(top_cb) / tops.size()},
                        {"impressions_share", static_cast<double>(clickbait_impressions) / seen},
                        {"oracle_top1_share", static_cast<double>(truth_cb) / tops.size()}};
  }
  nlohmann::json oracle = OracleFigures(data_dir, manifest);
  if (!oracle.is_null() && oracle.contains("weighted_per_user_loss")) {
    out["oracle"] = {{"weighted_per_user_loss", oracle["weighted_per_user_loss"]}};
  }
  return out;
}

}  // namespace vrec::models
