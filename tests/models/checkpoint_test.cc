// Checkpoint folders read back whole or not at all: a damaged newest
// checkpoint gives way to the one before it, whether the damage is in its
// MANIFEST, a server's state or a file of a server's RocksDB checkpoint.
#include "models/checkpoint.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/random.h"
#include "ps/server_storage.h"
#include "testutil/testutil.h"

namespace vrec::models {
namespace {

ModelConfig OneTable() {
  ModelConfig m;
  m.set_seed(5);
  TableConfig* t = m.add_tables();
  t->set_name("video");
  t->set_dim(8);
  t->mutable_initializer()->set_kind(InitializerConfig::NORMAL);
  t->mutable_initializer()->set_scale(0.05f);
  t->mutable_optimizer()->set_kind(OptimizerConfig::ADAGRAD);
  t->mutable_optimizer()->set_learning_rate(0.1f);
  return m;
}

// Server 0's part of the checkpoint folder `dir`: a real RocksDB checkpoint
// (SST files, MANIFEST-*, CURRENT, OPTIONS-*) of `rows` rows, and its state.
void WriteServerPart(const std::string& dir, const std::string& spill, int rows) {
  ps::ServerStorageOptions o;
  o.spill_path = spill;
  o.num_partitions = 2;
  o.dense_block_floats = 1024;
  ASSERT_OK_AND_ASSIGN(auto storage, ps::ServerStorage::Create(OneTable(), o));
  std::vector<uint64_t> keys(rows);
  for (int i = 0; i < rows; ++i) keys[i] = 1000 + i;
  std::vector<float> values(keys.size() * 8);
  ASSERT_OK(storage->Find("video")->Pull(keys, absl::MakeSpan(values)));
  ASSERT_OK(WriteServerCheckpoint(storage.get(), dir, 0).status());
}

// A complete one-server checkpoint `sequence` in `root`.
void Commit(const std::string& root, uint64_t sequence, uint64_t examples) {
  const std::string dir = JoinPath(root, CheckpointName(sequence));
  WriteServerPart(dir, JoinPath(root, absl::StrCat("spill-", sequence)), 200);
  CheckpointManifest m;
  m.set_format_version(kCheckpointFormatVersion);
  m.set_sequence(sequence);
  m.mutable_model()->set_examples_trained(examples);
  m.set_num_servers(1);
  m.add_server_dirs(ServerCheckpointDir(0));
  m.add_server_states(ServerStateFile(0));
  ASSERT_OK(CommitCheckpoint(root, m, /*keep=*/5).status());
}

// Flips one bit of the byte at `at` in place, as bit rot would.
void FlipByte(const std::string& path, size_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekg(static_cast<std::streamoff>(at));
  const char c = static_cast<char>(f.get() ^ 0x20);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(c);
  ASSERT_TRUE(f) << path << " at " << at;
}

// A file of server 0's RocksDB checkpoint in `dir` ending with `suffix`,
// relative to `dir`.
std::string ServerFile(const std::string& dir, const std::string& suffix) {
  const std::string server = JoinPath(dir, ServerCheckpointDir(0));
  StatusOr<std::vector<std::string>> files = ListFiles(server, suffix);
  EXPECT_TRUE(files.ok() && !files->empty()) << "no " << suffix << " file in " << server;
  if (!files.ok() || files->empty()) return "";
  return JoinPath(ServerCheckpointDir(0),
                  std::filesystem::path(files->front()).filename().string());
}

// Rewrites the MANIFEST in `dir` as a checkpoint from before the file list
// was kept wrote it (the checksum trailer, no files).
void WriteOldStyleManifest(const std::string& dir, CheckpointManifest m) {
  m.clear_files();
  std::string bytes = m.SerializeAsString();
  const uint32_t crc = MaskCrc(Crc32c(bytes.data(), bytes.size()));
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  bytes.append("vck\x01", 4);
  ASSERT_OK(WriteFileAtomic(JoinPath(dir, "MANIFEST"), bytes));
}

TEST(CheckpointTest, TheManifestListsEveryFileOfTheServersParts) {
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint found, FindCheckpoint(dir.path()));
  std::vector<std::string> listed;
  for (const CheckpointFile& f : found.manifest.files()) {
    listed.push_back(f.path());
    const std::string path = JoinPath(found.dir, f.path());
    ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFileToString(path));
    EXPECT_EQ(f.size(), bytes.size()) << path;
    EXPECT_EQ(f.crc32c(), Crc32c(bytes.data(), bytes.size())) << path;
  }
  EXPECT_THAT(listed, ::testing::Contains(ServerStateFile(0)));
  EXPECT_THAT(listed, ::testing::Contains(JoinPath(ServerCheckpointDir(0), "CURRENT")));
  EXPECT_THAT(listed, ::testing::Contains(ServerFile(found.dir, ".sst")));
  EXPECT_THAT(listed, ::testing::Not(::testing::Contains("MANIFEST")));
  EXPECT_THAT(listed, ::testing::Not(::testing::Contains("manifest.json")));
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
}

