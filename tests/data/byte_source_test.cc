#include "data/byte_source.h"

#include "common/file_util.h"
#include "data/csv_reader.h"
#include "testutil/gzip_file.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

std::string ReadAll(ByteSource* source) {
  std::string out;
  char buf[7];  // small reads cross every boundary
  while (true) {
    StatusOr<size_t> n = source->ReadAt(out.size(), buf, sizeof(buf));
    EXPECT_OK(n.status());
    if (!n.ok() || *n == 0) return out;
    out.append(buf, *n);
  }
}

std::string Csv(int rows) {
  std::string csv = "user,item,timestamp\n";
  for (int i = 0; i < rows; ++i) csv += absl::StrCat("u", i % 17, ",\"item ", i, "\",", i, "\n");
  return csv;
}

TEST(ByteSourceTest, GzipReadsAsTheFileItHoldsWhateverItsName) {
  testing::ScratchDir dir;
  const std::string csv = Csv(5000);
  ASSERT_OK(WriteFileAtomic(dir.File("plain.csv"), csv));
  testing::WriteGzip(dir.File("log.csv.gz"), csv);
  testing::WriteGzip(dir.File("misnamed.csv"), csv);
  for (const char* name : {"plain.csv", "log.csv.gz", "misnamed.csv"}) {
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(auto source, ByteSource::Open(dir.File(name)));
    EXPECT_EQ(source->compressed(), std::string(name) != "plain.csv");
    EXPECT_EQ(ReadAll(source.get()), csv);
    // A read back (as a reader recovering from a bad row does) still works.
    char buf[5];
    ASSERT_OK_AND_ASSIGN(size_t n, source->ReadAt(20, buf, sizeof(buf)));
    EXPECT_EQ(std::string(buf, n), csv.substr(20, 5));
  }
}

TEST(ByteSourceTest, ADamagedOrCutGzipIsNamed) {
  testing::ScratchDir dir;
  testing::WriteGzip(dir.File("log.csv.gz"), Csv(20000));
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFileToString(dir.File("log.csv.gz")));
  ASSERT_OK(WriteFileAtomic(dir.File("cut.csv.gz"), bytes.substr(0, bytes.size() / 2)));
  std::string damaged = bytes;
  for (size_t i = 100; i < 200; ++i) damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
  ASSERT_OK(WriteFileAtomic(dir.File("damaged.csv.gz"), damaged));
  for (const char* name : {"cut.csv.gz", "damaged.csv.gz"}) {
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(auto reader, CsvReader::Open(dir.File(name)));
    std::vector<std::string_view> fields;
    Status status;
    while (true) {
      StatusOr<bool> more = reader->Next(&fields);
      if (!more.ok() && absl::IsInvalidArgument(more.status())) continue;  // a torn row
      if (!more.ok()) {
        status = more.status();
        break;
      }
      if (!*more) break;
    }
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss, name));
  }
  EXPECT_THAT(ByteSource::Open(dir.File("missing.csv.gz")).status(),
              StatusIs(absl::StatusCode::kNotFound, "missing.csv.gz"));
}

TEST(ByteSourceTest, TheCsvReaderReadsGzipRowByRowWithLineNumbers) {
  testing::ScratchDir dir;
  testing::WriteGzip(dir.File("log.csv.gz"), "user,item\nu1,a\nu2,\"b\nc\"\nu3,\"open\n");
  CsvReaderOptions o;
  o.buffer_bytes = 16;
  ASSERT_OK_AND_ASSIGN(auto reader, CsvReader::Open(dir.File("log.csv.gz"), o));
  std::vector<std::string_view> f;
  ASSERT_OK_AND_ASSIGN(bool more, reader->Next(&f));  // the header
  ASSERT_TRUE(more);
  ASSERT_OK_AND_ASSIGN(more, reader->Next(&f));
  EXPECT_EQ(f[1], "a");
  ASSERT_OK_AND_ASSIGN(more, reader->Next(&f));
  EXPECT_EQ(f[1], "b\nc");
  EXPECT_EQ(reader->line(), 3);
  EXPECT_THAT(reader->Next(&f).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "log.csv.gz:5"));
}

}  // namespace
}  // namespace vrec
