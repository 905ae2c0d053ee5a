// The coordinator of a training job: one for every launch (TrainLocal's
// threads, TrainMpi's rank 0), written against the ControlPlane only.
//
// Run() follows the workers' reports until every worker is done:
//   - validation (with a validation slice: job.validate), once per epoch or
//     as ValidationOptions::every says: pause every worker, score the model
//     on the slice, save it into the model folder when it beats every earlier
//     score, stop the job when the stopping rule says so
//     (train/early_stopping.h); a last one when the workers are done. The progress line "[valid]
//     ..." and a metrics record {"validation": ...} say each one;
//   - progress lines and metrics records (ProgressTracker);
//   - a checkpoint when the schedule says so: pause every worker, wait until
//     each is paused or done, have every server write its part, commit the
//     manifest (the model so far and every worker's progress), release;
//   - a short evaluation every eval_every_seconds, server stats every
//     ps_stats_seconds;
//   - a stop (SIGINT/SIGTERM via *stop) or a worker's error stops every
//     worker after its step. A pause in progress is still answered by every
//     worker (paused or done) before anything else happens: no worker is
//     left waiting.
// Then the finish: a last progress line; on a worker's, a server's or a
// checkpoint's error, that error (the first one) is returned; otherwise the
// final checkpoint (with a checkpoint folder: the last state, to resume
// from), the model folder (servers' rows, then model.pb; with validation,
// the best model, which may be an earlier one), the final evaluation (of the
// model in the model folder), and the job's summary.
//
// Thread safety: Run is called once, from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/checkpoint.h"
#include "models/model_spec.h"
#include "nlohmann/json.hpp"
#include "train/control_plane.h"
#include "train/progress_tracker.h"
#include "train/train_options.h"

namespace vrec::train {

// When the coordinator takes the next checkpoint, and its sequence number.
class CheckpointSchedule {
 public:
  // `examples`: trained so far (a resumed job's count).
  CheckpointSchedule(const CheckpointOptions& options, uint64_t examples);
  bool Due(uint64_t examples) const;
  // Records a checkpoint at `examples`; returns its sequence number.
  uint64_t Taken(uint64_t examples);

 private:
  models::CheckpointEvery every_;
  bool enabled_;
  uint64_t last_examples_;
  std::chrono::steady_clock::time_point last_time_;
  uint64_t sequence_;
};

// What the coordinator knows of its job.
struct CoordinatedJob {
  const models::ModelSpec* spec = nullptr;
  std::string data_dir;              // recorded in the model's manifest
  uint64_t dataset_fingerprint = 0;  // recorded in checkpoints (data/dataset.h)
  std::string model_dir;             // empty: nothing saved
  CoordinatorOptions coordinator;
  CheckpointOptions checkpoint;
  WorkerOptions workers;  // the limits (progress targets) and what a resume must match
  int num_servers = 1;
  int num_workers = 1;
  uint64_t train_records = 0;                   // one epoch, all workers
  const CheckpointManifest* resumed = nullptr;  // the checkpoint resumed from
  // The model's history before this job, recorded in what it saves
  // (TrainedModel.warm_start, examples_before): a warm start's, or the
  // resumed checkpoint's.
  std::string warm_start;
  uint64_t examples_before = 0;
  // Evaluates the model on the servers; null: no evaluation.
  std::function<StatusOr<nlohmann::json>(const models::EvalOptions&)> evaluate;
  // One human line for an evaluation result; null: the JSON is printed.
  std::function<std::string(const nlohmann::json&)> eval_line;
  // The servers, for their stats lines (no endpoints: none).
  net::ServerSet servers_at;
  // Scores the servers' model on the validation slice (ModelKind::Validate);
  // null: no validation.
  std::function<StatusOr<nlohmann::json>(const models::EvalOptions&)> validate;
  uint64_t validation_examples = 0;  // the slice's size
  // Evaluates the model saved in a model folder (validation kept an earlier
  // model than the servers hold); null: not possible.
  std::function<StatusOr<nlohmann::json>(const std::string&, const models::EvalOptions&)>
      evaluate_saved;
  // Called once, as soon as every worker is done (before the final
  // checkpoint, save and evaluation); null: nothing to do.
  std::function<void()> workers_done;
  // Why a rank of the job is taken as lost (train/liveness.h), or OK; the
  // job then fails at once naming it. Null: ranks are not watched.
  std::function<Status()> peers_lost;
};

class Coordinator {
 public:
  Coordinator(CoordinatedJob job, ControlPlane* plane);

