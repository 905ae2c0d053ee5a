// The candidate-generation model as a ModelKind (model_kind.h).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/dataset.h"
#include "data/validation_split.h"
#include "models/candidate_eval.h"
#include "models/candidate_spec.h"
#include "train/candidate_worker.h"
#include "train/model_kind.h"

namespace vrec::train {
namespace {

// Resolution of the example age's CDF, and how many simulated examples it is
// fitted on when the dataset has no training files.
constexpr int kExampleAgeQuantiles = 100;
constexpr uint64_t kStreamedFitExamples = 1 << 18;

class Candidate : public ModelKind {
 public:
  const char* name() const override { return models::kCandidateKind; }

  StatusOr<models::ModelSpec> Spec(const TrainOptions& options) const override {
    return models::CandidateSpec(options.candidate);
  }

  std::vector<std::string> GrowingTables() const override {
    return {models::kVideoTable, models::kTokenTable, models::kVideoOutTable};
  }

  Status LoadData(const models::ModelSpec& spec, bool full, JobData* d) const override {
    if (d->manifest.train_streamed()) {
      d->train_records = d->manifest.candidate_train_examples();
    } else {
      VREC_RETURN_IF_ERROR(CheckShardSizes(d->dir, d->manifest.candidate_train()));
      if (d->manifest.candidate_train_size() == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("dataset ", d->dir, " has no candidate-generation training files"));
      }
      for (const ShardInfo& s : d->manifest.candidate_train()) d->train_records += s.records();
    }
    // Label counts (full): the unigram sampler's background and the
    // popularity baseline, one pass over the training examples; the example
    // age's quantiles are fitted in the same pass over the training files,
    // or, when the workers simulate the world, over the first
    // kStreamedFitExamples simulated examples (users are drawn independently).
    const bool fit_age = full && spec.config.candidate().use_example_age();
    const bool from_files = d->world == nullptr;
    // The validation slice, in the same pass (simulated examples have no
    // last one: without training files there is none).
    const bool split = full && from_files && d->validation_users > 0;
    models::ExampleAgeFit fit(kExampleAgeQuantiles, spec.config.seed());
    ValidationSplit<CandidateExample> validation(split ? d->validation_users : 0,
                                                 spec.config.seed());
    std::function<Status(const CandidateExample&)> visit;
    if ((fit_age && from_files) || split) {
      visit = [&](const CandidateExample& e) {
        if (split) validation.Add(e);
        return fit_age ? fit.Add(e) : absl::OkStatus();
      };
    }
    VREC_ASSIGN_OR_RETURN(d->corpus, LoadCorpus(d->dir, d->manifest, full, visit));
    if (split) {
      d->validation = validation.Take();
      auto ids = std::make_shared<absl::flat_hash_set<uint64_t>>();
      for (const CandidateExample& e : d->validation) ids->insert(e.example_id());
      d->held_out = std::move(ids);
      // The label counts are of the examples trained on: the slice's labels
      // out (the sampler's background, and popularity, which early stopping
      // must beat on the slice without having seen its answers).
      if (!d->corpus.label_counts.empty()) {
        for (const CandidateExample& e : d->validation) {
          const int32_t k = d->corpus.IndexOf(static_cast<int64_t>(e.label_video()));
          if (k >= 0 && d->corpus.label_counts[k] > 0) d->corpus.label_counts[k] -= 1;
        }
      }
    }
    if (!fit_age) return absl::OkStatus();
    QuantileInfo age;
    if (from_files) {
      VREC_ASSIGN_OR_RETURN(age, fit.Build());
    } else {
      GeneratorSource<CandidateExample> simulated(d->world, 0, 1, 1);
      VREC_ASSIGN_OR_RETURN(
          age, models::FitExampleAgeQuantiles(&simulated, kStreamedFitExamples,
                                              kExampleAgeQuantiles, spec.config.seed()));
      age.set_count(d->train_records);  // the fit's sample stands for every example
    }
    d->quantiles = {std::move(age)};
    return absl::OkStatus();
  }

