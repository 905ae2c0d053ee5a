// The training job's pieces on a tiny generated world: model spec, data
// slicing, saving and reading a model, and whole in-process jobs.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/file_util.h"
#include "data/dataset.h"
#include "data/generator.h"
#include "data/world.h"
#include "models/candidate_eval.h"
#include "models/ranking_eval.h"
#include "models/saved_model.h"
#include "ps/slot_router.h"
#include "testutil/testutil.h"
#include "testutil/tiny_world.h"
#include "train/job.h"
#include "train/job_roles.h"

namespace vrec::train {
namespace {

using ::testing::HasSubstr;
using testing::TinyDataset;

models::CandidateSpecOptions SmallSpecOptions() {
  models::CandidateSpecOptions o;
  o.seed = 3;
  o.model.embedding_dim = 16;
  o.model.region_dim = 4;
  o.model.device_dim = 4;
  o.model.tower = {32, 16};
  o.model.output_dim = 16;
  o.optimizer.set_kind(OptimizerConfig::ADAGRAD);
  o.optimizer.set_learning_rate(0.1f);
  o.sampler.set_kind(SamplerConfig::UNIGRAM);
  o.sampler.set_power(0.75f);
  o.sampler.set_num_negatives(64);
  return o;
}

TrainOptions SmallJob(const std::string& model_dir) {
  TrainOptions o;
  o.data_dir = TinyDataset();
  o.model_dir = model_dir;
  o.server.servers = 2;
  o.worker.workers = 2;
  o.worker.batch_size = 64;
  o.worker.epochs = 3;
  o.candidate = SmallSpecOptions();
  o.coordinator.progress_seconds = 60;
  return o;
}

TEST(WorkerShareTest, SplitsEvenlyAndSumsToTheTotal) {
  uint64_t sum = 0;
  for (int w = 0; w < 3; ++w) sum += WorkerShare(10, w, 3);
  EXPECT_EQ(sum, 10u);
  EXPECT_EQ(WorkerShare(10, 0, 3), 4u);
  EXPECT_EQ(WorkerShare(10, 2, 3), 3u);
  EXPECT_EQ(WorkerShare(0, 1, 3), 0u);
}

TEST(TrainLocalTest, StreamsFromTheGeneratorWithoutReadingTrainingFiles) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  o.worker.stream = true;
  o.worker.epochs = 1;
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, TrainLocal(o, nullptr));
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(TinyDataset()));
  uint64_t records = 0;
  for (const auto& s : m.candidate_train()) records += s.records();
  EXPECT_EQ(summary["examples"].get<uint64_t>(), records);
}

