// Day after day: the tables' admission and expiry flags
// (train/table_policy.h), the normalisers' merge and warm starts
// (train/warm_start.h) on a tiny generated world, through whole in-process
// jobs.
#include "train/warm_start.h"

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "models/candidate_spec.h"
#include "models/saved_model.h"
#include "ps/optimizer.h"
#include "ps/row_record.h"
#include "ps/spill_store.h"
#include "testutil/testutil.h"
#include "testutil/tiny_world.h"
#include "train/job.h"
#include "train/job_roles.h"
#include "train/table_policy.h"

namespace vrec::train {
namespace {

using ::testing::HasSubstr;
using testing::TinyDataset;

TrainOptions SmallJob() {
  TrainOptions o;
  o.data_dir = TinyDataset();
  o.server.servers = 2;
  o.worker.workers = 2;
  o.worker.batch_size = 64;
  o.worker.epochs = 1;
  models::CandidateSpecOptions& c = o.candidate;
  c.seed = 3;
  c.model.embedding_dim = 16;
  c.model.region_dim = 4;
  c.model.device_dim = 4;
  c.model.tower = {32, 16};
  c.model.output_dim = 16;
  c.optimizer.set_kind(OptimizerConfig::ADAGRAD);
  c.optimizer.set_learning_rate(0.1f);
  c.sampler.set_kind(SamplerConfig::UNIGRAM);
  c.sampler.set_power(0.75f);
  c.sampler.set_num_negatives(64);
  o.coordinator.progress_seconds = 60;
  o.coordinator.final_eval = false;
  return o;
}

// --- --min_count and --expire_after -----------------------------------------

TEST(TablePolicyTest, ParsesANumberOrATableList) {
  ASSERT_OK_AND_ASSIGN(PerTableValue bare, ParsePerTable("3", "--min_count"));
  EXPECT_EQ(bare.growing, 3u);
  EXPECT_TRUE(bare.tables.empty());
  ASSERT_OK_AND_ASSIGN(PerTableValue list, ParsePerTable("video:3, token:5", "--min_count"));
  EXPECT_FALSE(list.growing);
  ASSERT_EQ(list.tables.size(), 2u);
  EXPECT_EQ(list.tables[1], (std::pair<std::string, uint64_t>{"token", 5}));
  ASSERT_OK_AND_ASSIGN(PerTableValue ranking, ParsePerTable("rank/video:2", "--min_count"));
  EXPECT_EQ(ranking.tables[0].first, "rank/video");
  ASSERT_OK_AND_ASSIGN(PerTableValue none, ParsePerTable("", "--expire_after"));
  EXPECT_TRUE(none.empty());
  EXPECT_THAT(ParsePerTable("video", "--min_count"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--min_count=video: 'video' is not TABLE:NUMBER"));
  EXPECT_THAT(ParsePerTable("video:-1", "--expire_after"),
              StatusIs(absl::StatusCode::kInvalidArgument, "'-1' (table video) is not a whole"));
  EXPECT_THAT(ParsePerTable("video:3,:4", "--min_count"),
              StatusIs(absl::StatusCode::kInvalidArgument, "':4' is not TABLE:NUMBER"));
}

TEST(TablePolicyTest, SetsTheGrowingTablesOrTheNamedOnes) {
  TrainOptions o = SmallJob();
  ASSERT_OK_AND_ASSIGN(o.tables.min_count, ParsePerTable("3", "--min_count"));
  ASSERT_OK_AND_ASSIGN(o.tables.expire_after, ParsePerTable("token:500,video:0", "--expire_after"));
  ASSERT_OK_AND_ASSIGN(models::ModelSpec spec, JobSpec(CandidateKind(), o));
  auto storage = [&](const std::string& t) { return spec.Table(spec.TableIndex(t)).storage(); };
  for (const char* t : {models::kVideoTable, models::kTokenTable, models::kVideoOutTable}) {
    EXPECT_EQ(storage(t).admission_min_count(), 3u) << t;
  }
  EXPECT_EQ(storage(models::kRegionTable).admission_min_count(), 0u);
  EXPECT_EQ(storage(models::kTokenTable).expiry_steps(), 500u);
  EXPECT_EQ(storage(models::kVideoTable).expiry_steps(), 0u);
  EXPECT_EQ(DescribeTablePolicies(spec.config),
            "video: min_count 3; token: min_count 3, expire_after 500; video_out: min_count 3");
  // The ranking model's tables, with or without their prefix.
  o.model = models::kRankingKind;
  o.ranking.embedding_dim = 8;
  o.ranking.tower = {8};
  ASSERT_OK_AND_ASSIGN(o.tables.min_count, ParsePerTable("2", "--min_count"));
  ASSERT_OK_AND_ASSIGN(o.tables.expire_after, ParsePerTable("topic:7", "--expire_after"));
  ASSERT_OK_AND_ASSIGN(spec, JobSpec(RankingKind(), o));
  EXPECT_EQ(storage("rank/video").admission_min_count(), 2u);
  EXPECT_EQ(storage("rank/token").admission_min_count(), 2u);
  EXPECT_EQ(storage("rank/topic").admission_min_count(), 0u);
  EXPECT_EQ(storage("rank/topic").expiry_steps(), 7u);
}

TEST(TablePolicyTest, NamesTheTablesOnAWrongOne) {
  TrainOptions o = SmallJob();
  ASSERT_OK_AND_ASSIGN(o.tables.min_count, ParsePerTable("videos:3", "--min_count"));
  EXPECT_THAT(JobSpec(CandidateKind(), o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--min_count: the model has no table 'videos'; its sparse tables: video, "
                       "token, region, device, video_out"));
  o.tables.min_count = {};
  ASSERT_OK_AND_ASSIGN(o.tables.expire_after, ParsePerTable("cand/tower/0/w:9", "--expire_after"));
  EXPECT_THAT(JobSpec(CandidateKind(), o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "is a dense table"));
}

// --- The normalisers --------------------------------------------------------

QuantileInfo Info(const std::string& feature, std::vector<double> q, uint64_t count) {
  QuantileInfo info;
  info.set_feature(feature);
  for (double v : q) info.add_quantiles(v);
  info.set_count(count);
  return info;
}

TEST(MergeQuantilesTest, MixesByCountAndAddsTheCounts) {
  // Yesterday: 300 values uniform on [0, 1]; today 100 on [1, 2].
  const std::vector<QuantileInfo> before = {Info("age", {0, 0.5, 1}, 300)};
  const std::vector<QuantileInfo> today = {Info("age", {1, 1.25, 1.5, 1.75, 2}, 100),
                                           Info("new", {5, 6}, 100)};
  ASSERT_OK_AND_ASSIGN(std::vector<QuantileInfo> merged, MergeQuantiles(before, today));
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].count(), 400u);
  ASSERT_EQ(merged[0].quantiles_size(), 5);             // today's number of quantiles
  EXPECT_NEAR(merged[0].quantiles(1), 1 / 3.0, 1e-12);  // 3/4 of the mass below 1
  EXPECT_NEAR(merged[0].quantiles(3), 1.0, 1e-12);
  EXPECT_EQ(merged[1].SerializeAsString(), today[1].SerializeAsString());  // not before: kept
  // A normaliser saved before counts were kept weighs as much as today's.
  ASSERT_OK_AND_ASSIGN(merged, MergeQuantiles({Info("age", {0, 0.5, 1}, 0)}, {today[0]}));
  EXPECT_EQ(merged[0].count(), 200u);
  EXPECT_NEAR(merged[0].quantiles(2), 1.0, 1e-12);
  EXPECT_THAT(MergeQuantiles({Info("age", {2, 1}, 5)}, {today[0]}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "the warm start's normaliser of age"));
}

// --- Warm starts ------------------------------------------------------------

// Every row record of checkpoint folder `dir` written by `servers` servers,
// by spill key (table id and key).
std::map<std::string, std::string> CheckpointRows(const std::string& dir, int servers) {
  std::map<std::string, std::string> rows;
  for (int s = 0; s < servers; ++s) {
    ps::RocksSpillOptions ro;
    ro.path = JoinPath(dir, models::ServerCheckpointDir(s));
    ro.read_only = true;
    auto db = ps::RocksSpillStore::Open(ro);
    EXPECT_OK(db.status());
    if (!db.ok()) return rows;
    EXPECT_OK((*db)->Scan("", [&](const std::string& k, const std::string& v) {
      if (k.size() == ps::kSpillKeyBytes) EXPECT_TRUE(rows.emplace(k, v).second);
      return true;
    }));
  }
  return rows;
}

// Each table's step clock (the largest of its servers') and admission
// counts (all servers) in checkpoint folder `dir`.
struct TablesState {
  std::map<std::string, uint64_t> steps;
  std::map<std::string, std::map<uint64_t, uint32_t>> admission;
};
TablesState StateOf(const std::string& dir, int servers) {
  TablesState out;
  for (int s = 0; s < servers; ++s) {
    ServerState state;
    auto bytes = ReadFileToString(JoinPath(dir, models::ServerStateFile(s)));
    EXPECT_OK(bytes.status());
    EXPECT_TRUE(bytes.ok() && state.ParseFromString(*bytes));
    for (const TableState& t : state.tables()) {
      out.steps[t.table()] = std::max(out.steps[t.table()], t.step());
      for (int i = 0; i < t.admission_keys_size(); ++i) {
        out.admission[t.table()][t.admission_keys(i)] = t.admission_counts(i);
      }
    }
  }
  return out;
}

// The servers of job `o` as it starts (FindJobStart, CreateServerStorage,
// as TrainLocal and every rank under mpirun do), each writing its part of a
// checkpoint into `dir` before serving anything.
Status StartAndCheckpointServers(const TrainOptions& o, const std::string& spill_root,
                                 const std::string& dir) {
  VREC_ASSIGN_OR_RETURN(models::ModelSpec spec, JobSpec(CandidateKind(), o));
  VREC_ASSIGN_OR_RETURN(JobStart start, FindJobStart(o, &spec, o.worker.workers));
  for (int s = 0; s < o.server.servers; ++s) {
    VREC_ASSIGN_OR_RETURN(
        auto storage, CreateServerStorage(spec, o.server, spill_root, s, &start, o.server.servers));
    VREC_RETURN_IF_ERROR(models::WriteServerCheckpoint(storage.get(), dir, s).status());
  }
  return absl::OkStatus();
}

// Day 1 trains with admission and expiry; day 2's servers warm start from
// its checkpoint, three of them where day 1 had two. Before any step they
// hold exactly day 1's state: every row record (weights, optimizer state,
// last-seen step, update count), every table's step clock and admission
// counts.
TEST(WarmStartTest, ContinuesExactlyWhereTheCheckpointLeftOff) {
  testing::ScratchDir dir;
  TrainOptions day1 = SmallJob();
  ASSERT_OK_AND_ASSIGN(day1.tables.min_count, ParsePerTable("2", "--min_count"));
  ASSERT_OK_AND_ASSIGN(day1.tables.expire_after, ParsePerTable("150", "--expire_after"));
  day1.checkpoint.dir = dir.File("day1");
  ASSERT_OK(TrainLocal(day1, nullptr).status());
  ASSERT_OK_AND_ASSIGN(models::FoundCheckpoint before, models::FindCheckpoint(day1.checkpoint.dir));

  TrainOptions day2 = day1;
  day2.data_dir = TinyDataset({.seed = 8});  // another day
  day2.server.servers = 3;
  day2.checkpoint.dir = "";
  day2.checkpoint.init_from = day1.checkpoint.dir;
  ASSERT_OK(StartAndCheckpointServers(day2, dir.File("spill"), dir.File("day2-start")));

  const auto rows_before = CheckpointRows(before.dir, 2);
  const auto rows_after = CheckpointRows(dir.File("day2-start"), 3);
  EXPECT_GT(rows_before.size(), 1000u);
  EXPECT_TRUE(rows_before == rows_after)
      << rows_before.size() << " rows before, " << rows_after.size() << " after";
  const TablesState state_before = StateOf(before.dir, 2);
  const TablesState state_after = StateOf(dir.File("day2-start"), 3);
  EXPECT_EQ(state_before.steps, state_after.steps);
  EXPECT_GT(state_after.steps.at(models::kVideoTable), 100u);
  EXPECT_EQ(state_before.admission, state_after.admission);
  EXPECT_GT(state_after.admission.at(models::kVideoOutTable).size(), 0u);
}

// A warm-started job records where it started; its normalisers are the
// earlier model's merged with its data's; its step clocks go on.
TEST(WarmStartTest, RecordsItsHistoryMergesTheNormalisersAndTheClocksGoOn) {
  testing::ScratchDir dir;
  TrainOptions day1 = SmallJob();
  ASSERT_OK_AND_ASSIGN(day1.tables.expire_after, ParsePerTable("100000", "--expire_after"));
  day1.checkpoint.dir = dir.File("day1");
  ASSERT_OK_AND_ASSIGN(nlohmann::json one, TrainLocal(day1, nullptr));
  ASSERT_OK_AND_ASSIGN(models::FoundCheckpoint first, models::FindCheckpoint(day1.checkpoint.dir));
  TrainOptions day2 = day1;
  day2.data_dir = TinyDataset({.seed = 8});
  day2.worker.max_examples = 640;
  day2.checkpoint.dir = dir.File("day2");
  day2.checkpoint.init_from = day1.checkpoint.dir;
  ASSERT_OK_AND_ASSIGN(nlohmann::json two, TrainLocal(day2, nullptr));
  EXPECT_EQ(two["warm_start"].get<std::string>(), first.dir);
  EXPECT_EQ(two["examples_before"].get<uint64_t>(), one["examples"].get<uint64_t>());
  // Each server's clock counts the push requests it served (about one per
  // step of any worker), from where day 1's left off.
  const uint64_t clock1 = one["tables"]["video_out"]["step"].get<uint64_t>();
  const uint64_t clock2 = two["tables"]["video_out"]["step"].get<uint64_t>();
  EXPECT_GT(clock1, one["steps"].get<uint64_t>() / 2);
  EXPECT_GT(clock2, clock1 + two["steps"].get<uint64_t>() / 2);
  EXPECT_LE(clock2, clock1 + two["steps"].get<uint64_t>());
  ASSERT_OK_AND_ASSIGN(models::FoundCheckpoint second, models::FindCheckpoint(day2.checkpoint.dir));
  const TrainedModel& m1 = first.manifest.model();
  const TrainedModel& m2 = second.manifest.model();
  EXPECT_EQ(m2.warm_start(), first.dir);
  EXPECT_EQ(m2.examples_before(), m1.examples_trained());
  ASSERT_EQ(m1.quantiles_size(), 1);
  ASSERT_EQ(m2.quantiles_size(), 1);
  ASSERT_GT(m1.quantiles(0).count(), 0u);
  ASSERT_OK_AND_ASSIGN(models::ModelSpec spec2, JobSpec(CandidateKind(), day2));
  ASSERT_OK_AND_ASSIGN(JobData data2, LoadJobData(CandidateKind(), day2.data_dir, false, spec2,
                                                  true, day2.worker.validation_users));
  ASSERT_OK_AND_ASSIGN(std::vector<QuantileInfo> merged,
                       MergeQuantiles({m1.quantiles(0)}, data2.quantiles));
  EXPECT_EQ(m2.quantiles(0).SerializeAsString(), merged[0].SerializeAsString());
  EXPECT_EQ(m2.quantiles(0).count(), m1.quantiles(0).count() + data2.quantiles[0].count());
}

// From a model folder (weights only): every row starts from the model's
// weights with a fresh optimizer state, the clocks at 0, no admission counts.
TEST(WarmStartTest, FromAModelFolderTakesTheWeightsAndStartsTheOptimizerAfresh) {
  testing::ScratchDir dir;
  TrainOptions day1 = SmallJob();
  day1.model_dir = dir.File("model1");
  day1.worker.validation_users = 0;
  ASSERT_OK(TrainLocal(day1, nullptr).status());
  ASSERT_OK_AND_ASSIGN(auto saved, models::SavedModel::Open(day1.model_dir));

  TrainOptions day2 = day1;
  day2.model_dir = "";
  day2.data_dir = TinyDataset({.seed = 8});
  day2.server.servers = 3;
  day2.checkpoint.init_from = day1.model_dir;
  ASSERT_OK(StartAndCheckpointServers(day2, dir.File("spill"), dir.File("day2-start")));
  const models::ModelSpec& spec = saved->spec();
  uint64_t rows = 0;
  for (const auto& [k, record] : CheckpointRows(dir.File("day2-start"), 3)) {
    int t = 0;
    while (t < spec.config.tables_size() &&
           ps::TableId(spec.Table(t).name()) != ps::SpillKeyTableId(k)) {
      ++t;
    }
    ASSERT_LT(t, spec.config.tables_size());
    const TableConfig& table = spec.Table(t);
    ASSERT_OK_AND_ASSIGN(auto opt, ps::Optimizer::Create(table.optimizer()));
    const uint32_t dim = table.dim();  // a dense table's block width too
    ps::RowMeta meta;
    ASSERT_TRUE(ps::ParseRowMeta(record, &meta));
    EXPECT_EQ(meta.last_seen_step, 0u);
    EXPECT_EQ(meta.updates, 1u);
    const uint64_t key = ps::SpillKeyRowKey(k);
    std::vector<float> expected(dim + opt->StateFloats(dim));
    ASSERT_OK(saved->Pull(t, {key}, expected.data()));
    opt->InitState(expected.data(), dim, expected.data() + dim);
    ASSERT_EQ(record.size(), ps::kRecordHeaderBytes + 4 * expected.size()) << table.name();
    std::vector<float> row(expected.size());
    std::memcpy(row.data(), record.data() + ps::kRecordHeaderBytes, 4 * row.size());
    ASSERT_EQ(row, expected) << table.name() << " key " << key;
    ++rows;
  }
  uint64_t saved_rows = 0;
  for (int t = 0; t < spec.config.tables_size(); ++t) saved_rows += saved->rows(t);
  EXPECT_EQ(rows, saved_rows);
  const TablesState state = StateOf(dir.File("day2-start"), 3);
  for (const auto& [table, step] : state.steps) EXPECT_EQ(step, 0u) << table;
}

// A warm-started job that is interrupted resumes with --resume and the same
// --init_from, even with one checkpoint folder for every day: a checkpoint
// of today's data continues, yesterday's does not.
TEST(WarmStartTest, ResumeWithInitFromContinuesTodaysCheckpointOnly) {
  testing::ScratchDir dir;
  TrainOptions day1 = SmallJob();
  day1.checkpoint.dir = dir.File("ckpt");
  ASSERT_OK_AND_ASSIGN(nlohmann::json one, TrainLocal(day1, nullptr));
  ASSERT_OK_AND_ASSIGN(models::FoundCheckpoint first, models::FindCheckpoint(day1.checkpoint.dir));

  TrainOptions day2 = day1;
  day2.data_dir = TinyDataset({.seed = 8});
  day2.worker.max_examples = 640;
  day2.checkpoint.resume = true;
  day2.checkpoint.init_from = day1.checkpoint.dir;
  // The folder's newest checkpoint is day 1's: day 2 warm starts from it.
  ASSERT_OK_AND_ASSIGN(nlohmann::json two, TrainLocal(day2, nullptr));
  EXPECT_EQ(two["examples"].get<uint64_t>(), 640u);
  EXPECT_EQ(two["warm_start"].get<std::string>(), first.dir);
  // Now the newest is day 2's own: the same command continues it (here at
  // its end: nothing is left to train), keeping the model's history.
  ASSERT_OK_AND_ASSIGN(nlohmann::json again, TrainLocal(day2, nullptr));
  EXPECT_EQ(again["examples"].get<uint64_t>(), 640u);
  EXPECT_EQ(again["steps"].get<uint64_t>(), two["steps"].get<uint64_t>());
  EXPECT_EQ(again["warm_start"].get<std::string>(), first.dir);
  EXPECT_EQ(again["examples_before"].get<uint64_t>(), one["examples"].get<uint64_t>());
}

TEST(WarmStartTest, RefusesWhatDoesNotFit) {
  testing::ScratchDir dir;
  TrainOptions day1 = SmallJob();
  day1.checkpoint.dir = dir.File("ckpt");
  day1.worker.max_examples = 256;
  ASSERT_OK(TrainLocal(day1, nullptr).status());
  TrainOptions day2 = day1;
  day2.checkpoint.dir = "";
  day2.checkpoint.init_from = day1.checkpoint.dir;
  day2.candidate.model.embedding_dim = 8;
  EXPECT_THAT(TrainLocal(day2, nullptr).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "table 'video' has dim 16"));
  day2 = day1;
  day2.checkpoint.dir = "";
  day2.checkpoint.init_from = day1.checkpoint.dir;
  day2.candidate.optimizer.set_kind(OptimizerConfig::ADAM);
  EXPECT_THAT(TrainLocal(day2, nullptr).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "another --optimizer"));
  day2.checkpoint.init_from = dir.File("nothing-here");
  EXPECT_THAT(TrainLocal(day2, nullptr).status(),
              StatusIs(absl::StatusCode::kNotFound, "is neither a checkpoint"));
  day2 = day1;
  day2.model = models::kRankingKind;
  day2.checkpoint.dir = "";
  day2.checkpoint.init_from = day1.checkpoint.dir;
  EXPECT_THAT(TrainLocal(day2, nullptr).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "it holds a candidate model"));
  // What may change: the learning rate, the sampler, admission and expiry.
  day2 = day1;
  day2.checkpoint.dir = "";
  day2.checkpoint.init_from = day1.checkpoint.dir;
  day2.candidate.optimizer.set_learning_rate(0.01f);
  day2.candidate.sampler.set_num_negatives(32);
  ASSERT_OK_AND_ASSIGN(day2.tables.min_count, ParsePerTable("3", "--min_count"));
  EXPECT_OK(TrainLocal(day2, nullptr).status());
}

}  // namespace
}  // namespace vrec::train
