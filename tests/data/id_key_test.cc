#include "data/id_key.h"

#include "common/file_util.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

// The keys docs/data_format.md states (computed there by its formula in
// Python: SplitMix64 of FNV-1a-64).
TEST(IdKeyTest, KeysAreTheDocumentedOnes) {
  EXPECT_EQ(IdKey(""), 0xc3817c016ba4ff30ULL);
  EXPECT_EQ(IdKey("a"), 0x5f29c2aadd9b8527ULL);
  EXPECT_EQ(IdKey("video-123"), 0x7c1ee68f76ae9819ULL);
  EXPECT_EQ(IdKey("\xe6\x97\xa5\xe6\x9c\xac"), 0xf4288c2908dbf755ULL);  // 日本
  EXPECT_EQ(IdKey(std::string_view("\xff\x00x", 3)), 0x466ec7b50071a170ULL);
  EXPECT_NE(IdKey("video-123"), IdKey("video-124"));
}

TEST(IdKeyTest, EscapingRoundTripsAnyBytes) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  for (const std::string& id : {std::string("plain"), std::string("tab\there"), std::string(""),
                                std::string("back\\slash\nnew\rline"), all}) {
    const std::string escaped = EscapeId(id);
    EXPECT_EQ(escaped.find('\t'), std::string::npos);
    EXPECT_EQ(escaped.find('\n'), std::string::npos);
    ASSERT_OK_AND_ASSIGN(std::string back, UnescapeId(escaped));
    EXPECT_EQ(back, id);
  }
  EXPECT_THAT(UnescapeId("a\\").status(), StatusIs(absl::StatusCode::kInvalidArgument, "lone"));
  EXPECT_THAT(UnescapeId("\\x4").status(), StatusIs(absl::StatusCode::kInvalidArgument, "hex"));
  EXPECT_THAT(UnescapeId("\\q").status(), StatusIs(absl::StatusCode::kInvalidArgument, "\\q"));
}

TEST(IdKeyTest, TheTableRefusesACollisionNamingBothIds) {
  IdTable t("item");
  ASSERT_OK_AND_ASSIGN(uint64_t k, t.Add("movie 1"));
  EXPECT_EQ(k, IdKey("movie 1"));
  ASSERT_OK(t.Add("movie 1").status());  // the same id again is fine
  EXPECT_THAT(t.AddWithKey(k, "movie 2"),
              StatusIs(absl::StatusCode::kAlreadyExists, "\"movie 1\" and \"movie 2\""));
  ASSERT_NE(t.Find(k), nullptr);
  EXPECT_EQ(*t.Find(k), "movie 1");
  EXPECT_EQ(t.Find(k + 1), nullptr);
}

TEST(IdKeyTest, TablesSurviveAFileAndABadLineIsNamed) {
  testing::ScratchDir dir;
  IdTable t("user");
  for (const char* id : {"u1", "ünïcode", "with\ttab", "x\xff"}) ASSERT_OK(t.Add(id).status());
  ASSERT_OK(t.Write(dir.File("users.tsv")));
  ASSERT_OK_AND_ASSIGN(IdTable back, IdTable::Read(dir.File("users.tsv"), "user"));
  EXPECT_EQ(back.size(), 4u);
  ASSERT_NE(back.Find(IdKey("with\ttab")), nullptr);
  EXPECT_EQ(*back.Find(IdKey("x\xff")), "x\xff");
  ASSERT_OK(WriteFileAtomic(dir.File("bad.tsv"), "0000000000000001\tnot its key\n"));
  EXPECT_THAT(IdTable::Read(dir.File("bad.tsv"), "user").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "bad.tsv:1: the key"));
}

}  // namespace
}  // namespace vrec
