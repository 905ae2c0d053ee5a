#include "train/coordinator.h"

#include <cmath>
#include <iostream>
#include <limits>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "glog/logging.h"
#include "models/saved_model.h"
#include "ps/slot_router.h"

namespace vrec::train {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

ProgressTrackerOptions TrackerOptions(const CoordinatedJob& job) {
  ProgressTrackerOptions t;
  t.progress_seconds = job.coordinator.progress_seconds;
  t.metrics_file = job.coordinator.metrics_file;
  if (t.metrics_file.empty() && !job.model_dir.empty()) {
    t.metrics_file = JoinPath(job.model_dir, "metrics.jsonl");
  }
  if (job.workers.max_examples > 0) {
    t.target_examples = job.workers.max_examples;
  } else if (job.workers.epochs > 0) {
    t.target_examples = job.train_records * static_cast<uint64_t>(job.workers.epochs);
  }
  t.max_seconds = job.workers.max_seconds;
  return t;
}

}  // namespace

CheckpointSchedule::CheckpointSchedule(const CheckpointOptions& options, uint64_t examples)
    : every_(options.every),
      enabled_(!options.dir.empty() && options.every.enabled()),
      last_examples_(examples),
      last_time_(Clock::now()),
      sequence_(options.dir.empty() ? 1 : models::NextCheckpointSequence(options.dir)) {}

bool CheckpointSchedule::Due(uint64_t examples) const {
  if (!enabled_) return false;
  return (every_.examples > 0 && examples >= last_examples_ + every_.examples) ||
         (every_.seconds > 0 && Since(last_time_) >= every_.seconds);
}

uint64_t CheckpointSchedule::Taken(uint64_t examples) {
  last_examples_ = examples;
  last_time_ = Clock::now();
  return sequence_++;
}

Coordinator::Coordinator(CoordinatedJob job, ControlPlane* plane)
    : job_(std::move(job)),
      plane_(plane),
      tracker_(TrackerOptions(job_), job_.num_workers, job_.resumed),
      schedule_(job_.checkpoint, tracker_.examples()),
      last_heard_(job_.num_workers, Clock::now()),
      paused_(job_.num_workers),
      last_validation_(Clock::now()) {
  if (job_.resumed != nullptr) validation_ = job_.resumed->validation();
}

void Coordinator::Fail(const Status& status) {
  if (status.ok()) return;
  LOG(ERROR) << status;
  if (first_error_.ok()) first_error_ = status;
  if (!stop_sent_) {
    plane_->StopWorkers();
    stop_sent_ = true;
  }
}

void Coordinator::Take(const WorkerProgress& report) {
  const int w = report.worker();
  if (w < 0 || w >= job_.num_workers || tracker_.worker(w).done()) return;
  last_heard_[w] = Clock::now();
  tracker_.Update(report);
  if (report.paused()) {
    paused_[w] = report;
    paused_[w]->set_paused(false);
  }
  if (report.done() && (report.error_code() != 0 || !report.error().empty())) {
    const auto code = report.error_code() != 0 ? static_cast<absl::StatusCode>(report.error_code())
                                               : absl::StatusCode::kUnknown;
    Fail(Status(code, absl::StrCat("worker ", w, ": ", report.error())));
  }
}

void Coordinator::CheckLiveness() {
  if (job_.peers_lost) {
    if (Status lost = job_.peers_lost(); !lost.ok()) {
      Fail(Status(lost.code(), absl::StrCat(lost.message(),
                                            ". The job stops; resume from the last checkpoint")));
      abandoned_ = true;
      return;
    }
  }
  const double timeout = job_.coordinator.failure_timeout_seconds;
  if (timeout <= 0) return;
  // With liveness pings a frozen worker process is found by them, and a
  // worker that waits on a frozen server falls silent too: the server must
  // be blamed, not it. So a silent worker is blamed only after twice the
  // timeout: its process answers, its training does not go on.
  const bool watched = static_cast<bool>(job_.peers_lost);
  const double blame_after = watched ? 2 * timeout : timeout;
  for (int w = 0; w < job_.num_workers; ++w) {
    if (tracker_.worker(w).done() || paused_[w]) continue;  // a paused worker waits for us
    const double silent = Since(last_heard_[w]);
    if (silent < blame_after) continue;
    Fail(absl::DeadlineExceededError(absl::StrFormat(
        watched ? "worker %d sent nothing for %.0f s (it reports about every second) while its "
                  "process still answers: its training is stuck. The job stops without it; "
                  "resume from the last checkpoint"
                : "worker %d sent nothing for %.0f s (it reports about every second): frozen, or "
                  "its machine lost? The job stops without it; resume from the last checkpoint",
        w, silent)));
    abandoned_ = true;
    return;
  }
}