TEST(CheckpointTest, AFlippedByteInAnSstGivesWayToThePreviousCheckpoint) {
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  Commit(dir.path(), 2, 200);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint newest, FindCheckpoint(dir.path()));
  ASSERT_EQ(newest.manifest.model().examples_trained(), 200u);

  const std::string sst = ServerFile(newest.dir, ".sst");
  FlipByte(JoinPath(newest.dir, sst), 10);
  EXPECT_THAT(ReadCheckpoint(newest.dir),
              StatusIs(absl::StatusCode::kDataLoss, sst + ": checksum mismatch"));
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint previous, FindCheckpoint(dir.path()));
  EXPECT_EQ(previous.manifest.model().examples_trained(), 100u);

  // Given the damaged folder itself, the error names it and the file.
  const StatusOr<FoundCheckpoint> direct = FindCheckpoint(newest.dir);
  EXPECT_THAT(direct, StatusIs(absl::StatusCode::kDataLoss, newest.dir));
  EXPECT_THAT(direct, StatusIs(absl::StatusCode::kDataLoss, sst));
  EXPECT_THAT(direct, StatusIs(absl::StatusCode::kDataLoss, "no older checkpoint is tried"));
}

TEST(CheckpointTest, ATruncatedStateFileIsNamedWithItsSize) {
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  Commit(dir.path(), 2, 200);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint newest, FindCheckpoint(dir.path()));
  const std::string state = JoinPath(newest.dir, ServerStateFile(0));
  const uint64_t size = std::filesystem::file_size(state);
  std::filesystem::resize_file(state, size - 1);
  EXPECT_THAT(ReadCheckpoint(newest.dir),
              StatusIs(absl::StatusCode::kDataLoss, absl::StrCat(ServerStateFile(0), " has size ",
                                                                 size - 1, ", expected ", size)));
  EXPECT_EQ(FindCheckpoint(dir.path())->manifest.model().examples_trained(), 100u);
}

TEST(CheckpointTest, ADeletedFileOrRowsFolderIsNamed) {
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  Commit(dir.path(), 2, 200);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint newest, FindCheckpoint(dir.path()));
  const std::string sst = ServerFile(newest.dir, ".sst");
  ASSERT_TRUE(std::filesystem::remove(JoinPath(newest.dir, sst)));
  EXPECT_THAT(ReadCheckpoint(newest.dir),
              StatusIs(absl::StatusCode::kDataLoss, "file " + sst + " is missing"));
  EXPECT_EQ(FindCheckpoint(dir.path())->manifest.model().examples_trained(), 100u);

  std::filesystem::remove_all(JoinPath(newest.dir, ServerCheckpointDir(0)));
  EXPECT_THAT(ReadCheckpoint(newest.dir),
              StatusIs(absl::StatusCode::kDataLoss, "rows folder server-00000 is missing"));
  EXPECT_EQ(FindCheckpoint(dir.path())->manifest.model().examples_trained(), 100u);
}

