// A training job: parameter servers, workers and a coordinator.
//
// Roles (docs/training.md):
//   coordinator  loads the dataset's manifest and corpus, follows the
//                workers' progress (a line every progress_seconds, a JSONL
//                metrics file), evaluates on held-out examples, decides when
//                to stop, and writes the model folder's manifest last;
//   server i     holds every table's rows for its virtual slots
//                (ps::ServerStorage behind a ps::PsService);
//   worker w     trains on its slice of the data (CandidateWorker).
// TrainLocal runs every role in this process (servers on loopback ports,
// workers on threads). Under mpirun (mpi_job.h) each rank takes one role and
// MPI carries the control plane; the data plane is ZeroMQ in both.
//
// Stopping: at max_examples (all workers together), after `epochs`, after
// max_seconds, or when *stop becomes true (SIGINT/SIGTERM): workers finish
// their step, the servers save their rows into model_dir, and the
// coordinator writes model.pb. Training without model_dir saves nothing.
//
// Thread safety: one job per process at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/transport.h"
#include "nlohmann/json.hpp"
#include "ps/ps_server.h"
#include "ps/server_storage.h"
#include "train/candidate_worker.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/model_spec.h"
#include "train/ranking.h"
#include "train/stream_source.h"

namespace vrec::train {

struct TrainOptions {
  std::string data_dir;
  std::string model_dir;            // empty = do not save
  std::string model = "candidate";  // or "ranking"
  int servers = 1;                  // TrainLocal only; under mpirun the launch decides
  int workers = 1;
  CandidateSpecOptions candidate;
  RankingSpecOptions ranking;
  int batch_size = 512;
  uint64_t max_examples = 0;  // all workers together; 0 = no limit
  int epochs = 1;             // 0 = no limit
  double max_seconds = 0;     // 0 = no limit
  int64_t max_staleness = -1;
  // Workers simulate the dataset's world instead of reading its training
  // files (generated datasets; stream_source.h).
  bool stream = false;
  // Servers.
  uint64_t server_memory_bytes = 0;  // per server process; 0 = unlimited
  std::string spill_dir;             // RocksDB folders (default: model_dir/spill or /tmp)
  int server_threads = 1;
  // Address servers bind and workers dial: "inproc" (servers in this
  // process, no copies: TrainLocal's default), an IP or host name, or "*"
  // (every interface; mpirun across machines). Empty: TrainLocal uses
  // inproc, TrainMpi 127.0.0.1.
  std::string bind_host;
  // Coordinator.
  double progress_seconds = 5;
  std::string metrics_file;              // JSONL; default model_dir/metrics.jsonl
  double eval_every_seconds = 0;         // 0 = evaluate at the end only
  double ps_stats_seconds = 30;          // server stats lines; 0 = none
  uint64_t eval_examples_during = 2000;  // test examples per periodic evaluation
  CandidateEvalOptions eval;             // the final evaluation
  bool final_eval = true;
  // Checkpoints (checkpoint.h, docs/checkpoints.md).
  std::string checkpoint_dir;        // empty = none
  CheckpointEvery checkpoint_every;  // also one at the end of a run with checkpoint_dir
  int keep_checkpoints = 3;
  bool resume = false;  // continue from the newest complete checkpoint in checkpoint_dir
  // Diagnostics: worker w appends "<worker> <step> <example id>..." per
  // trained step to DIR/worker-<w>.log.
  std::string example_log_dir;
};

// What a worker needs besides its data to take part in checkpoints.
struct WorkerHooks {
  const WorkerProgress* resume = nullptr;  // the checkpoint's state of this worker
  std::function<bool()> pause_requested;
  std::function<Status(const WorkerProgress&)> paused;
};

// Everything a job needs to know about its data, loaded once.
struct JobData {
  DatasetManifest manifest;
  Corpus corpus;                                // candidate model
  std::vector<QuantileInfo> quantiles;          // ranking model: fitted on the training data
  uint64_t train_records = 0;                   // from the manifest
  std::shared_ptr<const GeneratedWorld> world;  // with options.stream
};
// Reads what `spec`'s model needs: the corpus and label counts (candidate),
// or the continuous features' quantiles, fitted in one pass (ranking).
StatusOr<JobData> LoadJobData(const TrainOptions& options, const ModelSpec& spec);

// The spec of options.model. kInvalidArgument for an unknown model.
StatusOr<ModelSpec> BuildSpec(const TrainOptions& options);

// The sampler of the candidate model over the corpus.
StatusOr<model::NegativeSampler> BuildSampler(const ModelSpec& spec, const Corpus& corpus);

// Per-worker example limit: the total split as evenly as possible.
uint64_t WorkerShare(uint64_t total, int worker, int num_workers);

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
// bound to options.bind_host on a free port.
StatusOr<ServerProcess> StartServer(const ModelSpec& spec, const TrainOptions& options, int index,
                                    int num_workers, const FoundCheckpoint* restore = nullptr,
                                    int num_servers = 1);

// Runs worker `worker` of `num_workers` against the servers at `endpoints`
// until its share is done or *stop; report() receives its progress.
Status RunWorker(const ModelSpec& spec, const JobData& data, const model::NegativeSampler& sampler,
                 const TrainOptions& options, const std::vector<std::string>& endpoints, int worker,
                 int num_workers, const std::atomic<bool>* stop,
                 const std::function<void(const WorkerProgress&)>& report,
                 const WorkerHooks& hooks = {});

// Evaluates through the servers at `endpoints` (evaluation options `eval`).
StatusOr<nlohmann::json> EvaluateThroughServers(const ModelSpec& spec, const JobData& data,
                                                const TrainOptions& options,
                                                const std::vector<std::string>& endpoints,
                                                const CandidateEvalOptions& eval);

// Follows the workers' progress: prints progress lines to stderr and appends
// records to the metrics file.
// Resumed from a checkpoint, it carries on from the checkpoint's progress:
// examples, steps and time continue, and the metrics file keeps only the
// records up to the checkpoint before new ones are appended.
class ProgressTracker {
 public:
  ProgressTracker(const TrainOptions& options, int num_workers, uint64_t train_records,
                  const CheckpointManifest* resumed = nullptr);
  const WorkerProgress& worker(int w) const { return workers_[w]; }
  void Update(const WorkerProgress& p);
  // Prints a line if progress_seconds have passed since the last (or if
  // `force`), and appends a metrics record.
  void MaybeReport(bool force = false);
  // Appends {"time_s", "eval": ...} to the metrics file.
  void RecordEval(const nlohmann::json& eval);
  // Appends {"time_s", "ps": [per server: [per table stats]]}.
  void RecordPsStats(const nlohmann::json& stats);
  bool AllDone() const;
  uint64_t examples() const;
  uint64_t steps() const;
  double seconds() const;
  double RecentLoss() const { return recent_loss_; }

