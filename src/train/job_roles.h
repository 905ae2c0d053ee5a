// The roles of a training job, as every launcher wires them: TrainLocal
// (job.h: every role in this process) and TrainMpi (mpi_job.h: a role per
// rank) call these and differ only in their control plane.
//
//   setup        the model's spec, the checkpoint to resume from, the data
//                every role reads (JobData) and the negative sampler;
//   server i     holds every table's rows for its virtual slots
//                (ps::ServerStorage behind a ps::PsService), StartServer;
//   worker w     trains on its slice of the data, RunWorkerRole;
//   coordinator  coordinator.h, with EvaluateThroughServers for its
//                evaluations.
//
// Thread safety: the functions are thread-safe; a ServerProcess is used by
// one thread (its request handlers run on the transport's threads).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/negative_sampler.h"
#include "net/transport.h"
#include "nlohmann/json.hpp"
#include "ps/ps_service.h"
#include "ps/server_storage.h"
#include "train/checkpoint.h"
#include "train/control_plane.h"
#include "train/data_source.h"
#include "train/model_spec.h"
#include "train/stream_source.h"
#include "train/train_options.h"

namespace vrec::train {

// Everything a job needs to know about its data, loaded once.
struct JobData {
  DatasetManifest manifest;
  Corpus corpus;                                // candidate model
  std::vector<QuantileInfo> quantiles;          // ranking model: fitted on the training data
  uint64_t train_records = 0;                   // from the manifest
  std::shared_ptr<const GeneratedWorld> world;  // with options.worker.stream
};
// Reads what `spec`'s model needs: the corpus and label counts (candidate),
// or the continuous features' quantiles, fitted in one pass (ranking).
StatusOr<JobData> LoadJobData(const TrainOptions& options, const ModelSpec& spec);

// The spec of options.model. kInvalidArgument for an unknown model.
StatusOr<ModelSpec> BuildSpec(const TrainOptions& options);

// The sampler of the candidate model over the corpus (a ranking model's
// workers get a placeholder).
StatusOr<model::NegativeSampler> BuildSampler(const ModelSpec& spec, const Corpus& corpus);

// Per-worker example limit: the total split as evenly as possible.
uint64_t WorkerShare(uint64_t total, int worker, int num_workers);

// The checkpoint to resume from (options.checkpoint.resume), or nullopt to
// start afresh (no checkpoint yet: logged). Errors for a checkpoint this job
// cannot continue.
StatusOr<std::optional<FoundCheckpoint>> FindResumeCheckpoint(const TrainOptions& options,
                                                              const ModelSpec& spec,
                                                              int num_workers);

// Creates one server's storage (spill folder spill_dir/server-<i>).
// With `restore`, the storage holds that checkpoint's rows for server
// `server` of `num_servers`.
StatusOr<std::unique_ptr<ps::ServerStorage>> CreateServerStorage(
    const ModelSpec& spec, const TrainOptions& options, int server,
    const FoundCheckpoint* restore = nullptr, int num_servers = 1);

// One parameter server: storage, request handler and transport.
struct ServerProcess {
  std::unique_ptr<ps::ServerStorage> storage;
  std::unique_ptr<ps::PsService> service;
  std::unique_ptr<net::Server> server;
  std::string endpoint;  // what workers dial
};
// Creates and starts server `index` of a job with `num_workers` workers,
// bound to options.server.bind_host on a free port.
StatusOr<ServerProcess> StartServer(const ModelSpec& spec, const TrainOptions& options, int index,
                                    int num_workers, const FoundCheckpoint* restore = nullptr,
                                    int num_servers = 1);

// Runs worker `worker` of `num_workers` against the servers at `endpoints`
// until its share is done, the coordinator stops it, or *signal: reports
// progress and pauses through `channel`, and sends its last report, marked
// done, through it in every case (with the error when it failed, even before
// its first step). `resume`: the checkpoint's progress of this worker.
// Returns the worker's status.
Status RunWorkerRole(const ModelSpec& spec, const JobData& data,
                     const model::NegativeSampler& sampler, const TrainOptions& options,
                     const std::vector<std::string>& endpoints, int worker, int num_workers,
                     const WorkerProgress* resume, WorkerChannel* channel,
                     const std::atomic<bool>* signal);

// Evaluates through the servers at `endpoints` (evaluation options `eval`).
StatusOr<nlohmann::json> EvaluateThroughServers(const ModelSpec& spec, const JobData& data,
                                                const TrainOptions& options,
                                                const std::vector<std::string>& endpoints,
                                                const CandidateEvalOptions& eval);

// One human line for an evaluation result (candidate or ranking).
std::string EvalLine(const nlohmann::json& eval);

}  // namespace vrec::train
