// The model layer's specs and saved-model folders.
#include <fstream>

#include "data/dataset.h"
#include "model/candidate_model.h"
#include "models/candidate_spec.h"
#include "models/ranking_spec.h"
#include "models/saved_model.h"
#include "testutil/testutil.h"
#include "testutil/tiny_world.h"

namespace vrec::models {
namespace {

using testing::TinyDataset;

CandidateSpecOptions SmallSpecOptions() {
  CandidateSpecOptions o;
  o.seed = 5;
  o.model.embedding_dim = 8;
  o.model.region_dim = 2;
  o.model.device_dim = 3;
  o.model.tower = {24, 12};
  o.model.output_dim = 12;
  return o;
}

TEST(ModelSpecTest, CandidateTablesAndDenseBlocksCoverTheLayout) {
  ASSERT_OK_AND_ASSIGN(ModelSpec spec, CandidateSpec(SmallSpecOptions()));
  EXPECT_EQ(spec.kind, "candidate");
  for (const char* t : {kVideoTable, kTokenTable, kRegionTable, kDeviceTable, kVideoOutTable}) {
    EXPECT_GE(spec.TableIndex(t), 0) << t;
  }
  EXPECT_EQ(spec.Table(spec.TableIndex(kVideoOutTable)).dim(), 13u);  // [w | b]
  ASSERT_OK_AND_ASSIGN(auto model, model::CandidateModel<float>::Create(SmallSpecOptions().model));
  EXPECT_EQ(spec.DenseSize(), static_cast<uint64_t>(model.layout().size()));
  uint64_t covered = 0;
  for (const DenseTableInfo& d : spec.dense) {
    const TableConfig& t = spec.Table(spec.TableIndex(d.table()));
    EXPECT_TRUE(t.dense());
    EXPECT_EQ(t.dense_size(), d.size());
    const bool weights = d.block().size() > 2 && d.block().substr(d.block().size() - 2) == "/w";
    EXPECT_EQ(spec.glorot_fans.count(d.table()), weights ? 1u : 0u) << d.table();
    covered += d.size();
  }
  uint64_t layout_floats = 0;
  for (const auto& b : model.layout().blocks()) layout_floats += b.size();
  EXPECT_EQ(covered, layout_floats);
}

TEST(SavedModelTest, MissingOrCorruptManifestIsAClearError) {
  testing::ScratchDir dir;
  auto missing = SavedModel::Open(dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), ::testing::HasSubstr("model.pb"));
  std::ofstream(dir.File("model.pb")) << "garbage";
  auto corrupt = SavedModel::Open(dir.path());
  ASSERT_FALSE(corrupt.ok());
  EXPECT_THAT(corrupt.status().message(), ::testing::HasSubstr(dir.File("model.pb")));
}

TEST(RankingSpecTest, QuantilesAreRequiredAndChecked) {
  RankingSpecOptions ro;
  ro.tower = {8};
  ASSERT_OK_AND_ASSIGN(ModelSpec spec, RankingSpec(ro));
  EXPECT_EQ(RankingOptionsFromSpec(spec).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(TinyDataset()));
  ASSERT_OK_AND_ASSIGN(spec.quantiles,
                       FitRankingQuantiles(ShardPaths(TinyDataset(), m.ranking_train()), 10, 1));
  ASSERT_EQ(spec.quantiles.size(), 6u);
  EXPECT_EQ(spec.quantiles[0].quantiles_size(), 11);
  EXPECT_OK(RankingOptionsFromSpec(spec).status());
  spec.quantiles[2].set_feature("something_else");
  EXPECT_FALSE(RankingOptionsFromSpec(spec).ok());
}

TEST(CandidateSpecTest, ExampleAgeQuantilesAreFittedAndReachTheModelOptions) {
  std::vector<CandidateExample> examples(1000);
  for (size_t i = 0; i < examples.size(); ++i) examples[i].set_example_age(7.0 * i);
  MemoryExamples<CandidateExample> source(&examples, 0, 1);
  ASSERT_OK_AND_ASSIGN(QuantileInfo q, FitExampleAgeQuantiles(&source, 0, 10, 1));
  EXPECT_EQ(q.feature(), kExampleAgeFeature);
  ASSERT_EQ(q.quantiles_size(), 11);
  EXPECT_EQ(q.quantiles(0), 0.0);
  EXPECT_EQ(q.quantiles(10), 6993.0);  // one pass: the source's next epoch is not read
  ASSERT_OK_AND_ASSIGN(ModelSpec spec, CandidateSpec(SmallSpecOptions()));
  ASSERT_OK_AND_ASSIGN(auto plain, CandidateOptionsFromSpec(spec));
  EXPECT_TRUE(plain.example_age_quantiles.empty());  // a model saved before: raw days
  spec.quantiles = {q};
  ASSERT_OK_AND_ASSIGN(auto fitted, CandidateOptionsFromSpec(spec));
  EXPECT_EQ(fitted.example_age_quantiles.size(), 11u);
  spec.quantiles[0].set_feature("video_age");
  EXPECT_THAT(CandidateOptionsFromSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, "video_age"));
  struct Empty : ExampleSource<CandidateExample> {
    StatusOr<bool> Next(CandidateExample*) override { return false; }
    int epoch() const override { return 0; }
    SourcePosition Position() const override { return {}; }
    Status Seek(const SourcePosition&) override { return absl::OkStatus(); }
  } empty;
  EXPECT_THAT(FitExampleAgeQuantiles(&empty, 0, 10, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, "no candidate training examples"));
}

}  // namespace
}  // namespace vrec::models