Status Coordinator::WriteCheckpoint(const std::vector<WorkerProgress>& workers) {
  uint64_t examples = 0, steps = 0;
  for (const auto& w : workers) {
    examples += w.examples();
    steps += w.steps();
  }
  const uint64_t sequence = schedule_.Taken(examples);
  const std::string dir = JoinPath(job_.checkpoint.dir, models::CheckpointName(sequence));
  VREC_ASSIGN_OR_RETURN(std::vector<ServerState> servers, plane_->CheckpointServers(dir));
  uint64_t rows = 0;
  nlohmann::json tables = nlohmann::json::object();
  for (const auto& s : servers) {
    rows += s.rows();
    for (const TableState& t : s.tables()) {
      nlohmann::json& entry = tables[t.table()];
      if (entry.is_null()) entry = {{"rows", uint64_t{0}}, {"step", uint64_t{0}}};
      entry["rows"] = entry["rows"].get<uint64_t>() + t.rows();
      entry["step"] = std::max(entry["step"].get<uint64_t>(), t.step());
    }
  }
  CheckpointManifest m;
  m.set_format_version(models::kCheckpointFormatVersion);
  m.set_sequence(sequence);
  *m.mutable_model() = ModelManifest(examples, steps);
  m.mutable_model()->clear_table_files();
  m.set_num_servers(static_cast<uint32_t>(job_.num_servers));
  m.set_slot_router(
      ps::SlotRouter::Contiguous(static_cast<uint32_t>(job_.num_servers)).value().Serialize());
  for (int s = 0; s < job_.num_servers; ++s) {
    m.add_server_dirs(models::ServerCheckpointDir(s));
    m.add_server_states(models::ServerStateFile(s));
  }
  for (const auto& w : workers) {
    WorkerProgress* kept = m.add_workers();
    *kept = w;
    kept->clear_paused();
    kept->clear_error_code();
    kept->clear_error();
  }
  m.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  m.set_batch_size(job_.workers.batch_size);
  m.set_epochs(job_.workers.epochs);
  m.set_max_examples(job_.workers.max_examples);
  m.set_stream(job_.workers.stream);
  m.set_rows(rows);
  m.set_validation_users(job_.workers.validation_users);
  m.set_dataset_fingerprint(job_.dataset_fingerprint);
  *m.mutable_validation() = validation_;
  VREC_ASSIGN_OR_RETURN(std::string written,
                        models::CommitCheckpoint(job_.checkpoint.dir, m, job_.checkpoint.keep));
  std::cerr << absl::StrFormat("[ckpt]  %s: %d examples, %d rows", written, examples, rows)
            << std::endl;
  checkpoint_tables_ = std::move(tables);
  return absl::OkStatus();
}

bool Coordinator::ValidationDue() const {
  if (!job_.validate) return false;
  const ValidationOptions& v = job_.coordinator.validation;
  const uint64_t examples = tracker_.examples();
  if (v.every.enabled()) {
    return (v.every.examples > 0 && examples >= validation_.last_examples() + v.every.examples) ||
           (v.every.seconds > 0 && Since(last_validation_) >= v.every.seconds);
  }
  // Once per epoch: as soon as the slowest running worker has started a
  // pass that no validation has seen (workers report when they do).
  return SlowestEpoch() > validation_.epoch();
}

int Coordinator::SlowestEpoch() const {
  int slowest = -1;
  for (int w = 0; w < job_.num_workers; ++w) {
    const WorkerProgress& p = tracker_.worker(w);
    if (p.done()) continue;
    const int epoch = p.position().epoch();
    if (slowest < 0 || epoch < slowest) slowest = epoch;
  }
  return slowest;  // -1: every worker done
}