TEST(SavedModelTest, ReadsBackWhatTheServersHeldAndInitialValuesElsewhere) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  ASSERT_OK_AND_ASSIGN(models::ModelSpec spec, CandidateKind().Spec(o));
  std::vector<std::unique_ptr<ps::ServerStorage>> servers;
  for (int s = 0; s < 2; ++s) {
    o.server.spill_dir = dir.File("spill");
    ASSERT_OK_AND_ASSIGN(auto storage, CreateServerStorage(spec, o.server, SpillRoot(o), s));
    servers.push_back(std::move(storage));
  }
  ASSERT_OK_AND_ASSIGN(auto router, ps::SlotRouter::Contiguous(2));
  // Touch and train some rows of the video table, spread over both servers.
  const int video = spec.TableIndex(models::kVideoTable);
  const uint32_t dim = spec.Table(video).dim();
  std::vector<uint64_t> trained = {1, 2, 3, 1000, 123456789};
  for (uint64_t k : trained) {
    ps::EmbeddingStore* store =
        servers[router.Server(ps::TableId(models::kVideoTable), k)]->Find(models::kVideoTable);
    std::vector<float> g(dim, 0.5f);
    ASSERT_OK(store->Push({k}, g));
  }
  // Dense tables: pull every block once so they exist.
  for (const auto& d : spec.dense) {
    const int t = spec.TableIndex(d.table());
    for (uint64_t b = 0; b < models::DenseBlocks(d.size()); ++b) {
      ps::EmbeddingStore* store =
          servers[router.Server(ps::TableId(d.table()), b)]->Find(d.table());
      std::vector<float> out(spec.Table(t).dim());
      ASSERT_OK(store->Pull({b}, absl::MakeSpan(out)));
    }
  }
  for (int s = 0; s < 2; ++s)
    ASSERT_OK(models::SaveServerTables(*servers[s], o.model_dir, s).status());
  ASSERT_OK(models::WriteTrainedModel(o.model_dir,
                                      models::MakeTrainedModel(spec, o.data_dir, 2, 10, 1, 0.5)));

  ASSERT_OK_AND_ASSIGN(auto saved, models::SavedModel::Open(o.model_dir));
  EXPECT_EQ(saved->info().examples_trained(), 10u);
  std::vector<uint64_t> keys = trained;
  keys.push_back(42);  // never touched: the initial value
  std::vector<float> got(keys.size() * dim), want(dim);
  ASSERT_OK(saved->Pull(video, keys, got.data()));
  for (size_t i = 0; i < keys.size(); ++i) {
    ps::EmbeddingStore* store =
        servers[router.Server(ps::TableId(models::kVideoTable), keys[i])]->Find(
            models::kVideoTable);
    ASSERT_OK(store->Pull({keys[i]}, absl::MakeSpan(want)));
    for (uint32_t d = 0; d < dim; ++d)
      ASSERT_EQ(got[i * dim + d], want[d]) << "key " << keys[i] << " element " << d;
  }
  // An input id never trained reads as the zero embedding (the paper's
  // out-of-vocabulary rule); an output row never trained, as its random start.
  for (uint32_t d = 0; d < dim; ++d) EXPECT_EQ(got[(keys.size() - 1) * dim + d], 0.0f);
  const int out = spec.TableIndex(models::kVideoOutTable);
  std::vector<float> out_row(spec.Table(out).dim());
  ASSERT_OK(saved->Pull(out, {42}, out_row.data()));
  EXPECT_GT(*std::max_element(out_row.begin(), out_row.end()), 0.0f);
  std::vector<float> dense_saved;
  ASSERT_OK(models::GatherDense(saved->spec(), saved.get(), &dense_saved));
  EXPECT_EQ(dense_saved.size(), spec.DenseSize());
}

// The video-age shares are distributions: the model's buckets plus its mass
// on videos not yet uploaded sum to 1, and so do the labels'.
TEST(VideoAgeSharesTest, SharesAreDistributions) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  o.worker.max_examples = 4000;
  o.coordinator.final_eval = false;
  ASSERT_OK(TrainLocal(o, nullptr).status());
  ASSERT_OK_AND_ASSIGN(auto saved, models::SavedModel::Open(o.model_dir));
  ASSERT_OK_AND_ASSIGN(JobData data,
                       LoadJobData(CandidateKind(), o.data_dir, false, saved->spec()));
  ASSERT_OK_AND_ASSIGN(nlohmann::json s,
                       models::VideoAgeShares(saved->spec(), saved.get(), o.data_dir, data.manifest,
                                              data.corpus, o.coordinator.eval, 10));
  ASSERT_EQ(s["days"].size(), 10u);
  double predicted = s["not_yet_uploaded"].get<double>();
  double empirical = s["empirical_not_yet_uploaded"].get<double>();
  for (int b = 0; b < 10; ++b) {
    predicted += s["predicted"][b].get<double>();
    empirical += s["empirical"][b].get<double>();
  }
  EXPECT_NEAR(predicted, 1.0, 1e-6);
  EXPECT_NEAR(empirical, 1.0, 1e-9);                              // every label is in the corpus
  EXPECT_EQ(s["empirical_not_yet_uploaded"].get<double>(), 0.0);  // watched after upload
  EXPECT_GT(s["examples"].get<uint64_t>(), 100u);
}

