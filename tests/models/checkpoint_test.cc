// Checkpoint folders read back whole or not at all: a damaged newest
// checkpoint gives way to the one before it.
#include "models/checkpoint.h"

#include <fstream>

#include "common/file_util.h"
#include "testutil/testutil.h"

namespace vrec::models {
namespace {

// A complete one-server checkpoint `sequence` in `root` (its rows folder
// empty: these tests do not restore it).
void Commit(const std::string& root, uint64_t sequence, uint64_t examples) {
  const std::string dir = JoinPath(root, CheckpointName(sequence));
  ASSERT_OK(MakeDirs(JoinPath(dir, ServerCheckpointDir(0))));
  ServerState state;
  state.set_rows(3);
  ASSERT_OK(WriteFileAtomic(JoinPath(dir, ServerStateFile(0)), state.SerializeAsString()));
  CheckpointManifest m;
  m.set_format_version(kCheckpointFormatVersion);
  m.set_sequence(sequence);
  m.mutable_model()->set_examples_trained(examples);
  m.set_num_servers(1);
  m.add_server_dirs(ServerCheckpointDir(0));
  m.add_server_states(ServerStateFile(0));
  ASSERT_OK(CommitCheckpoint(root, m, /*keep=*/5).status());
}

void FlipByte(const std::string& path, size_t at) {
  std::string bytes = ReadFileToString(path).value();
  bytes[at] ^= 0x20;
  ASSERT_OK(WriteFileAtomic(path, bytes));
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
              StatusIs(absl::StatusCode::kDataLoss, "server 0's state"));
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
