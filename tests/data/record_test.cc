#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/random.h"
#include "data/record_reader.h"
#include "data/record_writer.h"
#include "proto/data.pb.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

std::string RandomBytes(Rng* rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng->Next());
  return s;
}

// Writes `payloads` to `path`; returns the offset of each record and, last,
// the file size.
RecordWriterOptions NoSync() {
  RecordWriterOptions o;
  o.sync_on_close = false;  // tests need no durability; fsync is slow
  return o;
}

std::vector<uint64_t> WriteRecords(const std::string& path,
                                   const std::vector<std::string>& payloads,
                                   const RecordWriterOptions& options = NoSync()) {
  std::vector<uint64_t> offsets;
  auto writer = RecordWriter::Create(path, options);
  EXPECT_OK(writer);
  if (!writer.ok()) return offsets;
  for (const auto& p : payloads) {
    offsets.push_back((*writer)->offset());
    EXPECT_OK((*writer)->Write(p));
  }
  offsets.push_back((*writer)->offset());
  EXPECT_EQ((*writer)->records(), payloads.size());
  EXPECT_OK((*writer)->Close());
  return offsets;
}

// Overwrites `path` with raw bytes (a damaged copy of a record file).
void WriteBytes(const std::string& path, const std::string& bytes) {
  // Unlink first: truncating a file in place makes ext4 flush it on close.
  ::unlink(path.c_str());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out.good()) << path;
}

struct ReadResult {
  std::vector<std::string> payloads;
  Status status;  // OK when the reader reached a clean end
};

ReadResult ReadAll(RecordReader* reader) {
  ReadResult r;
  std::string payload;
  for (;;) {
    auto got = reader->Next(&payload);
    if (!got.ok()) {
      r.status = got.status();
      return r;
    }
    if (!*got) return r;
    r.payloads.push_back(payload);
  }
}

ReadResult ReadFile(const std::string& path, const RecordReaderOptions& options = {}) {
  auto reader = RecordReader::Open(path, options);
  if (!reader.ok()) return {{}, reader.status()};
  return ReadAll(reader->get());
}

std::vector<std::string> SmallPayloads() {
  return {"alpha", "", "a somewhat longer payload of thirty", "x", std::string(40, '\x7f'),
          "omega"};
}

RecordReaderOptions SkipMode() {
  RecordReaderOptions o;
  o.on_corruption = CorruptionPolicy::kSkipAndCount;
  return o;
}

TEST(RecordTest, RoundTripManyRecordsIncludingEmptyAndLarge) {
  testing::ScratchDir dir;
  Rng rng(testing::TestSeed(1));
  std::vector<std::string> payloads;
  for (int i = 0; i < 2000; ++i) payloads.push_back(RandomBytes(&rng, rng.UniformInt(300)));
  payloads.push_back("");
  payloads.push_back(RandomBytes(&rng, 1 << 20));
  payloads.push_back("");
  payloads.push_back(RandomBytes(&rng, (1 << 20) + 3));
  for (int i = 0; i < 100; ++i) payloads.push_back(RandomBytes(&rng, rng.UniformInt(5000)));

  // Default buffers, and tiny ones that force every refill and direct write.
  for (size_t buffer : {size_t{1} << 20, size_t{64}, size_t{1}}) {
    SCOPED_TRACE(buffer);
    const std::string path = dir.File("r.rec");
    RecordWriterOptions wo;
    wo.buffer_bytes = buffer;
    wo.sync_on_close = false;
    const auto offsets = WriteRecords(path, payloads, wo);
    ASSERT_OK_AND_ASSIGN(std::string contents, ReadFileToString(path));
    ASSERT_EQ(contents.size(), offsets.back());

    RecordReaderOptions ro;
    ro.buffer_bytes = buffer;
    ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(path, ro));
    std::string payload;
    for (size_t i = 0; i < payloads.size(); ++i) {
      ASSERT_EQ(reader->offset(), offsets[i]);
      ASSERT_OK_AND_ASSIGN(bool got, reader->Next(&payload));
      ASSERT_TRUE(got);
      ASSERT_EQ(payload, payloads[i]) << "record " << i;
    }
    ASSERT_OK_AND_ASSIGN(bool got, reader->Next(&payload));
    EXPECT_FALSE(got);
    EXPECT_EQ(reader->offset(), offsets.back());
    EXPECT_EQ(reader->records_read(), payloads.size());
    EXPECT_EQ(reader->skipped_records(), 0u);
  }
}