void Coordinator::StepPause() {
  if (!pausing_) {
    // Stopping (an error or a signal): the final checkpoint follows anyway.
    if (!first_error_.ok() || stop_sent_) return;
    checkpoint_due_ = schedule_.Due(tracker_.examples());
    validation_due_ = ValidationDue();
    if (!checkpoint_due_ && !validation_due_) return;
    plane_->RequestPause();
    pausing_ = true;
  }
  // Every worker paused or done: validate and write the checkpoint (unless
  // the job is failing), then let them go on.
  std::vector<WorkerProgress> states(job_.num_workers);
  uint64_t examples = 0, steps = 0;
  for (int w = 0; w < job_.num_workers; ++w) {
    if (paused_[w]) {
      states[w] = *paused_[w];
    } else if (tracker_.worker(w).done()) {
      states[w] = tracker_.worker(w);
    } else {
      return;  // still waiting for this one
    }
    examples += states[w].examples();
    steps += states[w].steps();
  }
  // Validation first: the checkpoint keeps where early stopping stands.
  if (validation_due_ && first_error_.ok()) Fail(Validate(examples, steps));
  if (checkpoint_due_ && first_error_.ok()) Fail(WriteCheckpoint(states));
  plane_->Release();
  // Time spent paused (the servers writing) is no worker's silence.
  std::fill(last_heard_.begin(), last_heard_.end(), Clock::now());
  for (auto& p : paused_) p.reset();
  pausing_ = false;
}

double Coordinator::EpochsOf(uint64_t examples) const {
  return static_cast<double>(examples) /
         static_cast<double>(std::max<uint64_t>(1, job_.train_records));
}

TrainedModel Coordinator::ModelManifest(uint64_t examples, uint64_t steps) const {
  TrainedModel m = models::MakeTrainedModel(*job_.spec, job_.data_dir, job_.num_servers, examples,
                                            steps, tracker_.seconds());
  m.set_warm_start(job_.warm_start);
  m.set_examples_before(job_.examples_before);
  return m;
}

StatusOr<uint64_t> Coordinator::SaveModel(uint64_t examples, uint64_t steps) {
  VREC_ASSIGN_OR_RETURN(uint64_t rows, plane_->SaveServers(job_.model_dir));
  VREC_RETURN_IF_ERROR(models::WriteTrainedModel(job_.model_dir, ModelManifest(examples, steps)));
  return rows;
}