  Status PrepareWorkers(const models::ModelSpec& spec, JobData* d) const override {
    std::vector<double> counts = d->corpus.label_counts;
    if (counts.empty()) counts.assign(d->corpus.ids.size(), 1.0);
    VREC_ASSIGN_OR_RETURN(
        model::NegativeSampler sampler,
        model::NegativeSampler::FromConfig(spec.config.candidate().sampler(), counts));
    d->sampler = std::make_shared<const model::NegativeSampler>(std::move(sampler));
    return absl::OkStatus();
  }

  Status RunWorker(const WorkerRun& run) const override {
    if (run.data->sampler == nullptr) {
      return absl::FailedPreconditionError("the candidate workers' sampler is not prepared");
    }
    CandidateWorkerOptions co;
    co.worker = run.worker;
    co.num_workers = run.num_workers;
    co.batch_size = run.options->batch_size;
    co.max_examples = run.max_examples;
    co.seed = run.spec->config.seed();
    co.exclude_watched = run.options->exclude_watched;
    co.loop = run.loop;
    VREC_ASSIGN_OR_RETURN(auto w, CandidateWorker::Create(run.spec, &run.data->corpus,
                                                          run.data->sampler.get(), run.client, co));
    VREC_ASSIGN_OR_RETURN(
        auto source, OpenWorkerSource<CandidateExample>(run, run.data->manifest.candidate_train()));
    if (run.resume != nullptr) w->Restore(*run.resume);
    return w->Run(source.get(), run.stop, run.report);
  }

  StatusOr<nlohmann::json> Evaluate(const models::ModelSpec& spec, models::ParameterSource* params,
                                    const std::string& data_dir, const DatasetManifest& manifest,
                                    const Corpus* corpus,
                                    const models::EvalOptions& eval) const override {
    Corpus loaded;
    if (corpus == nullptr) {
      VREC_ASSIGN_OR_RETURN(loaded, LoadCorpus(data_dir, manifest, /*count_labels=*/true));
      corpus = &loaded;
    }
    return models::EvaluateCandidate(spec, params, data_dir, manifest, *corpus, eval);
  }

  StatusOr<nlohmann::json> Validate(const models::ModelSpec& spec, models::ParameterSource* params,
                                    const JobData& data,
                                    const models::EvalOptions& eval) const override {
    if (data.validation.empty()) {
      return absl::FailedPreconditionError("the job has no validation slice");
    }
    models::EvalOptions eo = eval;
    eo.max_examples = 0;
    eo.item_knn = false;
    return models::EvaluateCandidateExamples(spec, params, data.corpus, data.validation, eo);
  }

  std::string EvalLine(const nlohmann::json& eval) const override {
    std::string line =
        absl::StrFormat("[eval]  recall@1 %.4f  recall@100 %.4f  map %.4f (%d examples)",
                        eval["recall@1"].get<double>(), eval["recall@100"].get<double>(),
                        eval["map"].get<double>(), eval["examples"].get<int64_t>());
    if (eval.contains("popularity")) {
      absl::StrAppend(&line, absl::StrFormat("  popularity recall@100 %.4f",
                                             eval["popularity"]["recall@100"].get<double>()));
    }
    if (eval.contains("item_knn") && eval["item_knn"].contains("recall@100")) {
      absl::StrAppend(&line, absl::StrFormat("  item-kNN recall@100 %.4f",
                                             eval["item_knn"]["recall@100"].get<double>()));
    }
    if (eval.contains("oracle") && eval["oracle"].contains("recall@100")) {
      absl::StrAppend(&line, absl::StrFormat("  oracle recall@100 %.4f",
                                             eval["oracle"]["recall@100"].get<double>()));
    }
    return line;
  }
};

}  // namespace

const ModelKind& CandidateKind() {
  static const Candidate kind;
  return kind;
}

}  // namespace vrec::train
