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

}  // namespace
}  // namespace vrec::models
