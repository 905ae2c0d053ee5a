// The Coordinator over a fake control plane: simulated workers that step,
// pause, finish and fail as a test scripts them, and a log of every call the
// coordinator makes, so the order of pause, checkpoint, release, stop and
// save can be checked without servers, threads or MPI.
#include "train/coordinator.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "models/saved_model.h"
#include "testutil/testutil.h"

namespace vrec::train {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A simulated worker: `steps` steps of `batch` examples, one per Poll, that
// pauses when asked (answering at its next step boundary) and can fail at a
// given step.
struct FakeWorker {
  uint64_t steps = 5;
  uint64_t batch = 10;
  int64_t fail_at_step = -1;    // -1: never
  int64_t freeze_at_step = -1;  // -1: never; else it stops reporting there
  uint64_t epoch_steps = 0;     // steps in one pass over its data; 0: one pass
  // Internal state.
  uint64_t done_steps = 0;
  bool paused = false;
  bool done = false;
};

FakeWorker Worker(uint64_t steps, int64_t fail_at_step = -1) {
  FakeWorker w;
  w.steps = steps;
  w.fail_at_step = fail_at_step;
  return w;
}

class FakeControlPlane : public ControlPlane {
 public:
  explicit FakeControlPlane(std::vector<FakeWorker> workers) : workers_(std::move(workers)) {}

  std::vector<WorkerProgress> Poll() override {
    std::vector<WorkerProgress> out;
    for (size_t w = 0; w < workers_.size(); ++w) {
      FakeWorker& f = workers_[w];
      if (f.done || f.paused) continue;
      if (static_cast<int64_t>(f.done_steps) == f.freeze_at_step) continue;  // silent
      WorkerProgress p = Progress(w);
      if (stop_ || f.done_steps >= f.steps) {
        f.done = true;
        p.set_done(true);
        log_.push_back(absl::StrCat("done ", w));
      } else if (pause_requested_ && !finishing_.count(w)) {
        f.paused = true;
        p.set_paused(true);
        log_.push_back(absl::StrCat("paused ", w));
      } else if (static_cast<int64_t>(f.done_steps) == f.fail_at_step) {
        f.done = true;
        p.set_done(true);
        p.set_error_code(static_cast<int32_t>(absl::StatusCode::kUnavailable));
        p.set_error("parameter server 0 went away");
        log_.push_back(absl::StrCat("failed ", w));
      } else {
        ++f.done_steps;
        p = Progress(w);
      }
      out.push_back(p);
    }
    return out;
  }

  void RequestPause() override {
    log_.push_back("pause");
    pause_requested_ = true;
    if (signal_on_pause_ != nullptr) *signal_on_pause_ = true;
  }
  void Release() override {
    log_.push_back("release");
    pause_requested_ = false;
    for (auto& f : workers_) f.paused = false;
  }
  void StopWorkers() override {
    log_.push_back("stop");
    stop_ = true;
  }
  StatusOr<std::vector<ServerState>> CheckpointServers(const std::string& dir) override {
    log_.push_back("checkpoint");
    // Every worker is paused or done while servers write.
    for (const auto& f : workers_) EXPECT_TRUE(f.paused || f.done);
    if (fail_checkpoint_) return absl::InternalError("server 0: disk full");
    VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, models::ServerCheckpointDir(0))));
    VREC_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, models::ServerStateFile(0)), ""));
    ServerState s;
    s.set_rows(7);
    return std::vector<ServerState>{s};
  }
  StatusOr<uint64_t> SaveServers(const std::string& dir) override {
    log_.push_back("save");
    return 42;
  }

  // Workers that, when a pause is asked, finish instead of pausing (they
  // were on their last step: the pause reaches them after their end).
  void FinishInsteadOfPausing(size_t w) { finishing_.insert(w); }
  void FailCheckpoints() { fail_checkpoint_ = true; }
  // A signal (SIGINT) that arrives as the first pause is asked.
  void SignalOnPause(std::atomic<bool>* signal) { signal_on_pause_ = signal; }
  // The coordinator's calls and the workers' answers, in order (plain
  // progress reports are not logged).
  const std::vector<std::string>& log() const { return log_; }

 private:
  WorkerProgress Progress(size_t w) const {
    WorkerProgress p;
    p.set_worker(static_cast<int32_t>(w));
    p.set_steps(workers_[w].done_steps);
    p.set_examples(workers_[w].done_steps * workers_[w].batch);
    p.set_loss_sum(0.5 * workers_[w].done_steps);
    p.mutable_position()->set_next_index(workers_[w].done_steps);
    if (workers_[w].epoch_steps > 0) {
      p.mutable_position()->set_epoch(
          static_cast<int32_t>(workers_[w].done_steps / workers_[w].epoch_steps));
    }
    return p;
  }

  std::vector<FakeWorker> workers_;
  std::set<size_t> finishing_;
  bool pause_requested_ = false;
  bool stop_ = false;
  bool fail_checkpoint_ = false;
  std::atomic<bool>* signal_on_pause_ = nullptr;
  std::vector<std::string> log_;
};

