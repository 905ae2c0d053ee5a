// The ranking model as a ModelKind (model_kind.h).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/dataset.h"
#include "models/ranking_eval.h"
#include "models/ranking_spec.h"
#include "train/model_kind.h"
#include "train/ranking_worker.h"

namespace vrec::train {
namespace {

class Ranking : public ModelKind {
 public:
  const char* name() const override { return models::kRankingKind; }

  StatusOr<models::ModelSpec> Spec(const TrainOptions& options) const override {
    return models::RankingSpec(options.ranking);
  }

  std::vector<std::string> GrowingTables() const override { return {"rank/video", "rank/token"}; }

  Status LoadData(const models::ModelSpec& spec, bool full, JobData* d) const override {
    // Quantiles are fitted on the training files, or on the sample datagen
    // kept of them when it did not write them.
    const bool streamed = d->manifest.train_streamed();
    const auto& fit_on =
        streamed ? d->manifest.ranking_train_sample() : d->manifest.ranking_train();
    if (fit_on.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("dataset ", d->dir, " has no ranking training files"));
    }
    if (streamed) {
      d->train_records = d->manifest.ranking_train_examples();
    } else {
      VREC_RETURN_IF_ERROR(CheckShardSizes(d->dir, d->manifest.ranking_train()));
      for (const ShardInfo& s : d->manifest.ranking_train()) d->train_records += s.records();
    }
    if (!full) return absl::OkStatus();
    VREC_ASSIGN_OR_RETURN(d->quantiles, models::FitRankingQuantiles(
                                            ShardPaths(d->dir, fit_on),
                                            static_cast<int>(spec.config.ranking().num_quantiles()),
                                            spec.config.seed()));
    // A sample stands for the whole training data (what a warm start
    // weighs these quantiles by).
    if (streamed) {
      for (QuantileInfo& q : d->quantiles) q.set_count(d->train_records);
    }
    return absl::OkStatus();
  }

  Status PrepareWorkers(const models::ModelSpec&, JobData*) const override {
    return absl::OkStatus();
  }

  Status RunWorker(const WorkerRun& run) const override {
    RankingWorkerOptions ro;
    ro.worker = run.worker;
    ro.batch_size = run.options->batch_size;
    ro.max_examples = run.max_examples;
    ro.loop = run.loop;
    VREC_ASSIGN_OR_RETURN(auto w, RankingWorker::Create(run.spec, run.client, ro));
    VREC_ASSIGN_OR_RETURN(
        auto source, OpenWorkerSource<RankingExample>(run, run.data->manifest.ranking_train()));
    if (run.resume != nullptr) w->Restore(*run.resume);
    return w->Run(source.get(), run.stop, run.report);
  }

  StatusOr<nlohmann::json> Evaluate(const models::ModelSpec& spec, models::ParameterSource* params,
                                    const std::string& data_dir, const DatasetManifest& manifest,
                                    const Corpus*, const models::EvalOptions& eval) const override {
    models::RankingEvalOptions ro;
    ro.max_examples = eval.max_examples;
    return models::EvaluateRanking(spec, params, data_dir, manifest, ro);
  }

  StatusOr<nlohmann::json> Validate(const models::ModelSpec&, models::ParameterSource*,
                                    const JobData&, const models::EvalOptions&) const override {
    return absl::FailedPreconditionError(
        "the ranking model has no validation slice yet: it trains for --epochs");
  }

  std::string EvalLine(const nlohmann::json& eval) const override {
    std::string line =
        absl::StrFormat("[eval]  weighted per-user loss %.4f  auc %.4f (%d impressions)",
                        eval["weighted_per_user_loss"].get<double>(), eval["auc"].get<double>(),
                        eval["impressions"].get<int64_t>());
    if (eval.contains("oracle")) {
      absl::StrAppend(&line,
                      absl::StrFormat("  oracle loss %.4f",
                                      eval["oracle"]["weighted_per_user_loss"].get<double>()));
    }
    return line;
  }
};

}  // namespace

const ModelKind& RankingKind() {
  static const Ranking kind;
  return kind;
}

}  // namespace vrec::train
