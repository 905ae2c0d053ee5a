#include "common/file_util.h"

#include "testutil/testutil.h"

namespace vrec {
namespace {

TEST(FileUtilTest, AtomicWriteThenRead) {
  testing::ScratchDir dir;
  const std::string path = dir.File("a.txt");
  ASSERT_OK(WriteFileAtomic(path, "hello"));
  ASSERT_OK(WriteFileAtomic(path, "world"));
  ASSERT_OK_AND_ASSIGN(std::string s, ReadFileToString(path));
  EXPECT_EQ(s, "world");
  ASSERT_OK_AND_ASSIGN(auto files, ListFiles(dir.path(), ".txt"));
  EXPECT_EQ(files.size(), 1u);  // no temporary left behind
}

TEST(FileUtilTest, MissingFileIsNotFoundAndNamed) {
  EXPECT_THAT(ReadFileToString("/nonexistent/x"),
              StatusIs(absl::StatusCode::kNotFound, "/nonexistent/x"));
}

TEST(FileUtilTest, JoinPath) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "/b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
}

Status FailsWith(absl::StatusCode code) { return Status(code, "boom"); }
StatusOr<int> Value(bool ok) {
  if (!ok) return absl::InvalidArgumentError("bad");
  return 7;
}
Status UsesMacros(bool ok, int* out) {
  VREC_ASSIGN_OR_RETURN(int v, Value(ok));
  *out = v;
  VREC_RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagateErrorsAndValues) {
  int v = 0;
  EXPECT_OK(UsesMacros(true, &v));
  EXPECT_EQ(v, 7);
  EXPECT_THAT(UsesMacros(false, &v), StatusIs(absl::StatusCode::kInvalidArgument, "bad"));
  EXPECT_THAT(FailsWith(absl::StatusCode::kDataLoss), StatusIs(absl::StatusCode::kDataLoss, "boom"));
}

}  // namespace
}  // namespace vrec