models::ModelSpec TinySpec() {
  models::ModelSpec spec;
  spec.kind = "candidate";
  return spec;
}

TrainOptions Options(const testing::ScratchDir& dir) {
  TrainOptions o;
  o.data_dir = "/nonexistent/data";
  o.model_dir = dir.File("model");
  o.worker.epochs = 0;
  o.coordinator.progress_seconds = 3600;
  o.coordinator.ps_stats_seconds = 0;
  o.coordinator.poll_seconds = 0;
  o.coordinator.final_eval = false;
  return o;
}

// Options of a job that checkpoints every `every` examples and saves no
// model folder.
TrainOptions Checkpointing(const testing::ScratchDir& dir, uint64_t every) {
  TrainOptions o = Options(dir);
  o.model_dir.clear();
  o.checkpoint.dir = dir.File("ckpt");
  o.checkpoint.every.examples = every;
  return o;
}

CoordinatedJob Job(const models::ModelSpec* spec, const TrainOptions* options, int workers) {
  CoordinatedJob job;
  job.spec = spec;
  job.data_dir = options->data_dir;
  job.model_dir = options->model_dir;
  job.coordinator = options->coordinator;
  job.checkpoint = options->checkpoint;
  job.workers = options->worker;
  job.num_servers = 1;
  job.num_workers = workers;
  return job;
}

TEST(CoordinatorTest, RunsToTheEndAndSavesTheModel) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  ASSERT_OK(MakeDirs(o.model_dir));
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(3), Worker(4)});
  Coordinator c(Job(&spec, &o, 2), &plane);
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, c.Run(nullptr));
  EXPECT_EQ(summary["examples"], 70);
  EXPECT_EQ(summary["steps"], 7);
  EXPECT_EQ(summary["rows_saved"], 42);
  EXPECT_EQ(summary["stopped"], false);
  EXPECT_THAT(plane.log(), ElementsAre("done 0", "done 1", "save"));
  ASSERT_OK_AND_ASSIGN(TrainedModel m, models::ReadTrainedModel(o.model_dir));
  EXPECT_EQ(m.examples_trained(), 70u);
}

TEST(CoordinatorTest, PausesEveryWorkerBeforeTheServersWriteThenCommitsThenReleases) {
  testing::ScratchDir dir;
  TrainOptions o = Checkpointing(dir, 25);
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(5), Worker(5)});
  Coordinator c(Job(&spec, &o, 2), &plane);
  ASSERT_OK(c.Run(nullptr).status());
  // Due at 40 examples (2 steps each) and again at 80: both pause, the
  // servers write, then release; the final checkpoint once all are done.
  EXPECT_THAT(plane.log(), ElementsAre("pause", "paused 0", "paused 1", "checkpoint", "release",
                                       "pause", "paused 0", "paused 1", "checkpoint", "release",
                                       "done 0", "done 1", "checkpoint"));
  ASSERT_OK_AND_ASSIGN(models::FoundCheckpoint found, models::FindCheckpoint(o.checkpoint.dir));
  EXPECT_EQ(found.manifest.model().examples_trained(), 100u);
  ASSERT_EQ(found.manifest.workers_size(), 2);
  for (const WorkerProgress& w : found.manifest.workers()) {
    EXPECT_TRUE(w.done());
    EXPECT_FALSE(w.paused());
    EXPECT_EQ(w.position().next_index(), 5u);
  }
  EXPECT_EQ(found.manifest.rows(), 7u);
}