  // Records an error found before Run (e.g. a role could not start): the
  // workers are stopped, Run waits for their last reports and returns the
  // first error recorded.
  void Fail(const Status& status);

  // Runs the job to its end (see above). The summary: model, servers,
  // workers, examples, steps, seconds, examples_per_s, final_loss, stopped,
  // and with a model folder model_dir and rows_saved, with the final
  // evaluation eval, with a checkpoint folder each table's rows and step
  // clock at the final checkpoint (tables), after a warm start warm_start
  // and examples_before.
  StatusOr<nlohmann::json> Run(const std::atomic<bool>* stop);

  const ProgressTracker& tracker() const { return tracker_; }
  // Whether Run gave up on a worker that fell silent (failure_timeout_seconds):
  // its error is returned at once, and that worker may still be running.
  bool abandoned_workers() const { return abandoned_; }

 private:
  // Takes one report from the control plane.
  void Take(const WorkerProgress& report);
  // Pause bookkeeping for one turn of the loop: a checkpoint, a validation
  // or both, when due.
  void StepPause();
  Status WriteCheckpoint(const std::vector<WorkerProgress>& workers);
  // Whether a validation is due at the current progress.
  bool ValidationDue() const;
  // The lowest epoch (0-based) a running worker reads; -1 when all are done.
  int SlowestEpoch() const;
  // Scores the model on the validation slice at `examples` and `steps`
  // (workers paused or done); keeps the best, stops the job when the
  // stopping rule says so. Errors end the job.
  Status Validate(uint64_t examples, uint64_t steps);
  // Saves the servers' model into the model folder.
  StatusOr<uint64_t> SaveModel(uint64_t examples, uint64_t steps);
  // The model's manifest at `examples` and `steps` (table files listed).
  TrainedModel ModelManifest(uint64_t examples, uint64_t steps) const;
  // `examples` in epochs of the job's training data.
  double EpochsOf(uint64_t examples) const;
  // The job's validation summary.
  nlohmann::json ValidationSummary() const;
  // A short evaluation (eval_examples_during); a failure is logged.
  void PeriodicEval();
  // A progress line and a metrics record of an evaluation.
  void RecordEval(const nlohmann::json& eval);

  CoordinatedJob job_;
  ControlPlane* plane_;
  ProgressTracker tracker_;
  CheckpointSchedule schedule_;
  Status first_error_;
  bool stop_sent_ = false;
  bool pausing_ = false;
  bool abandoned_ = false;
  std::vector<std::chrono::steady_clock::time_point> last_heard_;  // per worker
  // Fails the job (abandoning it) if a running worker has been silent for
  // longer than failure_timeout_seconds.
  void CheckLiveness();
  std::vector<std::optional<WorkerProgress>> paused_;     // answers to the pause in progress
  bool checkpoint_due_ = false, validation_due_ = false;  // what the pause is for
  ValidationState validation_;  // early stopping (resumed from the checkpoint)
  std::chrono::steady_clock::time_point last_validation_;
  uint64_t saved_rows_ = 0;  // rows of the model last saved into the model folder
  // Each table's live rows (all servers) and step clock (the largest) at the
  // last checkpoint: {"video": {"rows": n, "step": s}, ...}.
  nlohmann::json checkpoint_tables_;
  std::string early_stop_;   // why validation stopped the job; empty: it did not
};

}  // namespace vrec::train
