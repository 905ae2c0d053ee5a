// What a training job is asked to do, split by the role that reads it:
// the parameter servers (ServerOptions), the workers (WorkerOptions), the
// coordinator (CoordinatorOptions) and checkpoints (CheckpointOptions).
// TrainOptions holds one of each plus what every role shares (the data, the
// model folder, the model's kind and its spec options). `vrec train` fills
// it from flags (src/cli/train_command.cc); only main reads flags.
#pragma once

#include <cstdint>
#include <string>

#include "models/candidate_spec.h"
#include "models/checkpoint.h"
#include "models/eval_options.h"
#include "models/ranking_spec.h"
#include "train/early_stopping.h"
#include "train/table_policy.h"

namespace vrec::train {

// The parameter servers.
struct ServerOptions {
  int servers = 1;            // TrainLocal only; under mpirun the launch decides
  uint64_t memory_bytes = 0;  // per server process; 0 = unlimited
  std::string spill_dir;      // RocksDB folders (default: model_dir/spill or /tmp)
  int threads = 1;            // request threads per server
  // Address servers bind and workers dial: "inproc" (servers in this
  // process, no copies: TrainLocal's default), an IP or host name, or "*"
  // (every interface; mpirun across machines). Empty: TrainLocal uses
  // inproc, TrainMpi 127.0.0.1.
  std::string bind_host;
  // Instead of bind_host: each server binds, and advertises, its own
  // machine's address in this network, an IPv4 block ("10.1.0.0/16") or an
  // interface ("eth0"), or a comma list of them (net::AddressInNetworks).
  std::string bind_network;
  // No authentication on the data plane (ZeroMQ CURVE: net/curve_auth.h):
  // anyone who can reach a server's port can read and change the model.
  // For trusted networks only.
  bool insecure_data_plane = false;
};

// The workers: how much each trains and how.
struct WorkerOptions {
  int workers = 1;  // TrainLocal only; under mpirun the launch decides
  int batch_size = 512;
  uint64_t max_examples = 0;   // all workers together; 0 = no limit
  int epochs = 1;              // 0 = no limit
  double max_seconds = 0;      // 0 = no limit
  int64_t max_staleness = -1;  // steps; -1 = unbounded (asynchronous)
  // Workers simulate the dataset's world instead of reading its training
  // files (generated datasets; data/generator_source.h).
  bool stream = false;
  // The validation slice (data/validation_split.h): each of up to this many
  // users' last training example is held out of training and judges it
  // (ValidationOptions). 0 = none: every training example is trained on.
  uint64_t validation_users = 0;
  // Candidate model: the task is to recommend unwatched videos; each
  // example's watched videos are left out of its softmax's negatives
  // (CandidateWorkerOptions::exclude_watched).
  bool exclude_watched = false;
  // Diagnostics: worker w appends "<worker> <step> <example id>..." per
  // trained step to DIR/worker-<w>.log.
  std::string example_log_dir;
};

// Early stopping on the validation slice (WorkerOptions::validation_users):
// the coordinator pauses the workers every `every` (default: once per epoch)
// and at the end, scores the model on the slice, saves it into the model
// folder when it beats every earlier score, and stops the job as `stopping`
// says (train/early_stopping.h: enough validations without a better score,
// and better than popularity).
struct ValidationOptions {
  // A key of the kind's validation result ("recall@50", "map" ...); higher
  // is better.
  std::string metric = "recall@50";
  StoppingRule stopping;          // patience 0 = never stop early (the best is still kept)
  models::CheckpointEvery every;  // examples or seconds; disabled = once per epoch
};

// The coordinator: progress, metrics, evaluation.
struct CoordinatorOptions {
  double progress_seconds = 5;           // between progress lines
  std::string metrics_file;              // JSONL; default model_dir/metrics.jsonl
  double eval_every_seconds = 0;         // 0 = evaluate at the end only
  double ps_stats_seconds = 30;          // server stats lines; 0 = none
  uint64_t eval_examples_during = 2000;  // test examples per periodic evaluation
  models::EvalOptions eval;              // the final evaluation
  bool final_eval = true;
  double poll_seconds = 0.02;  // how often the coordinator looks at its control plane
  // A worker that has sent nothing for this long (it reports about every
  // second) is taken as frozen or lost: the job fails naming it, without
  // waiting for the others (Coordinator::abandoned_workers). Under mpirun
  // also the liveness pings' timeout (train/liveness.h). 0 = wait forever.
  double failure_timeout_seconds = 0;
  // Under mpirun with max_seconds: every rank ends by max_seconds plus this.
  double max_seconds_grace = 300;
  ValidationOptions validation;
};

// Checkpoints (checkpoint.h, docs/checkpoints.md).
struct CheckpointOptions {
  std::string dir;                // empty = none
  models::CheckpointEvery every;  // also one at the end of a run with a dir
  int keep = 3;                   // complete checkpoints kept
  bool resume = false;            // continue from the newest complete checkpoint in dir
  // Warm start (train/warm_start.h): a checkpoint (folder or root), a
  // trained-model folder or a serving bundle whose parameters this job
  // starts from, on new data. With `resume`, a checkpoint of this job's
  // dataset in dir wins (the warm-started job was interrupted).
  std::string init_from;
};

struct TrainOptions {
  std::string data_dir;
  std::string model_dir;                       // empty = do not save
  std::string model = models::kCandidateKind;  // the model kind's name (model_kind.h)
  models::CandidateSpecOptions candidate;
  models::RankingSpecOptions ranking;
  ServerOptions server;
  WorkerOptions worker;
  CoordinatorOptions coordinator;
  CheckpointOptions checkpoint;
  // Admission and expiry of the sparse tables (train/table_policy.h).
  TablePolicies tables;
};

}  // namespace vrec::train