TEST(CoordinatorTest, ACheckpointAskedDuringTheFinalDrainCountsFinishedWorkers) {
  testing::ScratchDir dir;
  TrainOptions o = Checkpointing(dir, 15);
  const models::ModelSpec spec = TinySpec();
  // The pause is due after the first steps (20 examples). Worker 1 is on
  // its way to its end: it takes its last step and answers with its last
  // report instead of pausing.
  FakeControlPlane plane({Worker(2), Worker(2)});
  plane.FinishInsteadOfPausing(1);
  Coordinator c(Job(&spec, &o, 2), &plane);
  ASSERT_OK(c.Run(nullptr).status());
  EXPECT_THAT(plane.log(), ElementsAre("pause", "paused 0", "done 1", "checkpoint", "release",
                                       "done 0", "checkpoint"));
  // The mid-run checkpoint keeps worker 1 as done, worker 0 as paused.
  const uint64_t first = models::NextCheckpointSequence(o.checkpoint.dir) - 2;
  ASSERT_OK_AND_ASSIGN(
      models::FoundCheckpoint mid,
      models::FindCheckpoint(JoinPath(o.checkpoint.dir, models::CheckpointName(first))));
  EXPECT_FALSE(mid.manifest.workers(0).done());
  EXPECT_EQ(mid.manifest.workers(0).steps(), 1u);
  EXPECT_TRUE(mid.manifest.workers(1).done());
  EXPECT_EQ(mid.manifest.workers(1).steps(), 2u);
  EXPECT_EQ(mid.manifest.model().examples_trained(), 30u);
}

TEST(CoordinatorTest, AWorkersErrorStopsTheOthersAndIsReturnedWithNothingSaved) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  ASSERT_OK(MakeDirs(o.model_dir));
  o.checkpoint.dir = dir.File("ckpt");
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(100), Worker(100, 2)});
  Coordinator c(Job(&spec, &o, 2), &plane);
  StatusOr<nlohmann::json> result = c.Run(nullptr);
  EXPECT_THAT(result,
              StatusIs(absl::StatusCode::kUnavailable, "worker 1: parameter server 0 went away"));
  EXPECT_THAT(plane.log(), ElementsAre("failed 1", "stop", "done 0"));
  EXPECT_FALSE(PathExists(JoinPath(o.model_dir, "model.pb")));
  EXPECT_FALSE(PathExists(o.checkpoint.dir));
}

TEST(CoordinatorTest, AnErrorDuringAPauseStillReleasesEveryPausedWorkerWithoutACheckpoint) {
  testing::ScratchDir dir;
  TrainOptions o = Checkpointing(dir, 15);
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(100, 2), Worker(100)});
  // The pause is asked after the first steps; worker 1 pauses, worker 0
  // takes another step and fails instead of pausing.
  plane.FinishInsteadOfPausing(0);
  Coordinator c(Job(&spec, &o, 2), &plane);
  EXPECT_THAT(c.Run(nullptr), StatusIs(absl::StatusCode::kUnavailable, "worker 0"));
  EXPECT_THAT(plane.log(),
              ElementsAre("pause", "paused 1", "failed 0", "stop", "release", "done 1"));
  EXPECT_FALSE(PathExists(o.checkpoint.dir));
}

TEST(CoordinatorTest, ACheckpointThatFailsStopsTheJobWithItsError) {
  testing::ScratchDir dir;
  TrainOptions o = Checkpointing(dir, 15);
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(100)});
  plane.FailCheckpoints();
  Coordinator c(Job(&spec, &o, 1), &plane);
  EXPECT_THAT(c.Run(nullptr), StatusIs(absl::StatusCode::kInternal, "disk full"));
  EXPECT_THAT(plane.log(),
              ElementsAre("pause", "paused 0", "checkpoint", "stop", "release", "done 0"));
}

TEST(CoordinatorTest, ASignalStopsTheWorkersAndTheModelIsStillSaved) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  ASSERT_OK(MakeDirs(o.model_dir));
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(1000000)});
  std::atomic<bool> stop{true};
  Coordinator c(Job(&spec, &o, 1), &plane);
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, c.Run(&stop));
  EXPECT_EQ(summary["stopped"], true);
  EXPECT_THAT(plane.log(), ElementsAre("stop", "done 0", "save"));
}