Status Coordinator::Validate(uint64_t examples, uint64_t steps) {
  const ValidationOptions& vo = job_.coordinator.validation;
  VREC_ASSIGN_OR_RETURN(nlohmann::json v, job_.validate(job_.coordinator.eval));
  if (!v.contains(vo.metric) || !v[vo.metric].is_number()) {
    std::string keys;
    for (const auto& [key, value] : v.items()) {
      if (value.is_number() && key != "examples")
        absl::StrAppend(&keys, keys.empty() ? "" : ", ", key);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--validation_metric=", vo.metric,
                     ": the validation has no such figure; use one of ", keys));
  }
  const double score = v[vo.metric].get<double>();
  // Popularity's score on the same slice: the floor early stopping waits for.
  double baseline = std::numeric_limits<double>::quiet_NaN();
  if (v.contains("popularity") && v["popularity"].contains(vo.metric) &&
      v["popularity"][vo.metric].is_number()) {
    baseline = v["popularity"][vo.metric].get<double>();
  }
  const bool better = validation_.count() == 0 || score > validation_.best();
  validation_.set_count(validation_.count() + 1);
  validation_.set_last_examples(examples);
  validation_.set_epoch(std::max(validation_.epoch(), SlowestEpoch()));
  last_validation_ = Clock::now();
  if (better) {
    validation_.set_best(score);
    validation_.set_best_examples(examples);
    validation_.set_since_best(0);
    if (!job_.model_dir.empty()) {
      VREC_ASSIGN_OR_RETURN(saved_rows_, SaveModel(examples, steps));
      validation_.set_best_saved(true);
    }
  } else {
    validation_.set_since_best(validation_.since_best() + 1);
  }
  const double smoothed = RecordSmoothed(vo.stopping, score, &validation_);
  const StopDecision decision = DecideStop(vo.stopping, validation_, baseline);
  const bool smoothing = vo.stopping.window > 1;
  const double epoch = EpochsOf(examples);
  const double best_epoch = EpochsOf(validation_.best_examples());
  const uint64_t n = v.value("examples", uint64_t{0});
  std::string line =
      absl::StrFormat("[valid] epoch %.2f: %s %.4f on %d examples", epoch, vo.metric, score, n);
  // A recall is a proportion: its standard error says how much of a change
  // between validations is noise.
  if (absl::StartsWith(vo.metric, "recall@") && n > 0) {
    absl::StrAppend(&line, absl::StrFormat(" (+-%.4f)", std::sqrt(score * (1 - score) / n)));
  }
  if (better) {
    absl::StrAppend(&line, job_.model_dir.empty() ? "  best so far"
                                                  : "  best so far: saved to the model folder");
  } else {
    absl::StrAppend(&line,
                    absl::StrFormat("  best %.4f at epoch %.2f", validation_.best(), best_epoch));
  }
  if (smoothing) {
    absl::StrAppend(&line, absl::StrFormat("; mean of the last %d %.4f",
                                           validation_.recent_scores_size(), smoothed));
  }
  if (validation_.since_best_smoothed() > 0) {
    absl::StrAppend(&line, ", no better", smoothing ? " mean" : "", " for ",
                    validation_.since_best_smoothed());
    if (vo.stopping.patience > 0) absl::StrAppend(&line, " of ", decision.patience);
  }
  if (decision.below_baseline) {
    absl::StrAppend(&line, absl::StrFormat("; popularity %.4f not passed yet", baseline));
  }
  std::cerr << line << std::endl;
  nlohmann::json record = {{"epoch", epoch},
                           {"metric", vo.metric},
                           {"score", score},
                           {"best", validation_.best()},
                           {"best_epoch", best_epoch},
                           {"improved", better},
                           {"smoothed", smoothed},
                           {"patience", decision.patience},
                           {"figures", v}};
  if (!std::isnan(baseline)) record["popularity"] = baseline;
  tracker_.RecordValidation(record);
  if (decision.stop && early_stop_.empty()) {
    if (smoothing) {
      early_stop_ = absl::StrFormat(
          "validation %s, the mean of the last %d, has not improved for %d validations (best "
          "mean %.4f; the model kept scored %.4f at epoch %.2f)",
          vo.metric, vo.stopping.window, validation_.since_best_smoothed(),
          validation_.best_smoothed(), validation_.best(), best_epoch);
    } else {
      early_stop_ = absl::StrFormat(
          "validation %s has not improved for %d validations (best %.4f at epoch %.2f)", vo.metric,
          validation_.since_best_smoothed(), validation_.best(), best_epoch);
    }
    if (!std::isnan(baseline)) {
      absl::StrAppend(&early_stop_, absl::StrFormat("; popularity %.4f", baseline));
    }
    std::cerr << "[valid] stopping: " << early_stop_ << std::endl;
    if (!stop_sent_) {
      plane_->StopWorkers();
      stop_sent_ = true;
    }
  }
  return absl::OkStatus();
}

nlohmann::json Coordinator::ValidationSummary() const {
  nlohmann::json out = {{"metric", job_.coordinator.validation.metric},
                        {"examples", job_.validation_examples},
                        {"validations", validation_.count()},
                        {"best", validation_.best()},
                        {"best_epoch", EpochsOf(validation_.best_examples())},
                        {"best_examples", validation_.best_examples()},
                        {"stopped_early", !early_stop_.empty()}};
  if (!early_stop_.empty()) out["reason"] = early_stop_;
  return out;
}

void Coordinator::PeriodicEval() {
  models::EvalOptions eo = job_.coordinator.eval;
  eo.max_examples = job_.coordinator.eval_examples_during;
  eo.item_knn = false;  // a short look: the baselines come with the final evaluation
  StatusOr<nlohmann::json> eval = job_.evaluate(eo);
  if (!eval.ok()) {  // a short look during training: not fatal
    LOG(WARNING) << "periodic evaluation failed: " << eval.status();
    return;
  }
  RecordEval(*eval);
}