 private:
  TrainOptions options_;
  uint64_t target_examples_ = 0;  // 0 = unknown
  std::vector<WorkerProgress> workers_;
  std::chrono::steady_clock::time_point start_, last_;
  double seconds_before_ = 0;  // training time before the checkpoint resumed from
  uint64_t last_examples_ = 0, last_steps_ = 0;
  double last_loss_sum_ = 0;
  std::vector<uint64_t> last_worker_examples_;
  double recent_loss_ = 0;
  std::ofstream metrics_;
};

// When the coordinator takes the next checkpoint, and its sequence number.
class CheckpointSchedule {
 public:
  // `examples`: trained so far (a resumed job's count).
  CheckpointSchedule(const TrainOptions& options, uint64_t examples);
  bool Due(uint64_t examples) const;
  // Records a checkpoint at `examples`; returns its sequence number.
  uint64_t Taken(uint64_t examples);

 private:
  CheckpointEvery every_;
  bool enabled_;
  uint64_t last_examples_;
  std::chrono::steady_clock::time_point last_time_;
  uint64_t sequence_;
};

// Runs the whole job in this process. The last stdout line of `vrec train`
// is the returned JSON summary.
StatusOr<nlohmann::json> TrainLocal(const TrainOptions& options, const std::atomic<bool>* stop);

// One human line for an evaluation result (candidate or ranking).
std::string EvalLine(const nlohmann::json& eval);

// A short evaluation on eval_examples_during held-out examples: a line on
// stderr and a metrics record; a failure is logged, not fatal.
void PeriodicEval(const ModelSpec& spec, const JobData& data, const TrainOptions& options,
                  const std::vector<std::string>& endpoints, ProgressTracker* tracker);

// Asks every server for its table stats (ps::PsClient::Stats), logs one
// line per server (rows in memory and on disk, memory-hit rate, request
// rates since the previous call, hottest keys) and records them in the
// metrics file. *previous carries the last stats between calls. A failure
// is logged, not fatal.
void LogPsStats(const std::vector<std::string>& endpoints, ProgressTracker* tracker,
                nlohmann::json* previous);

// The job's summary line (without "eval" and the saved-model fields).
nlohmann::json JobSummary(const ModelSpec& spec, int servers, int workers,
                          const ProgressTracker& tracker, bool stopped);

// The checkpoint to resume from (options.resume), or nullopt to start
// afresh (no checkpoint yet: logged). Errors for a checkpoint this job
// cannot continue.
StatusOr<std::optional<FoundCheckpoint>> FindResumeCheckpoint(const TrainOptions& options,
                                                              const ModelSpec& spec,
                                                              int num_workers);

// The coordinator's last step of checkpoint `sequence`, once every server
// has written its part: the manifest (the model so far, every worker's state,
// paused or done) is committed and pruned (CommitCheckpoint), and a [ckpt]
// line goes to stderr.
Status CommitJobCheckpoint(const ModelSpec& spec, const TrainOptions& options, int num_servers,
                           uint64_t sequence, const std::vector<WorkerProgress>& workers,
                           const std::vector<ServerState>& servers, double seconds);

// The model folder's manifest for a finished job.
TrainedModel MakeTrainedModel(const ModelSpec& spec, const TrainOptions& options, int num_servers,
                              uint64_t examples, uint64_t steps, double seconds);

}  // namespace vrec::train