TEST(CoordinatorTest, ASignalDuringAPauseLetsTheCheckpointFinishThenStops) {
  testing::ScratchDir dir;
  TrainOptions o = Checkpointing(dir, 15);
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(100)});
  std::atomic<bool> stop{false};
  plane.SignalOnPause(&stop);
  Coordinator c(Job(&spec, &o, 1), &plane);
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, c.Run(&stop));
  EXPECT_EQ(summary["stopped"], true);
  // The paused worker is released only after its checkpoint; no other
  // checkpoint starts once stopping, the final one still comes.
  EXPECT_THAT(plane.log(), ElementsAre("pause", "paused 0", "stop", "checkpoint", "release",
                                       "done 0", "checkpoint"));
}

TEST(CoordinatorTest, NoCheckpointStartsOnceStopping) {
  testing::ScratchDir dir;
  TrainOptions o = Checkpointing(dir, 5);
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(100)});
  std::atomic<bool> stop{true};
  Coordinator c(Job(&spec, &o, 1), &plane);
  ASSERT_OK(c.Run(&stop).status());
  EXPECT_THAT(plane.log(), ElementsAre("stop", "done 0", "checkpoint"));
}

TEST(CoordinatorTest, ASilentWorkerFailsTheJobNamingItWithoutWaiting) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  o.coordinator.failure_timeout_seconds = 0.2;
  o.coordinator.poll_seconds = 0.01;
  const models::ModelSpec spec = TinySpec();
  FakeWorker frozen = Worker(1000000);
  frozen.freeze_at_step = 3;
  FakeControlPlane plane({Worker(1000000), frozen});
  CoordinatedJob job = Job(&spec, &o, 2);
  bool workers_done = false;
  job.workers_done = [&] { workers_done = true; };
  Coordinator c(std::move(job), &plane);
  EXPECT_THAT(c.Run(nullptr),
              StatusIs(absl::StatusCode::kDeadlineExceeded, "worker 1 sent nothing for"));
  EXPECT_TRUE(c.abandoned_workers());
  EXPECT_FALSE(workers_done);  // no barrier with a rank that never comes
  EXPECT_THAT(plane.log(), ElementsAre("stop"));
}

// With liveness pings, a rank found lost fails the job at once, naming it
// (a worker silent because it waits on that rank is not blamed).
TEST(CoordinatorTest, ALostRankFailsTheJobNamingItAndNotTheWorkerWaitingOnIt) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  o.coordinator.failure_timeout_seconds = 0.2;
  o.coordinator.poll_seconds = 0.01;
  const models::ModelSpec spec = TinySpec();
  FakeWorker waiting = Worker(1000000);
  waiting.freeze_at_step = 3;  // silent: it waits on the frozen server
  FakeControlPlane plane({Worker(1000000), waiting});
  CoordinatedJob job = Job(&spec, &o, 2);
  const auto start = std::chrono::steady_clock::now();
  job.peers_lost = [start] {
    if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(300)) {
      return absl::OkStatus();
    }
    return absl::DeadlineExceededError("parameter server 0 (rank 1 on host h) has not answered");
  };
  Coordinator c(std::move(job), &plane);
  EXPECT_THAT(c.Run(nullptr), StatusIs(absl::StatusCode::kDeadlineExceeded,
                                       "parameter server 0 (rank 1 on host h) has not answered"));
  EXPECT_TRUE(c.abandoned_workers());
}

TEST(CoordinatorTest, AFailureBeforeTheRunIsReturnedOnceTheWorkersAreDone) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(1000000), Worker(1000000)});
  Coordinator c(Job(&spec, &o, 2), &plane);
  c.Fail(absl::NotFoundError("dataset /x: no manifest"));
  EXPECT_THAT(c.Run(nullptr), StatusIs(absl::StatusCode::kNotFound, "no manifest"));
  EXPECT_THAT(plane.log(), ElementsAre("stop", "done 0", "done 1"));
}

TEST(CoordinatorTest, EvaluatesAtTheEndThroughItsEvaluator) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  o.model_dir.clear();
  o.coordinator.final_eval = true;
  o.coordinator.eval.max_examples = 123;
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({Worker(2)});
  CoordinatedJob job = Job(&spec, &o, 1);
  uint64_t asked = 0;
  job.evaluate = [&](const models::EvalOptions& e) -> StatusOr<nlohmann::json> {
    asked = e.max_examples;
    return nlohmann::json{{"recall@100", 0.5}};
  };
  Coordinator c(std::move(job), &plane);
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, c.Run(nullptr));
  EXPECT_EQ(asked, 123u);
  EXPECT_EQ(summary["eval"]["recall@100"], 0.5);
}