TEST(RecordTest, FramingIsTFRecord) {
  testing::ScratchDir dir;
  const std::string path = dir.File("f.rec");
  WriteRecords(path, {"hi"});
  ASSERT_OK_AND_ASSIGN(std::string b, ReadFileToString(path));
  ASSERT_EQ(b.size(), 8u + 4 + 2 + 4);
  EXPECT_EQ(b.substr(0, 8), std::string("\x02\0\0\0\0\0\0\0", 8));
  auto le32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
    return v;
  };
  EXPECT_EQ(le32(8), MaskCrc(Crc32c(b.data(), 8)));
  EXPECT_EQ(b.substr(12, 2), "hi");
  EXPECT_EQ(le32(14), MaskCrc(Crc32c("hi", 2)));
}

TEST(RecordTest, OpenAtSavedOffsetResumesExactly) {
  testing::ScratchDir dir;
  Rng rng(testing::TestSeed(2));
  std::vector<std::string> payloads;
  for (int i = 0; i < 50; ++i) payloads.push_back(RandomBytes(&rng, rng.UniformInt(100)));
  const std::string path = dir.File("r.rec");
  const auto offsets = WriteRecords(path, payloads);
  for (size_t i = 0; i < offsets.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(path, {}, offsets[i]));
    ReadResult r = ReadAll(reader.get());
    ASSERT_OK(r.status);
    ASSERT_EQ(r.payloads, std::vector<std::string>(payloads.begin() + i, payloads.end()));
  }
  EXPECT_THAT(RecordReader::Open(path, {}, offsets.back() + 1),
              StatusIs(absl::StatusCode::kInvalidArgument, "r.rec"));
  // An offset inside a record is not a record start: corruption, not garbage.
  ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(path, {}, offsets[3] + 1));
  EXPECT_THAT(ReadAll(reader.get()).status,
              StatusIs(absl::StatusCode::kDataLoss,
                       "at offset " + std::to_string(offsets[3] + 1) + ": length CRC mismatch"));
}

TEST(RecordTest, MissingFileIsNotFound) {
  EXPECT_THAT(RecordReader::Open("/nonexistent/dir/x.rec"),
              StatusIs(absl::StatusCode::kNotFound, "/nonexistent/dir/x.rec"));
  EXPECT_THAT(RecordWriter::Create("/nonexistent/dir/x.rec"),
              StatusIs(absl::StatusCode::kNotFound, "/nonexistent/dir/x.rec"));
}

TEST(RecordTest, WriterCloseIsIdempotentAndFinal) {
  testing::ScratchDir dir;
  ASSERT_OK_AND_ASSIGN(auto writer, RecordWriter::Create(dir.File("w.rec")));
  ASSERT_OK(writer->Write("a"));
  EXPECT_OK(writer->Close());
  EXPECT_OK(writer->Close());
  EXPECT_THAT(writer->Write("b"), StatusIs(absl::StatusCode::kFailedPrecondition, "w.rec"));
  EXPECT_EQ(ReadFile(dir.File("w.rec")).payloads, std::vector<std::string>{"a"});
}

TEST(RecordTest, WriterDestructorFlushes) {
  testing::ScratchDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto writer, RecordWriter::Create(dir.File("w.rec")));
    ASSERT_OK(writer->Write("kept"));
  }
  EXPECT_EQ(ReadFile(dir.File("w.rec")).payloads, std::vector<std::string>{"kept"});
}