void Coordinator::RecordEval(const nlohmann::json& eval) {
  tracker_.RecordEval(eval);
  std::cerr << (job_.eval_line ? job_.eval_line(eval) : eval.dump()) << std::endl;
}

StatusOr<nlohmann::json> Coordinator::Run(const std::atomic<bool>* stop) {
  auto last_eval = Clock::now();
  auto last_stats = last_eval;
  nlohmann::json previous_stats;
  const CoordinatorOptions& co = job_.coordinator;
  while (true) {
    for (const WorkerProgress& report : plane_->Poll()) Take(report);
    if (tracker_.AllDone()) break;
    CheckLiveness();
    if (abandoned_) break;
    if (stop != nullptr && stop->load() && !stop_sent_) {
      plane_->StopWorkers();
      stop_sent_ = true;
    }
    tracker_.MaybeReport();
    StepPause();
    if (first_error_.ok() && job_.evaluate && co.eval_every_seconds > 0 &&
        Since(last_eval) >= co.eval_every_seconds) {
      PeriodicEval();
      last_eval = Clock::now();
    }
    if (first_error_.ok() && job_.servers_at.size() > 0 && co.ps_stats_seconds > 0 &&
        Since(last_stats) >= co.ps_stats_seconds) {
      LogPsStats(job_.servers_at, &tracker_, &previous_stats);
      last_stats = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(co.poll_seconds));
  }
  if (abandoned_) {  // a silent worker: nothing can be waited for
    tracker_.MaybeReport(/*force=*/true);
    return first_error_;
  }
  // A pause nobody answered any more (every worker finished): nothing to release.
  pausing_ = false;
  if (job_.workers_done) job_.workers_done();
  tracker_.MaybeReport(/*force=*/true);
  VREC_RETURN_IF_ERROR(first_error_);

  // The last validation, of the final state (unless nothing was trained
  // since the one before).
  if (job_.validate && tracker_.examples() > validation_.last_examples()) {
    VREC_RETURN_IF_ERROR(Validate(tracker_.examples(), tracker_.steps()));
  }
  if (!job_.checkpoint.dir.empty()) {  // the final state, to resume from
    VREC_RETURN_IF_ERROR(WriteCheckpoint(tracker_.workers()));
  }
  nlohmann::json summary = {
      {"model", job_.spec->kind},
      {"servers", job_.num_servers},
      {"workers", job_.num_workers},
      {"examples", tracker_.examples()},
      {"steps", tracker_.steps()},
      {"seconds", tracker_.seconds()},
      {"examples_per_s", tracker_.examples() / std::max(1e-9, tracker_.seconds())},
      {"final_loss", tracker_.RecentLoss()},
      {"stopped", stop != nullptr && stop->load()}};
  // The model folder holds the best validated model when validation saved
  // one (then the final state is in it only if it was the best); otherwise
  // the final state.
  const bool kept_best = job_.validate && validation_.best_saved();
  const bool final_is_best = !kept_best || validation_.best_examples() == tracker_.examples();
  if (!job_.model_dir.empty()) {
    if (!kept_best) {
      VREC_ASSIGN_OR_RETURN(saved_rows_, SaveModel(tracker_.examples(), tracker_.steps()));
    }
    if (saved_rows_ > 0) summary["rows_saved"] = saved_rows_;  // unknown after a resume
    summary["model_dir"] = job_.model_dir;
  }
  if (job_.validate) summary["validation"] = ValidationSummary();
  if (!checkpoint_tables_.is_null()) summary["tables"] = checkpoint_tables_;
  if (!job_.warm_start.empty()) {
    summary["warm_start"] = job_.warm_start;
    summary["examples_before"] = job_.examples_before;
  }
  if (co.final_eval && job_.evaluate) {
    StatusOr<nlohmann::json> eval;
    if (final_is_best || !job_.evaluate_saved) {
      eval = job_.evaluate(co.eval);
    } else {
      eval = job_.evaluate_saved(job_.model_dir, co.eval);
    }
    VREC_RETURN_IF_ERROR(eval.status());
    RecordEval(*eval);
    summary["eval"] = *eval;
  }
  return summary;
}

}  // namespace vrec::train