// A job with a validation slice whose scores, one per validation, follow
// `scores` (then repeat the last one); worker(s) of `steps` steps with 2
// steps (20 examples) per epoch.
struct Validated {
  std::vector<double> scores;
  double popularity = -1;  // < 0: the validation reports no popularity
  int validations = 0;
  std::vector<std::string> evaluated = {};  // "servers" or the model folder evaluated at the end
};

CoordinatedJob ValidatedJob(const models::ModelSpec* spec, const TrainOptions* o, int workers,
                            Validated* v) {
  CoordinatedJob job = Job(spec, o, workers);
  job.train_records = 20 * static_cast<uint64_t>(workers);
  job.validation_examples = 336;
  job.validate = [v](const models::EvalOptions&) -> StatusOr<nlohmann::json> {
    const double score = v->scores[std::min<size_t>(v->validations, v->scores.size() - 1)];
    ++v->validations;
    nlohmann::json out{{"recall@50", score}, {"map", score / 10}, {"examples", 336}};
    if (v->popularity >= 0) out["popularity"] = {{"recall@50", v->popularity}};
    return out;
  };
  job.evaluate = [v](const models::EvalOptions&) -> StatusOr<nlohmann::json> {
    v->evaluated.push_back("servers");
    return nlohmann::json{{"recall@100", 0.5}};
  };
  job.evaluate_saved = [v](const std::string& dir,
                           const models::EvalOptions&) -> StatusOr<nlohmann::json> {
    v->evaluated.push_back(dir);
    return nlohmann::json{{"recall@100", 0.6}};
  };
  return job;
}

FakeWorker EpochWorker(uint64_t steps) {
  FakeWorker w = Worker(steps);
  w.epoch_steps = 2;
  return w;
}

TEST(CoordinatorTest, ValidationKeepsTheBestModelAndStopsWhenPatienceRunsOut) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  ASSERT_OK(MakeDirs(o.model_dir));
  o.coordinator.final_eval = true;
  o.coordinator.validation.stopping = {3, 0, 1};
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({EpochWorker(40)});
  Validated v{{0.1, 0.3, 0.2, 0.25, 0.2}};
  Coordinator c(ValidatedJob(&spec, &o, 1, &v), &plane);
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, c.Run(nullptr));
  // Once per epoch (every 2 steps): saved when better (epochs 1 and 2), then
  // three without improvement stop the job; the best model is not
  // overwritten by the final state, and the final evaluation reads it.
  EXPECT_THAT(plane.log(),
              ElementsAre("pause", "paused 0", "save", "release",  // 0.1: best so far
                          "pause", "paused 0", "save", "release",  // 0.3: best
                          "pause", "paused 0", "release",          // 0.2
                          "pause", "paused 0", "release",          // 0.25
                          "pause", "paused 0", "stop", "release",  // 0.2: patience is out
                          "done 0"));
  EXPECT_EQ(v.validations, 5);
  EXPECT_EQ(summary["examples"], 100);
  EXPECT_EQ(summary["validation"]["best"], 0.3);
  EXPECT_EQ(summary["validation"]["best_epoch"], 2.0);
  EXPECT_EQ(summary["validation"]["best_examples"], 40);
  EXPECT_EQ(summary["validation"]["stopped_early"], true);
  EXPECT_THAT(
      summary["validation"]["reason"].get<std::string>(),
      HasSubstr("recall@50 has not improved for 3 validations (best 0.3000 at epoch 2.00)"));
  EXPECT_THAT(v.evaluated, ElementsAre(o.model_dir));
  EXPECT_EQ(summary["eval"]["recall@100"], 0.6);
  ASSERT_OK_AND_ASSIGN(TrainedModel m, models::ReadTrainedModel(o.model_dir));
  EXPECT_EQ(m.examples_trained(), 40u);  // the best model's, not the final state's
  // The validation curve is in the metrics.
  ASSERT_OK_AND_ASSIGN(std::string metrics,
                       ReadFileToString(JoinPath(o.model_dir, "metrics.jsonl")));
  EXPECT_THAT(metrics, HasSubstr("\"validation\":{\"best\":0.3,\"best_epoch\":2.0"));
}

