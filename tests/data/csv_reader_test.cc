#include "data/csv_reader.h"

#include <fstream>
#include <string>
#include <vector>

#include "testutil/testutil.h"

namespace vrec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Row = std::vector<std::string>;

// Every outcome of reading a file: the records with their start lines, and
// the errors (which the reader skips past) in order.
struct ReadAll {
  std::vector<Row> rows;
  std::vector<int64_t> lines;
  std::vector<std::string> errors;
};

class CsvReaderTest : public ::testing::TestWithParam<size_t> {
 protected:
  std::string Write(const std::string& contents) {
    const std::string path = dir_.File("in.csv");
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  ReadAll Read(const std::string& contents, size_t max_record_bytes = 1 << 20) {
    CsvReaderOptions options;
    options.buffer_bytes = GetParam();  // small buffers split records across refills
    options.max_record_bytes = max_record_bytes;
    auto reader = CsvReader::Open(Write(contents), options);
    EXPECT_OK(reader);
    ReadAll out;
    std::vector<std::string_view> fields;
    for (int guard = 0; guard < 1000; ++guard) {
      StatusOr<bool> more = (*reader)->Next(&fields);
      if (!more.ok()) {
        EXPECT_EQ(more.status().code(), absl::StatusCode::kInvalidArgument) << more.status();
        out.errors.emplace_back(more.status().message());
        continue;
      }
      if (!*more) return out;
      out.rows.emplace_back(fields.begin(), fields.end());
      out.lines.push_back((*reader)->line());
    }
    ADD_FAILURE() << "reader did not reach the end";
    return out;
  }

  testing::ScratchDir dir_;
};

TEST_P(CsvReaderTest, PlainRecordsAndEmptyFields) {
  ReadAll r = Read("a,b,c\n1,,3\n,,\nx,y,z");
  EXPECT_THAT(r.rows, ElementsAre(Row{"a", "b", "c"}, Row{"1", "", "3"}, Row{"", "", ""},
                                  Row{"x", "y", "z"}));
  EXPECT_THAT(r.lines, ElementsAre(1, 2, 3, 4));
  EXPECT_TRUE(r.errors.empty());
}

TEST_P(CsvReaderTest, QuotedFieldsWithCommasQuotesAndNewlines) {
  ReadAll r = Read(
      "id,title\n"
      "1,\"American President, The (1995)\"\n"
      "2,\"\"\"Great Performances\"\" Cats (1998)\"\n"
      "3,\"two\nlines, and \"\"quotes\"\"\"\n"
      "4,\"\"\n"
      "5,say \"hi\"\n");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_THAT(r.rows, ElementsAre(Row{"id", "title"}, Row{"1", "American President, The (1995)"},
                                  Row{"2", "\"Great Performances\" Cats (1998)"},
                                  Row{"3", "two\nlines, and \"quotes\""}, Row{"4", ""},
                                  Row{"5", "say \"hi\""}));
  // The record with a quoted line break starts on line 4 and takes two lines.
  EXPECT_THAT(r.lines, ElementsAre(1, 2, 3, 4, 6, 7));
}

TEST_P(CsvReaderTest, CrlfLineEndingsAndBom) {
  ReadAll r = Read("\xEF\xBB\xBFuserId,movieId\r\n1,2\r\n\"3\",\"a\r\nb\"\r\n4,\r\n");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_THAT(r.rows, ElementsAre(Row{"userId", "movieId"}, Row{"1", "2"}, Row{"3", "a\r\nb"},
                                  Row{"4", ""}));
  EXPECT_THAT(r.lines, ElementsAre(1, 2, 3, 5));
}

TEST_P(CsvReaderTest, EmptyLinesAreSkippedButCounted) {
  ReadAll r = Read("a\n\n\r\nb\n\n");
  EXPECT_THAT(r.rows, ElementsAre(Row{"a"}, Row{"b"}));
  EXPECT_THAT(r.lines, ElementsAre(1, 4));
}

TEST_P(CsvReaderTest, EmptyFileHasNoRecords) {
  EXPECT_TRUE(Read("").rows.empty());
  EXPECT_TRUE(Read("\xEF\xBB\xBF").rows.empty());
}

TEST_P(CsvReaderTest, UnterminatedQuoteNamesItsLineAndReadingResumesAfterIt) {
  ReadAll r = Read("h1,h2\n1,2\n3,\"oops\n5,6\n7,8\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("in.csv:3: unterminated quoted field"));
  // Resynchronised at the line after the one the quote opened on.
  EXPECT_THAT(r.rows, ElementsAre(Row{"h1", "h2"}, Row{"1", "2"}, Row{"5", "6"}, Row{"7", "8"}));
  EXPECT_THAT(r.lines, ElementsAre(1, 2, 4, 5));
}

TEST_P(CsvReaderTest, GarbageAfterClosingQuoteIsAnErrorOnItsLine) {
  ReadAll r = Read("a,b\n\"x\ny\"z,1\n2,3\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0],
              HasSubstr("in.csv:3: unexpected 'z' after the closing quote of field 1"));
  EXPECT_THAT(r.rows, ElementsAre(Row{"a", "b"}, Row{"2", "3"}));
  EXPECT_THAT(r.lines, ElementsAre(1, 4));
}

TEST_P(CsvReaderTest, OverlongRecordIsAnErrorAndSkipped) {
  // A stray quote on line 2 would swallow the rest of the file; the record
  // limit stops it and reading resumes on line 3.
  ReadAll r = Read("a,b\n1,\"2\n3,4\n5,6\n7,8\n9,10\n", /*max_record_bytes=*/8);
  ASSERT_GE(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("in.csv:2: record longer than 8 bytes"));
  EXPECT_THAT(r.rows, ElementsAre(Row{"a", "b"}, Row{"3", "4"}, Row{"5", "6"}, Row{"7", "8"},
                                  Row{"9", "10"}));
}

TEST_P(CsvReaderTest, OffsetReachesFileSize) {
  const std::string contents = "a,b\n\"1\",2\n";
  CsvReaderOptions options;
  options.buffer_bytes = GetParam();
  auto reader = CsvReader::Open(Write(contents), options);
  ASSERT_OK(reader);
  std::vector<std::string_view> fields;
  int records = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(bool more, (*reader)->Next(&fields));
    if (!more) break;
    ++records;
  }
  EXPECT_EQ(records, 2);
  EXPECT_EQ((*reader)->offset(), contents.size());
  EXPECT_EQ((*reader)->file_size(), contents.size());
}

INSTANTIATE_TEST_SUITE_P(BufferSizes, CsvReaderTest, ::testing::Values(16, 17, 23, 1 << 20));

TEST(CsvReaderOpenTest, MissingFileIsNotFound) {
  EXPECT_THAT(CsvReader::Open("/nonexistent/x.csv"),
              StatusIs(absl::StatusCode::kNotFound, "/nonexistent/x.csv"));
}

TEST(CsvReaderOpenTest, DirectoryIsRejected) {
  testing::ScratchDir dir;
  EXPECT_THAT(CsvReader::Open(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a regular file"));
}

TEST(CsvReaderOpenTest, OtherDelimiter) {
  testing::ScratchDir dir;
  std::ofstream(dir.File("t.tsv")) << "a\tb,c\n\"x\ty\"\t2\n";
  CsvReaderOptions options;
  options.delimiter = '\t';
  ASSERT_OK_AND_ASSIGN(auto reader, CsvReader::Open(dir.File("t.tsv"), options));
  std::vector<std::string_view> f;
  ASSERT_OK_AND_ASSIGN(bool more, reader->Next(&f));
  ASSERT_TRUE(more);
  EXPECT_THAT(f, ElementsAre("a", "b,c"));
  ASSERT_OK_AND_ASSIGN(more, reader->Next(&f));
  ASSERT_TRUE(more);
  EXPECT_THAT(f, ElementsAre("x\ty", "2"));
}

}  // namespace
}  // namespace vrec
