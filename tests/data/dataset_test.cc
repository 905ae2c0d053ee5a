#include "data/dataset.h"

#include "common/file_util.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

using ::testing::HasSubstr;

DatasetManifest SampleManifest() {
  DatasetManifest m;
  m.set_format_version(kDatasetFormatVersion);
  m.set_source("datagen");
  m.set_seed(7);
  m.set_t_max(30.5);
  for (int i = 0; i < 3; ++i) {
    ShardInfo* s = m.add_candidate_train();
    s->set_path("candidate/" + ShardFileName("train", i, 3));
    s->set_records(100 + i);
    s->set_bytes(1000 + i);
  }
  m.add_ranking_test()->set_path("ranking/" + ShardFileName("test", 0, 1));
  m.set_videos("videos.rec");
  m.set_num_videos(1000);
  return m;
}

TEST(DatasetTest, ShardFileName) {
  EXPECT_EQ(ShardFileName("train", 3, 8), "train-00003-of-00008.rec");
  EXPECT_EQ(ShardFileName("test", 0, 1), "test-00000-of-00001.rec");
  EXPECT_EQ(ShardFileName("train", 12345, 100000), "train-12345-of-100000.rec");
}

TEST(DatasetTest, ManifestRoundTripAndJson) {
  testing::ScratchDir dir;
  const DatasetManifest m = SampleManifest();
  ASSERT_OK(WriteManifest(dir.path(), m));
  ASSERT_OK_AND_ASSIGN(DatasetManifest back, ReadManifest(dir.path()));
  EXPECT_EQ(back.SerializeAsString(), m.SerializeAsString());
  ASSERT_OK_AND_ASSIGN(std::string json, ReadFileToString(dir.File("manifest.json")));
  EXPECT_THAT(json, HasSubstr("\"candidate_train\""));
  EXPECT_THAT(json, HasSubstr("candidate/train-00002-of-00003.rec"));
  EXPECT_THAT(json, HasSubstr("\"format_version\": 1"));
  ASSERT_OK_AND_ASSIGN(auto files, ListFiles(dir.path(), ""));
  EXPECT_EQ(files.size(), 2u);  // no temporaries left
}

TEST(DatasetTest, FingerprintIsTheManifestsWhereverItLies) {
  testing::ScratchDir dir;
  const DatasetManifest m = SampleManifest();
  ASSERT_OK(MakeDirs(dir.File("a")));
  ASSERT_OK(MakeDirs(dir.File("b")));
  ASSERT_OK(WriteManifest(dir.File("a"), m));
  ASSERT_OK(WriteManifest(dir.File("b"), m));
  ASSERT_OK_AND_ASSIGN(DatasetManifest a, ReadManifest(dir.File("a")));
  ASSERT_OK_AND_ASSIGN(DatasetManifest b, ReadManifest(dir.File("b")));
  EXPECT_EQ(DatasetFingerprint(a), DatasetFingerprint(b));
  EXPECT_NE(DatasetFingerprint(a), 0u);
  DatasetManifest other = m;
  other.mutable_candidate_train(1)->set_records(102);  // one record more
  EXPECT_NE(DatasetFingerprint(other), DatasetFingerprint(m));
  other = m;
  other.set_watches_unique(true);
  EXPECT_NE(DatasetFingerprint(other), DatasetFingerprint(m));
  EXPECT_NE(DatasetFingerprint(DatasetManifest()), 0u);
}

TEST(DatasetTest, MissingManifestIsNotFoundSayingIncomplete) {
  testing::ScratchDir dir;
  EXPECT_THAT(ReadManifest(dir.path()), StatusIs(absl::StatusCode::kNotFound, "incomplete"));
  EXPECT_THAT(ReadManifest(dir.path()), StatusIs(absl::StatusCode::kNotFound, dir.path()));
}

TEST(DatasetTest, GarbageOrUnknownVersionIsDataLoss) {
  testing::ScratchDir dir;
  ASSERT_OK(WriteFileAtomic(dir.File("manifest.pb"), std::string("\xff\xff\xff\xff", 4)));
  EXPECT_THAT(ReadManifest(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, dir.File("manifest.pb")));
  DatasetManifest m = SampleManifest();
  m.set_format_version(2);
  ASSERT_OK(WriteManifest(dir.path(), m));
  EXPECT_THAT(ReadManifest(dir.path()), StatusIs(absl::StatusCode::kDataLoss, "format_version 2"));
  m.set_format_version(0);  // never written by vrec: an empty or foreign message
  ASSERT_OK(WriteManifest(dir.path(), m));
  EXPECT_THAT(ReadManifest(dir.path()), StatusIs(absl::StatusCode::kDataLoss, "format_version 0"));
  m = SampleManifest();
  m.mutable_candidate_train(1)->clear_path();
  ASSERT_OK(WriteManifest(dir.path(), m));
  EXPECT_THAT(ReadManifest(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, "candidate_train[1] has an empty path"));
}

TEST(DatasetTest, ShardPathsJoinTheFolder) {
  const DatasetManifest m = SampleManifest();
  EXPECT_EQ(ShardPaths("/data/w", m.candidate_train()),
            (std::vector<std::string>{"/data/w/candidate/train-00000-of-00003.rec",
                                      "/data/w/candidate/train-00001-of-00003.rec",
                                      "/data/w/candidate/train-00002-of-00003.rec"}));
  EXPECT_EQ(ShardPaths("/data/w/", m.ranking_test()),
            (std::vector<std::string>{"/data/w/ranking/test-00000-of-00001.rec"}));
  EXPECT_TRUE(ShardPaths("/x", m.ranking_train()).empty());
}

TEST(CheckShardSizesTest, AFileCutShortOrMissingIsNamed) {
  testing::ScratchDir dir;
  google::protobuf::RepeatedPtrField<ShardInfo> shards;
  ShardInfo* a = shards.Add();
  a->set_path("a.rec");
  a->set_bytes(10);
  a->set_records(2);
  ShardInfo* old = shards.Add();  // a manifest without sizes: not checked
  old->set_path("old.rec");
  ASSERT_OK(WriteFileAtomic(dir.File("a.rec"), std::string(10, 'x')));
  ASSERT_OK(WriteFileAtomic(dir.File("old.rec"), "y"));
  EXPECT_OK(CheckShardSizes(dir.path(), shards));
  ASSERT_OK(WriteFileAtomic(dir.File("a.rec"), std::string(6, 'x')));
  EXPECT_THAT(CheckShardSizes(dir.path(), shards),
              StatusIs(absl::StatusCode::kDataLoss,
                       "a.rec holds 6 bytes, but the dataset's "
                       "manifest says 10 (2 records): the file was "
                       "cut short"));
  std::remove(dir.File("a.rec").c_str());
  EXPECT_THAT(CheckShardSizes(dir.path(), shards), StatusIs(absl::StatusCode::kNotFound, "a.rec"));
}

}  // namespace
}  // namespace vrec