TEST(CoordinatorTest, EarlyStoppingWaitsForPopularityAndForPatienceThatGrowsWithTheRun) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  ASSERT_OK(MakeDirs(o.model_dir));
  o.coordinator.validation.stopping = {3, 1.0, 1};
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({EpochWorker(60)});  // 30 epochs at most
  // At popularity's level for 4 validations (a fixed patience of 3 would
  // stop at the 4th), then a best at the 5th: 5 more without a better one.
  Validated v{{0.1, 0.1, 0.1, 0.1, 0.3, 0.2}, 0.1};
  Coordinator c(ValidatedJob(&spec, &o, 1, &v), &plane);
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, c.Run(nullptr));
  EXPECT_EQ(v.validations, 10);
  EXPECT_EQ(summary["validation"]["best_epoch"], 5.0);
  EXPECT_THAT(summary["validation"]["reason"].get<std::string>(),
              HasSubstr("not improved for 5 validations (best 0.3000 at epoch 5.00); "
                        "popularity 0.1000"));
  ASSERT_OK_AND_ASSIGN(std::string metrics,
                       ReadFileToString(JoinPath(o.model_dir, "metrics.jsonl")));
  EXPECT_THAT(metrics, HasSubstr("\"patience\":5,\"popularity\":0.1"));
}

TEST(CoordinatorTest, ValidationOfTheFinalStateSavesItWhenItIsTheBest) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  ASSERT_OK(MakeDirs(o.model_dir));
  o.coordinator.final_eval = true;
  const models::ModelSpec spec = TinySpec();
  // 5 steps: validations at epochs 1 and 2, and one of the final state.
  FakeControlPlane plane({EpochWorker(5)});
  Validated v{{0.1, 0.2, 0.3}};
  Coordinator c(ValidatedJob(&spec, &o, 1, &v), &plane);
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, c.Run(nullptr));
  EXPECT_THAT(plane.log(), ElementsAre("pause", "paused 0", "save", "release", "pause", "paused 0",
                                       "save", "release", "done 0", "save"));
  EXPECT_EQ(v.validations, 3);
  EXPECT_EQ(summary["validation"]["best_examples"], 50);
  EXPECT_EQ(summary["validation"]["stopped_early"], false);
  EXPECT_THAT(v.evaluated, ElementsAre("servers"));  // the servers hold the best model
  ASSERT_OK_AND_ASSIGN(TrainedModel m, models::ReadTrainedModel(o.model_dir));
  EXPECT_EQ(m.examples_trained(), 50u);
}

TEST(CoordinatorTest, ValidationStateIsKeptInTheCheckpoint) {
  testing::ScratchDir dir;
  TrainOptions o = Checkpointing(dir, 30);
  o.worker.validation_users = 77;
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({EpochWorker(4)});
  Validated v{{0.4, 0.1}};
  Coordinator c(ValidatedJob(&spec, &o, 1, &v), &plane);
  ASSERT_OK(c.Run(nullptr).status());
  ASSERT_OK_AND_ASSIGN(models::FoundCheckpoint found, models::FindCheckpoint(o.checkpoint.dir));
  EXPECT_EQ(found.manifest.validation_users(), 77u);
  const ValidationState& s = found.manifest.validation();
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.best(), 0.4);
  EXPECT_EQ(s.best_examples(), 20u);
  EXPECT_EQ(s.since_best(), 1u);
  EXPECT_FALSE(s.best_saved());  // no model folder
  // The stopping rule's smoothed view (window 3) resumes too.
  EXPECT_THAT(s.recent_scores(), ElementsAre(0.4, 0.1));
  EXPECT_EQ(s.best_smoothed(), 0.4);
  EXPECT_EQ(s.since_best_smoothed(), 1u);
}

TEST(CoordinatorTest, AnUnknownValidationMetricFailsTheJobNamingTheFigures) {
  testing::ScratchDir dir;
  TrainOptions o = Options(dir);
  o.coordinator.validation.metric = "ndcg";
  const models::ModelSpec spec = TinySpec();
  FakeControlPlane plane({EpochWorker(4)});
  Validated v{{0.4}};
  Coordinator c(ValidatedJob(&spec, &o, 1, &v), &plane);
  StatusOr<nlohmann::json> summary = c.Run(nullptr);
  EXPECT_THAT(summary.status().message(), HasSubstr("--validation_metric=ndcg"));
  EXPECT_THAT(summary.status().message(), HasSubstr("map, recall@50"));
}

}  // namespace
}  // namespace vrec::train
