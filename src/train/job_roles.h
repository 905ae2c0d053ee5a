// The roles of a training job, as every launcher wires them: TrainLocal
// (job.h: every role in this process) and TrainMpi (mpi_job.h: a role per
// rank) call these and differ only in their control plane.
//
//   setup        the model's kind and spec (model_kind.h), the checkpoint to
//                resume from, the data every role reads (JobData);
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

#include "models/checkpoint.h"
#include "models/model_spec.h"
#include "net/transport.h"
#include "nlohmann/json.hpp"
#include "ps/ps_client.h"
#include "ps/ps_server.h"
#include "ps/server_storage.h"
#include "train/control_plane.h"
#include "train/coordinator.h"
#include "train/model_kind.h"
#include "train/train_options.h"
#include "train/warm_start.h"

namespace vrec::train {

// Reads the job's data (JobData, model_kind.h): the manifest, the world
// when streaming, and the kind's part (`full`: also what one process
// computes for all, e.g. label counts; see ModelKind::LoadData).
// `stream`: the workers simulate the world instead of reading files;
// `validation_users`: the validation slice's size (JobData).
StatusOr<JobData> LoadJobData(const ModelKind& kind, const std::string& data_dir, bool stream,
                              const models::ModelSpec& spec, bool full = true,
                              uint64_t validation_users = 0);

// Where servers keep their RocksDB folders (server-<i> below it):
// options.server.spill_dir, else model_dir/spill, else a temporary folder of
// this process, which a TemporarySpillCleanup deletes.
std::string SpillRoot(const TrainOptions& options);
// Deletes the process's temporary spill folder (if SpillRoot is it) when it
// goes out of scope: declared before a process's servers, it runs after they
// are gone, on every path out.
class TemporarySpillCleanup {
 public:
  explicit TemporarySpillCleanup(const TrainOptions& options) : options_(options) {}
  ~TemporarySpillCleanup();
  TemporarySpillCleanup(const TemporarySpillCleanup&) = delete;
  TemporarySpillCleanup& operator=(const TemporarySpillCleanup&) = delete;