TEST(TrainLocalTest, LearnsSavesAndEvaluatesTheSameThroughPsAndFolder) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  // Enough epochs that the model clearly beats popularity on this tiny world
  // (at 3 the margin was within the run-to-run noise of asynchronous SGD).
  o.worker.epochs = 8;
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, TrainLocal(o, nullptr));
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(TinyDataset()));
  uint64_t records = 0;
  for (const auto& s : m.candidate_train()) records += s.records();
  EXPECT_EQ(summary["examples"].get<uint64_t>(), 8 * records);  // eight epochs, nothing skipped
  // The loss fell well below that of the first step (a job of one batch per
  // worker), and the popularity baseline is beaten at recall@50.
  TrainOptions first = SmallJob(dir.File("first"));
  first.worker.max_examples = 2 * 64;
  first.coordinator.final_eval = false;
  ASSERT_OK_AND_ASSIGN(nlohmann::json one_step, TrainLocal(first, nullptr));
  EXPECT_EQ(one_step["steps"].get<uint64_t>(), 2u);
  EXPECT_LT(summary["final_loss"].get<double>(), 0.9 * one_step["final_loss"].get<double>());
  const nlohmann::json& eval = summary["eval"];
  EXPECT_GT(eval["recall@50"].get<double>(), eval["popularity"]["recall@50"].get<double>());
  EXPECT_TRUE(eval.contains("oracle"));

  // The saved folder evaluates exactly as the live servers did.
  ASSERT_OK_AND_ASSIGN(auto saved, models::SavedModel::Open(o.model_dir));
  ASSERT_OK_AND_ASSIGN(JobData data,
                       LoadJobData(CandidateKind(), o.data_dir, false, saved->spec()));
  ASSERT_OK_AND_ASSIGN(nlohmann::json again,
                       models::EvaluateCandidate(saved->spec(), saved.get(), o.data_dir,
                                                 data.manifest, data.corpus, o.coordinator.eval));
  for (const char* k : {"recall@1", "recall@10", "recall@50", "recall@100", "map"}) {
    EXPECT_EQ(again[k].get<double>(), eval[k].get<double>()) << k;
  }
  EXPECT_TRUE(PathExists(JoinPath(o.model_dir, "metrics.jsonl")));
}

TEST(TrainLocalTest, RankingLearnsAndEvaluatesTheSameThroughPsAndFolder) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  o.model = "ranking";
  o.ranking.embedding_dim = 8;
  o.ranking.tower = {16};
  o.ranking.num_quantiles = 20;
  o.ranking.optimizer.set_kind(OptimizerConfig::ADAM);
  o.ranking.optimizer.set_learning_rate(0.003f);
  o.worker.epochs = 2;
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, TrainLocal(o, nullptr));
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(TinyDataset()));
  uint64_t records = 0;
  for (const auto& s : m.ranking_train()) records += s.records();
  EXPECT_EQ(summary["examples"].get<uint64_t>(), 2 * records);
  const nlohmann::json& eval = summary["eval"];
  const double loss = eval["weighted_per_user_loss"].get<double>();
  const double oracle = eval["oracle"]["weighted_per_user_loss"].get<double>();
  // A random ranker loses about half; the model must be well on its way to
  // the oracle.
  EXPECT_LT(loss, 0.4);
  EXPECT_GT(loss, oracle - 0.05);  // the oracle is the best in expectation
  EXPECT_GT(eval["auc"].get<double>(), 0.55);

  ASSERT_OK_AND_ASSIGN(auto saved, models::SavedModel::Open(o.model_dir));
  EXPECT_EQ(saved->spec().quantiles.size(), models::RankingContinuousFeatures().size());
  ASSERT_OK_AND_ASSIGN(nlohmann::json again,
                       models::EvaluateRanking(saved->spec(), saved.get(), o.data_dir, m, {}));
  EXPECT_EQ(again["weighted_per_user_loss"].get<double>(), loss);
  EXPECT_EQ(again["auc"].get<double>(), eval["auc"].get<double>());
}

TEST(TrainLocalTest, StopFlagEndsTheJobAndStillSavesTheModel) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  o.worker.epochs = 0;  // without end: only the stop flag ends it
  o.coordinator.final_eval = false;
  std::atomic<bool> stop{true};
  ASSERT_OK_AND_ASSIGN(nlohmann::json summary, TrainLocal(o, &stop));
  EXPECT_TRUE(summary["stopped"].get<bool>());
  EXPECT_OK(models::SavedModel::Open(o.model_dir).status());
}

// Trains *o for one epoch with a checkpoint folder in `dir`, then sets it to
// resume from it.
void TrainOneCheckpointedEpoch(const testing::ScratchDir& dir, TrainOptions* o) {
  o->worker.epochs = 1;
  o->coordinator.final_eval = false;
  o->checkpoint.dir = dir.File("ckpt");
  ASSERT_OK(TrainLocal(*o, nullptr).status());
  o->checkpoint.resume = true;
}

