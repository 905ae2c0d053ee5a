#include "data/table_reader.h"

#include "common/file_util.h"
#include "testutil/gzip_file.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

using Row = std::vector<std::optional<std::string>>;

std::vector<Row> ReadAll(const std::string& path, std::vector<std::string> wanted,
                         std::vector<std::string>* errors = nullptr) {
  std::vector<Row> rows;
  auto reader = TableReader::Open(path, std::move(wanted));
  EXPECT_OK(reader.status());
  if (!reader.ok()) return rows;
  Row row;
  while (true) {
    StatusOr<bool> more = (*reader)->Next(&row);
    if (!more.ok()) {
      EXPECT_TRUE(absl::IsInvalidArgument(more.status())) << more.status();
      if (errors != nullptr) errors->push_back(std::string(more.status().message()));
      if (!absl::IsInvalidArgument(more.status())) break;
      continue;
    }
    if (!*more) break;
    rows.push_back(row);
  }
  return rows;
}

const char kCsv[] =
    "User,item,timestamp,event,watch_seconds,extra\n"
    "u1,v1,1700000000,watch,31.5,x\n"
    "u2,\"v,2\",1700000001,,,\n"
    "u1,v3,1700000002,impression,,y\n";
const char kJsonl[] =
    "{\"user\": \"u1\", \"item\": \"v1\", \"timestamp\": 1700000000, \"event\": \"watch\", "
    "\"watch_seconds\": 31.5, \"extra\": \"x\"}\n"
    "{\"user\": \"u2\", \"item\": \"v,2\", \"timestamp\": 1700000001, \"event\": null}\n"
    "\n"
    "{\"timestamp\": 1700000002, \"user\": \"u1\", \"item\": \"v3\", \"event\": \"impression\", "
    "\"other\": true}\r\n";

TEST(TableReaderTest, CsvAndJsonLinesPlainOrGzipReadTheSameRows) {
  testing::ScratchDir dir;
  ASSERT_OK(WriteFileAtomic(dir.File("e.csv"), kCsv));
  ASSERT_OK(WriteFileAtomic(dir.File("e.jsonl"), kJsonl));
  testing::WriteGzip(dir.File("e.csv.gz"), kCsv);
  testing::WriteGzip(dir.File("e.jsonl.gz"), kJsonl);
  const std::vector<std::string> wanted = {"user",  "item",          "timestamp",
                                           "event", "watch_seconds", "query"};
  const std::vector<Row> want = {
      {"u1", "v1", "1700000000", "watch", "31.5", std::nullopt},
      {"u2", "v,2", "1700000001", std::nullopt, std::nullopt, std::nullopt},
      {"u1", "v3", "1700000002", "impression", std::nullopt, std::nullopt}};
  for (const char* name : {"e.csv", "e.jsonl", "e.csv.gz", "e.jsonl.gz"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(ReadAll(dir.File(name), wanted), want);
  }
  ASSERT_OK_AND_ASSIGN(auto csv, TableReader::Open(dir.File("e.csv"), wanted));
  EXPECT_EQ(csv->unknown_columns(), std::set<std::string>({"extra"}));
  ASSERT_OK_AND_ASSIGN(auto json, TableReader::Open(dir.File("e.jsonl.gz"), wanted));
  EXPECT_TRUE(json->json_lines());
  Row row;
  while (*json->Next(&row)) {
  }
  EXPECT_EQ(json->unknown_columns(), std::set<std::string>({"extra", "other"}));
  EXPECT_EQ(json->line(), 4);
}

TEST(TableReaderTest, BadJsonLinesAreNamedAndSkipped) {
  testing::ScratchDir dir;
  ASSERT_OK(WriteFileAtomic(dir.File("bad.jsonl"),
                            "{\"user\": \"a\"}\n"
                            "{\"user\": \n"
                            "[1, 2]\n"
                            "{\"user\": {\"nested\": 1}}\n"
                            "{\"user\": \"b\"}"));  // no final line feed
  std::vector<std::string> errors;
  const std::vector<Row> rows = ReadAll(dir.File("bad.jsonl"), {"user"}, &errors);
  EXPECT_EQ(rows, (std::vector<Row>{{"a"}, {"b"}}));
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_THAT(errors[0], ::testing::HasSubstr("bad.jsonl:2: not a JSON value"));
  EXPECT_THAT(errors[1], ::testing::HasSubstr("bad.jsonl:3: not a JSON object"));
  EXPECT_THAT(errors[2], ::testing::HasSubstr("bad.jsonl:4: 'user' is a JSON object"));
}

TEST(TableReaderTest, AnOverlongLineIsReportedAndTheNextOneRead) {
  testing::ScratchDir dir;
  const std::string huge = "{\"user\": \"" + std::string(300000, 'x') + "\"}\n";
  ASSERT_OK(WriteFileAtomic(dir.File("long.jsonl"), huge + "{\"user\": \"short\"}\n"));
  TableReaderOptions o;
  o.max_row_bytes = 100000;
  ASSERT_OK_AND_ASSIGN(auto t, TableReader::Open(dir.File("long.jsonl"), {"user"}, o));
  Row row;
  EXPECT_THAT(t->Next(&row).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "long.jsonl:1: a line longer than"));
  ASSERT_OK_AND_ASSIGN(bool more, t->Next(&row));
  ASSERT_TRUE(more);
  EXPECT_EQ(row[0], "short");
  EXPECT_EQ(t->line(), 2);
}

TEST(TableReaderTest, ACsvWithoutHeaderOrWithADuplicateColumnIsRefused) {
  testing::ScratchDir dir;
  ASSERT_OK(WriteFileAtomic(dir.File("empty.csv"), ""));
  EXPECT_THAT(TableReader::Open(dir.File("empty.csv"), {"user"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "no header"));
  ASSERT_OK(WriteFileAtomic(dir.File("dup.csv"), "user,USER\n1,2\n"));
  EXPECT_THAT(TableReader::Open(dir.File("dup.csv"), {"user"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "appears twice"));
}

}  // namespace
}  // namespace vrec