// Flips every byte of a small file in turn (three different ways): fail-fast
// stops at the damaged record with kDataLoss, having returned only the intact
// records before it; skip mode returns every other record and counts one.
TEST(RecordTest, FlipEveryByte) {
  testing::ScratchDir dir;
  const std::string path = dir.File("r.rec");
  const auto payloads = SmallPayloads();
  const auto offsets = WriteRecords(path, payloads);
  ASSERT_OK_AND_ASSIGN(const std::string original, ReadFileToString(path));
  const std::string bad = dir.File("bad.rec");
  for (size_t pos = 0; pos < original.size(); ++pos) {
    size_t k = 0;  // the record that holds byte pos
    while (offsets[k + 1] <= pos) ++k;
    for (int flip : {0x01, 0x80, 0xff}) {
      SCOPED_TRACE("byte " + std::to_string(pos) + " ^ " + std::to_string(flip) + " (record " +
                   std::to_string(k) + ")");
      std::string damaged = original;
      damaged[pos] = static_cast<char>(damaged[pos] ^ flip);
      ASSERT_NO_FATAL_FAILURE(WriteBytes(bad, damaged));

      ReadResult r = ReadFile(bad);
      EXPECT_THAT(r.status,
                  StatusIs(absl::StatusCode::kDataLoss, "corrupt record in " + bad + " at offset " +
                                                            std::to_string(offsets[k]) + ": "));
      EXPECT_EQ(r.payloads, std::vector<std::string>(payloads.begin(), payloads.begin() + k));

      ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(bad, SkipMode()));
      r = ReadAll(reader.get());
      ASSERT_OK(r.status);
      std::vector<std::string> expected = payloads;
      expected.erase(expected.begin() + k);
      EXPECT_EQ(r.payloads, expected);
      EXPECT_EQ(reader->skipped_records(), 1u);
      EXPECT_EQ(reader->skipped_bytes(), offsets[k + 1] - offsets[k]);
      EXPECT_FALSE(reader->corruption_reason().empty());
    }
  }
}

TEST(RecordTest, TruncationAtEveryLength) {
  testing::ScratchDir dir;
  const std::string path = dir.File("r.rec");
  const auto payloads = SmallPayloads();
  const auto offsets = WriteRecords(path, payloads);
  ASSERT_OK_AND_ASSIGN(const std::string original, ReadFileToString(path));
  const std::string cut = dir.File("cut.rec");
  for (size_t len = 0; len <= original.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    ASSERT_NO_FATAL_FAILURE(WriteBytes(cut, original.substr(0, len)));
    size_t complete = 0;  // records wholly inside the first len bytes
    while (complete < payloads.size() && offsets[complete + 1] <= len) ++complete;
    const bool at_boundary = offsets[complete] == len;
    const std::vector<std::string> expected(payloads.begin(), payloads.begin() + complete);

    ReadResult r = ReadFile(cut);
    EXPECT_EQ(r.payloads, expected);
    if (at_boundary) {
      EXPECT_OK(r.status);
    } else {
      EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kDataLoss,
                                     "at offset " + std::to_string(offsets[complete]) +
                                         ": truncated record"));
    }

    ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(cut, SkipMode()));
    r = ReadAll(reader.get());
    ASSERT_OK(r.status);
    EXPECT_EQ(r.payloads, expected);
    EXPECT_EQ(reader->skipped_records(), at_boundary ? 0u : 1u);
    EXPECT_EQ(reader->skipped_bytes(), len - offsets[complete]);
    EXPECT_EQ(reader->offset(), len);
  }
}

// A length field with a valid CRC but an absurd value must not be allocated.
TEST(RecordTest, MaxRecordBytesGuard) {
  testing::ScratchDir dir;
  const std::string path = dir.File("r.rec");
  WriteRecords(path, {std::string(1000, 'a'), "b"});
  RecordReaderOptions small;
  small.max_record_bytes = 999;
  ReadResult r = ReadFile(path, small);
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kDataLoss,
                                 "at offset 0: record length 1000 exceeds max_record_bytes 999"));
  small.on_corruption = CorruptionPolicy::kSkipAndCount;
  EXPECT_EQ(ReadFile(path, small).payloads, std::vector<std::string>{"b"});

  // Hand-made header claiming 2^60 bytes, its CRC valid.
  std::string header(8, '\0');
  header[7] = 0x10;
  const uint32_t crc = MaskCrc(Crc32c(header.data(), 8));
  for (int i = 0; i < 4; ++i) header.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  header += std::string(100, 'z');
  ASSERT_OK(WriteFileAtomic(path, header));
  EXPECT_THAT(ReadFile(path).status,
              StatusIs(absl::StatusCode::kDataLoss, "exceeds max_record_bytes"));
  // Within the guard but past the end of the file: truncated.
  RecordReaderOptions huge;
  huge.max_record_bytes = ~uint64_t{0};
  EXPECT_THAT(ReadFile(path, huge).status,
              StatusIs(absl::StatusCode::kDataLoss, "at offset 0: truncated record"));
}

