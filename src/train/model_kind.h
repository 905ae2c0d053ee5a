// ModelKind: everything a training job and `vrec eval` do differently for
// each kind of model, behind one interface. A job finds its kind once by
// name (FindModelKind(options.model)); launchers, roles and the coordinator
// then call through it and never compare kind names.
//
//   spec      the model's PS tables from the job's options
//   data      what the job reads before training: the candidate model's
//             corpus and label counts, the ranking model's fitted quantiles
//   worker    the kind's worker over one PS client, on its slice of the data
//   eval      its evaluation over any ParameterSource, and a human line of it
//
// Two kinds: "candidate" (candidate_kind.cc) and "ranking"
// (ranking_kind.cc). Adding a kind: implement this, add it to FindModelKind,
// give it a spec and scorer in src/models for serving.
//
// Thread safety: kinds are stateless singletons; their methods are
// thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "data/example_source.h"
#include "data/generator_source.h"
#include "model/negative_sampler.h"
#include "models/eval_options.h"
#include "models/model_spec.h"
#include "models/parameters.h"
#include "nlohmann/json.hpp"
#include "proto/checkpoint.pb.h"
#include "proto/data.pb.h"
#include "ps/ps_client.h"
#include "train/train_options.h"
#include "train/worker_loop.h"
#include "vrec/status.h"

namespace vrec::train {

// Everything a job needs to know about its data, loaded once per process.
struct JobData {
  std::string dir;  // the dataset's folder
  DatasetManifest manifest;
  Corpus corpus;                                // candidate model
  std::vector<QuantileInfo> quantiles;          // ranking model: fitted on the training data
  uint64_t train_records = 0;                   // one epoch, from the manifest
  std::shared_ptr<const GeneratedWorld> world;  // with options.worker.stream
  // The validation slice (data/validation_split.h) of up to this many users;
  // set before LoadData. 0 = none.
  uint64_t validation_users = 0;
  // Its examples (full loads: the coordinator's process) ...
  std::vector<CandidateExample> validation;
  // ... and their ids, which no worker trains on (every process; null: none).
  std::shared_ptr<const absl::flat_hash_set<uint64_t>> held_out;
  // Training examples in one epoch less the held-out ones.
  uint64_t trained_per_epoch() const {
    return train_records - (held_out ? std::min<uint64_t>(held_out->size(), train_records) : 0);
  }
  // Shared by the workers of a process (ModelKind::PrepareWorkers).
  std::shared_ptr<const model::NegativeSampler> sampler;  // candidate model
};

// One worker's run, as its kind sets it up.
struct WorkerRun {
  const models::ModelSpec* spec = nullptr;
  const JobData* data = nullptr;
  const WorkerOptions* options = nullptr;
  ps::PsClient* client = nullptr;
  int worker = 0;
  int num_workers = 1;
  uint64_t max_examples = 0;               // this worker's share; 0 = no limit
  const WorkerProgress* resume = nullptr;  // the checkpoint's progress of this worker
  WorkerLoopOptions loop;
  const std::atomic<bool>* stop = nullptr;
  std::function<void(const WorkerProgress&)> report;
};

class ModelKind {
 public:
  virtual ~ModelKind() = default;
  // "candidate" or "ranking": --model, ModelSpec::kind, TrainedModel.kind.
  virtual const char* name() const = 0;
  // The spec from the job's options (the kind's own part of them).
  virtual StatusOr<models::ModelSpec> Spec(const TrainOptions& options) const = 0;
  // Its sparse tables keyed by open-ended ids (videos, search tokens): the
  // ones that grow with the catalogue, which a bare --min_count or
  // --expire_after applies to (train/table_policy.h).
  virtual std::vector<std::string> GrowingTables() const = 0;
  // Reads the kind's part of the data (data->dir, data->manifest and
  // data->validation_users are set already): train_records, and with `full`
  // also what one process computes for all (label counts, fitted quantiles,
  // the validation slice); without, only what every worker process reads for
  // itself.
  virtual Status LoadData(const models::ModelSpec& spec, bool full, JobData* data) const = 0;
  // Once the data is complete in a process that runs workers: what its
  // workers share (the candidate model's negative sampler).
  virtual Status PrepareWorkers(const models::ModelSpec& spec, JobData* data) const = 0;
  // Trains one worker until its share is done or *run.stop.
  virtual Status RunWorker(const WorkerRun& run) const = 0;
  // Evaluates the model read through `params` on the dataset's held-out
  // examples; `corpus` may be null (loaded, with label counts, if needed).
  virtual StatusOr<nlohmann::json> Evaluate(const models::ModelSpec& spec,
                                            models::ParameterSource* params,
                                            const std::string& data_dir,
                                            const DatasetManifest& manifest, const Corpus* corpus,
                                            const models::EvalOptions& eval) const = 0;
  // Scores the model read through `params` on data.validation (the
  // validation slice) with the job's evaluation options: the same keys as
  // Evaluate's model figures, no baselines. kFailedPrecondition for a kind
  // or dataset without a validation slice.
  virtual StatusOr<nlohmann::json> Validate(const models::ModelSpec& spec,
                                            models::ParameterSource* params, const JobData& data,
                                            const models::EvalOptions& eval) const = 0;
  // One human line for an Evaluate result.
  virtual std::string EvalLine(const nlohmann::json& eval) const = 0;
};

// The kind called `name`; kInvalidArgument naming the kinds there are.
StatusOr<const ModelKind*> FindModelKind(const std::string& name);

const ModelKind& CandidateKind();
const ModelKind& RankingKind();

// Opens worker run.worker's example source over `shards` (or the world
// when streaming), at run.resume's position if given.
template <typename Example>
StatusOr<std::unique_ptr<ExampleSource<Example>>> OpenWorkerSource(
    const WorkerRun& run, const google::protobuf::RepeatedPtrField<ShardInfo>& shards);

}  // namespace vrec::train