 private:
  const TrainOptions& options_;
};

// Per-worker example limit: the total split as evenly as possible.
uint64_t WorkerShare(uint64_t total, int worker, int num_workers);

// OK unless `checkpoint` records a dataset other than `data` (the
// manifest of --data=`data_dir`): kFailedPrecondition naming both.
Status CheckResumeData(const CheckpointManifest& checkpoint, const DatasetManifest& data,
                       const std::string& data_dir);

// The checkpoint to resume from (options.checkpoint.resume), or nullopt to
// start afresh (no checkpoint yet: logged). Errors for a checkpoint this job
// cannot continue. A resume continues the checkpoint's model: *spec takes
// its tables' initializers (how rows not created yet start), so that a
// checkpoint from before a change of the default initialisation resumes.
StatusOr<std::optional<models::FoundCheckpoint>> FindResumeCheckpoint(
    const CheckpointOptions& checkpoint, const WorkerOptions& workers, models::ModelSpec* spec,
    int num_workers);
// The same for checkpoint folder `dir` that another rank of the job found
// and verified: its files' bytes are not read again.
StatusOr<std::optional<models::FoundCheckpoint>> ResumeCheckpointAt(const std::string& dir,
                                                                    const WorkerOptions& workers,
                                                                    models::ModelSpec* spec,
                                                                    int num_workers);

// The job's spec: its kind's, with the tables' admission and expiry
// (options.tables: train/table_policy.h).
StatusOr<models::ModelSpec> JobSpec(const ModelKind& kind, const TrainOptions& options);

// Where a job's parameters start: a checkpoint of this job to continue
// (--resume), a warm start from an earlier job (--init_from:
// train/warm_start.h), or neither (from scratch).
struct JobStart {
  std::optional<models::FoundCheckpoint> resume;
  std::optional<WarmStart> warm;
  // What OpenJobStart opens the same start from on another rank ("" =
  // from scratch).
  std::string Ref() const;
};
// The job's start (logged). --resume as FindResumeCheckpoint; with
// --init_from too, a checkpoint in --checkpoint_dir continues only if it was
// trained on this job's --data (the warm-started job was interrupted),
// otherwise (none, or the earlier day's in the same folder) the job warm
// starts. *spec takes the start's table initializers. Errors for a start
// this job cannot take.
StatusOr<JobStart> FindJobStart(const TrainOptions& options, models::ModelSpec* spec,
                                int num_workers);
// The start another rank of the job found (JobStart::Ref), opened without
// reading its files' bytes again.
StatusOr<JobStart> OpenJobStart(const std::string& ref, const TrainOptions& options,
                                models::ModelSpec* spec, int num_workers);
// The job's normalisers, from the ones fitted on its data: a resumed job
// keeps its checkpoint's (a warm-started job's are merged ones), a warm
// start merges them with its model's (MergeQuantiles).
StatusOr<std::vector<QuantileInfo>> JobQuantiles(const JobStart& start,
                                                 std::vector<QuantileInfo> fitted);

// Creates one server's storage (spill folder spill_root/server-<i>).
// With `start`, the storage holds its rows (a checkpoint's or a warm
// start's) for server `server` of `num_servers`.
StatusOr<std::unique_ptr<ps::ServerStorage>> CreateServerStorage(
    const models::ModelSpec& spec, const ServerOptions& options, const std::string& spill_root,
    int server, const JobStart* start = nullptr, int num_servers = 1);

// One parameter server: storage, request handler and transport.
struct ServerProcess {
  std::unique_ptr<ps::ServerStorage> storage;
  std::unique_ptr<ps::PsService> service;
  std::unique_ptr<net::Server> server;
  std::string endpoint;  // what workers dial
};
// Creates and starts server `index` of a job with `num_workers` workers,
// bound to options.bind_host on a free port, answering only clients with
// `keys` (empty: anyone).
StatusOr<ServerProcess> StartServer(const models::ModelSpec& spec, const ServerOptions& options,
                                    const net::DataPlaneKeys& keys, const std::string& spill_root,
                                    int index, int num_workers, const JobStart* start = nullptr,
                                    int num_servers = 1);

// The job's data-plane keys: fresh ones, or none for inproc servers or
// --insecure_data_plane (logged as such). Called once per job (under mpirun
// by rank 0, which hands them to every rank).
StatusOr<net::DataPlaneKeys> JobKeys(const ServerOptions& options);

// Runs worker `worker` of `num_workers` against the servers at `servers_at`
// until its share is done, the coordinator stops it, or *signal: reports
// progress and pauses through `channel`, and sends its last report, marked
// done, through it in every case (with the error when it failed, even before
// its first step). `resume`: the checkpoint's progress of this worker.
// Returns the worker's status.
// The data must be prepared for workers (ModelKind::PrepareWorkers).
Status RunWorkerRole(const ModelKind& kind, const models::ModelSpec& spec, const JobData& data,
                     const WorkerOptions& options, const net::ServerSet& servers_at, int worker,
                     int num_workers, const WorkerProgress* resume, WorkerChannel* channel,
                     const std::atomic<bool>* signal);

// What the coordinator of a job of `num_servers` servers at `servers_at` and
// `num_workers` workers is told (evaluation through the servers), starting
// at `start`. The references must outlive the job.
CoordinatedJob CoordinatedJobOf(const ModelKind& kind, const TrainOptions& options,
                                const models::ModelSpec& spec, const JobData& data,
                                const net::ServerSet& servers_at, int num_servers, int num_workers,
                                const JobStart& start);

// Marks `progress` as worker `worker`'s last report: done, not paused, with
// `status`'s error when it failed.
void MarkLastReport(int worker, const Status& status, WorkerProgress* progress);

// Evaluates through the servers at `servers_at` (evaluation options `eval`).
StatusOr<nlohmann::json> EvaluateThroughServers(const ModelKind& kind,
                                                const models::ModelSpec& spec, const JobData& data,
                                                const net::ServerSet& servers_at,
                                                const models::EvalOptions& eval);

}  // namespace vrec::train