TEST(RecordTest, GarbagePayloadWithValidCrcsFailsNextMessage) {
  testing::ScratchDir dir;
  const std::string path = dir.File("c.rec");
  CandidateExample good;
  good.set_user_id(42);
  good.add_watch_history(7);
  uint64_t bad_offset = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto writer, RecordWriter::Create(path));
    ASSERT_OK(writer->WriteMessage(good));
    bad_offset = writer->offset();
    ASSERT_OK(writer->Write(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11)));
    good.set_user_id(43);
    ASSERT_OK(writer->WriteMessage(good));
    ASSERT_OK(writer->Close());
  }
  CandidateExample ex;
  ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(path));
  ASSERT_OK_AND_ASSIGN(bool got, reader->NextMessage(&ex));
  ASSERT_TRUE(got);
  EXPECT_EQ(ex.user_id(), 42u);
  const std::string where =
      "corrupt record in " + path + " at offset " + std::to_string(bad_offset);
  EXPECT_THAT(reader->NextMessage(&ex), StatusIs(absl::StatusCode::kDataLoss, where));
  EXPECT_THAT(reader->NextMessage(&ex),
              StatusIs(absl::StatusCode::kDataLoss, "does not parse as vrec.CandidateExample"));
  EXPECT_EQ(reader->offset(), bad_offset);

  ASSERT_OK_AND_ASSIGN(reader, RecordReader::Open(path, SkipMode()));
  std::vector<uint64_t> users;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(bool more, reader->NextMessage(&ex));
    if (!more) break;
    users.push_back(ex.user_id());
  }
  EXPECT_EQ(users, (std::vector<uint64_t>{42, 43}));
  EXPECT_EQ(reader->skipped_records(), 1u);
  EXPECT_EQ(reader->records_read(), 2u);
}

// A flipped byte early in a big record: the resync scan must be linear in the
// bytes skipped (a quadratic scan of 8 MB would not finish).
TEST(RecordTest, ResyncOverBigRecordIsLinear) {
  testing::ScratchDir dir;
  Rng rng(testing::TestSeed(3));
  std::vector<std::string> payloads = {"first", RandomBytes(&rng, 8 << 20), "last"};
  const std::string path = dir.File("big.rec");
  const auto offsets = WriteRecords(path, payloads);
  ASSERT_OK_AND_ASSIGN(std::string contents, ReadFileToString(path));
  contents[offsets[1] + 20] ^= 0x40;
  ASSERT_OK(WriteFileAtomic(path, contents));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(path, SkipMode()));
  ReadResult r = ReadAll(reader.get());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_OK(r.status);
  EXPECT_EQ(r.payloads, (std::vector<std::string>{"first", "last"}));
  EXPECT_EQ(reader->skipped_bytes(), offsets[2] - offsets[1]);
  EXPECT_LT(seconds, 5.0);
}

class ShardedReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // File 1 is empty: readers must pass over it.
    const std::vector<int> counts = {5, 0, 3, 7};
    int n = 0;
    for (size_t f = 0; f < counts.size(); ++f) {
      std::vector<std::string> payloads;
      for (int i = 0; i < counts[f]; ++i) payloads.push_back("record-" + std::to_string(n++));
      files_.push_back(dir_.File("part-" + std::to_string(f) + ".rec"));
      WriteRecords(files_.back(), payloads);
      all_.insert(all_.end(), payloads.begin(), payloads.end());
    }
  }

  testing::ScratchDir dir_;
  std::vector<std::string> files_;
  std::vector<std::string> all_;
};

TEST_F(ShardedReaderTest, CrossesFilesAndResumesFromEveryPosition) {
  ASSERT_OK_AND_ASSIGN(auto reader, ShardedReader::Open(files_));
  std::vector<DataPosition> positions;
  std::vector<std::string> read;
  std::string payload;
  for (;;) {
    positions.push_back(reader->position());
    ASSERT_OK_AND_ASSIGN(bool got, reader->Next(&payload));
    if (!got) break;
    read.push_back(payload);
  }
  EXPECT_EQ(read, all_);
  EXPECT_EQ(reader->position(), (DataPosition{static_cast<uint32_t>(files_.size()), 0}));
  ASSERT_OK_AND_ASSIGN(bool again, reader->Next(&payload));
  EXPECT_FALSE(again);

  for (size_t i = 0; i < positions.size(); ++i) {
    SCOPED_TRACE("position " + std::to_string(i));
    ASSERT_OK_AND_ASSIGN(auto resumed, ShardedReader::Open(files_, positions[i]));
    std::vector<std::string> rest;
    for (;;) {
      ASSERT_OK_AND_ASSIGN(bool got, resumed->Next(&payload));
      if (!got) break;
      rest.push_back(payload);
    }
    EXPECT_EQ(rest, std::vector<std::string>(all_.begin() + std::min(i, all_.size()), all_.end()));
  }
}