// A checkpoint records its dataset's fingerprint: a resume onto a copy of
// the dataset elsewhere goes on; onto another dataset it is refused, naming
// both, before anything is trained.
TEST(TrainLocalTest, ResumeRefusesAnotherDataset) {
  testing::ScratchDir dir;
  std::filesystem::copy(TinyDataset(), dir.File("copy"), std::filesystem::copy_options::recursive);
  std::filesystem::copy(TinyDataset(), dir.File("other"), std::filesystem::copy_options::recursive);
  ASSERT_OK_AND_ASSIGN(DatasetManifest other, ReadManifest(dir.File("other")));
  other.set_seed(other.seed() + 1);
  ASSERT_OK(WriteManifest(dir.File("other"), other));
  TrainOptions o = SmallJob(dir.File("model"));
  ASSERT_NO_FATAL_FAILURE(TrainOneCheckpointedEpoch(dir, &o));
  o.data_dir = dir.File("other");
  StatusOr<nlohmann::json> refused = TrainLocal(o, nullptr);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("trained on another dataset"));
  EXPECT_THAT(refused.status().message(), HasSubstr(dir.File("other")));
  o.data_dir = dir.File("copy");
  EXPECT_OK(TrainLocal(o, nullptr).status());
}

// A checkpoint written under another default initialisation (here: the
// spec of today's flags starts its input embeddings at random, as before
// they started at zero) resumes: the spec takes the checkpoint's
// initializers; other model flags still must match.
TEST(TrainLocalTest, ResumeTakesTheCheckpointsInitializers) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  ASSERT_NO_FATAL_FAILURE(TrainOneCheckpointedEpoch(dir, &o));
  ASSERT_OK_AND_ASSIGN(models::ModelSpec spec, CandidateKind().Spec(o));
  const int video = spec.TableIndex(models::kVideoTable);
  InitializerConfig* init = spec.config.mutable_tables(video)->mutable_initializer();
  init->set_kind(InitializerConfig::UNIFORM);
  init->set_scale(0.05f);
  ASSERT_OK_AND_ASSIGN(auto found, FindResumeCheckpoint(o.checkpoint, o.worker, &spec, 2));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(spec.Table(video).initializer().kind(), InitializerConfig::ZEROS);
  spec.config.mutable_tables(video)->set_dim(spec.Table(video).dim() + 1);
  EXPECT_EQ(FindResumeCheckpoint(o.checkpoint, o.worker, &spec, 2).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// The label counts (the sampler's background, popularity) are of the
// examples trained on: a validation slice's labels are not counted.
TEST(LoadJobDataTest, LabelCountsLeaveTheValidationSliceOut) {
  TrainOptions o = SmallJob("");
  ASSERT_OK_AND_ASSIGN(models::ModelSpec spec, CandidateKind().Spec(o));
  ASSERT_OK_AND_ASSIGN(JobData all, LoadJobData(CandidateKind(), o.data_dir, false, spec, true, 0));
  ASSERT_OK_AND_ASSIGN(JobData held,
                       LoadJobData(CandidateKind(), o.data_dir, false, spec, true, 50));
  ASSERT_GT(held.validation.size(), 0u);
  ASSERT_EQ(all.corpus.label_counts.size(), held.corpus.label_counts.size());
  double removed = 0;
  for (size_t k = 0; k < all.corpus.label_counts.size(); ++k) {
    EXPECT_GE(all.corpus.label_counts[k], held.corpus.label_counts[k]);
    removed += all.corpus.label_counts[k] - held.corpus.label_counts[k];
  }
  EXPECT_EQ(removed, static_cast<double>(held.validation.size()));
  const int32_t first = held.corpus.IndexOf(static_cast<int64_t>(held.validation[0].label_video()));
  ASSERT_GE(first, 0);
  EXPECT_LT(held.corpus.label_counts[first], all.corpus.label_counts[first]);
}

TEST(TrainLocalTest, BadOptionsAreErrors) {
  testing::ScratchDir dir;
  TrainOptions o = SmallJob(dir.File("model"));
  o.model = "ranking-v9";
  EXPECT_EQ(TrainLocal(o, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  o = SmallJob(dir.File("model"));
  o.data_dir = dir.File("no-such-dataset");
  EXPECT_FALSE(TrainLocal(o, nullptr).ok());
  o = SmallJob(dir.File("model"));
  o.worker.workers = 0;
  EXPECT_EQ(TrainLocal(o, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vrec::train