TEST(CheckpointTest, AFlippedByteAnywhereInAnyListedFileIsCaught) {
  const uint64_t seed = testing::TestSeed(20);
  Rng rng(seed);
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint found, FindCheckpoint(dir.path()));
  ASSERT_GT(found.manifest.files_size(), 3);
  for (const CheckpointFile& f : found.manifest.files()) {
    if (f.size() == 0) continue;
    const std::string path = JoinPath(found.dir, f.path());
    const size_t at = rng.UniformInt(f.size());
    FlipByte(path, at);
    EXPECT_THAT(ReadCheckpoint(found.dir), StatusIs(absl::StatusCode::kDataLoss, f.path()))
        << "byte " << at << " of " << f.path() << ", seed " << seed;
    FlipByte(path, at);  // whole again
    ASSERT_OK(ReadCheckpoint(found.dir).status());
  }
}

TEST(CheckpointTest, AManifestWithoutTheFileListStillReads) {
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint found, FindCheckpoint(dir.path()));
  WriteOldStyleManifest(found.dir, found.manifest);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint again, FindCheckpoint(dir.path()));
  EXPECT_EQ(again.manifest.model().examples_trained(), 100u);
  EXPECT_EQ(again.manifest.files_size(), 0);
  // Its rows are not verified (nothing to compare with); its folders still are.
  FlipByte(JoinPath(found.dir, ServerFile(found.dir, ".sst")), 10);
  EXPECT_OK(ReadCheckpoint(found.dir).status());
  std::filesystem::remove_all(JoinPath(found.dir, ServerCheckpointDir(0)));
  EXPECT_THAT(ReadCheckpoint(found.dir),
              StatusIs(absl::StatusCode::kDataLoss, "rows folder server-00000 is missing"));
}

TEST(CheckpointTest, ADamagedNewestCheckpointGivesWayToThePreviousOne) {
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  Commit(dir.path(), 2, 200);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint newest, FindCheckpoint(dir.path()));
  EXPECT_EQ(newest.manifest.model().examples_trained(), 200u);

  // A MANIFEST edit that still parses is caught by its checksum.
  const std::string manifest = JoinPath(newest.dir, "MANIFEST");
  FlipByte(manifest, 3);
  EXPECT_THAT(ReadCheckpoint(newest.dir),
              StatusIs(absl::StatusCode::kDataLoss, "checksum mismatch"));
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint previous, FindCheckpoint(dir.path()));
  EXPECT_EQ(previous.manifest.model().examples_trained(), 100u);

  // A damaged server state, then a missing rows folder, name the checkpoint.
  FlipByte(manifest, 3);  // whole again
  ASSERT_OK(WriteFileAtomic(JoinPath(newest.dir, ServerStateFile(0)), "\xff\xff\xff"));
  EXPECT_THAT(ReadCheckpoint(newest.dir),
              StatusIs(absl::StatusCode::kDataLoss, ServerStateFile(0) + " has size 3"));
  EXPECT_EQ(FindCheckpoint(dir.path())->manifest.model().examples_trained(), 100u);

  // Every one damaged: an error naming the newest's damage.
  FlipByte(JoinPath(previous.dir, "MANIFEST"), 3);
  EXPECT_THAT(FindCheckpoint(dir.path()),
              StatusIs(absl::StatusCode::kDataLoss, "every complete checkpoint"));
}

TEST(CheckpointTest, AManifestWrittenWithoutItsChecksumStillReads) {
  testing::ScratchDir dir;
  Commit(dir.path(), 1, 100);
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint found, FindCheckpoint(dir.path()));
  const std::string manifest = JoinPath(found.dir, "MANIFEST");
  ASSERT_OK(WriteFileAtomic(manifest, found.manifest.SerializeAsString()));  // the old format
  ASSERT_OK_AND_ASSIGN(FoundCheckpoint again, FindCheckpoint(dir.path()));
  EXPECT_EQ(again.manifest.model().examples_trained(), 100u);
}

}  // namespace
}  // namespace vrec::models