TEST_F(ShardedReaderTest, StartAtEndAndBadPositions) {
  const uint32_t n = static_cast<uint32_t>(files_.size());
  ASSERT_OK_AND_ASSIGN(auto reader, ShardedReader::Open(files_, DataPosition{n, 0}));
  std::string payload;
  ASSERT_OK_AND_ASSIGN(bool got, reader->Next(&payload));
  EXPECT_FALSE(got);
  EXPECT_THAT(ShardedReader::Open(files_, DataPosition{n + 1, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "outside the 4 files"));
  EXPECT_THAT(ShardedReader::Open(files_, DataPosition{0, 1 << 20}),
              StatusIs(absl::StatusCode::kInvalidArgument, "part-0.rec"));
  ASSERT_OK_AND_ASSIGN(auto empty, ShardedReader::Open({}));
  ASSERT_OK_AND_ASSIGN(got, empty->Next(&payload));
  EXPECT_FALSE(got);
}

TEST_F(ShardedReaderTest, MissingNextFileIsAnErrorNotAnEnd) {
  files_.push_back(dir_.File("missing.rec"));
  ASSERT_OK_AND_ASSIGN(auto reader, ShardedReader::Open(files_));
  std::string payload;
  size_t n = 0;
  Status status;
  for (;;) {
    auto got = reader->Next(&payload);
    if (!got.ok()) {
      status = got.status();
      break;
    }
    ASSERT_TRUE(*got) << "reached a clean end past a missing file";
    ++n;
  }
  EXPECT_EQ(n, all_.size());
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound, "missing.rec"));
  EXPECT_THAT(reader->Next(&payload), StatusIs(absl::StatusCode::kNotFound, "missing.rec"));
}

TEST_F(ShardedReaderTest, MessagesAndSkippedCountAcrossFiles) {
  // Replace the files with messages, one garbage record in the first.
  for (size_t f = 0; f < files_.size(); ++f) {
    ASSERT_OK_AND_ASSIGN(auto w, RecordWriter::Create(files_[f]));
    VideoInfo v;
    v.set_video_id(f * 10 + 1);
    ASSERT_OK(w->WriteMessage(v));
    if (f == 0) {
      ASSERT_OK(w->Write(std::string("\x0f\x0f\x0f", 3)));
    }
    v.set_video_id(f * 10 + 2);
    ASSERT_OK(w->WriteMessage(v));
    ASSERT_OK(w->Close());
  }
  ASSERT_OK_AND_ASSIGN(auto reader, ShardedReader::Open(files_, {}, SkipMode()));
  std::vector<uint64_t> ids;
  VideoInfo v;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(bool got, reader->NextMessage(&v));
    if (!got) break;
    ids.push_back(v.video_id());
  }
  EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2, 11, 12, 21, 22, 31, 32}));
  EXPECT_EQ(reader->skipped_records(), 1u);
}

TEST(FilesForWorkerTest, PartitionsDisjointlyAndCoversAll) {
  for (int num_files : {0, 1, 7, 10, 64}) {
    std::vector<std::string> files;
    for (int i = 0; i < num_files; ++i) files.push_back("f" + std::to_string(i));
    for (int workers : {1, 2, 3, 8, 100}) {
      std::multiset<std::string> seen;
      for (int w = 0; w < workers; ++w) {
        const auto mine = FilesForWorker(files, w, workers);
        // Balanced: sizes differ by at most one.
        EXPECT_LE(mine.size(), static_cast<size_t>((num_files + workers - 1) / workers));
        EXPECT_GE(mine.size(), static_cast<size_t>(num_files / workers));
        seen.insert(mine.begin(), mine.end());
      }
      EXPECT_EQ(seen, std::multiset<std::string>(files.begin(), files.end()))
          << num_files << " files, " << workers << " workers";
    }
  }
  EXPECT_EQ(FilesForWorker({"a", "b", "c", "d", "e"}, 1, 2), (std::vector<std::string>{"b", "d"}));
}

}  // namespace
}  // namespace vrec
