// Fuzzes RecordReader (data/record_reader.h): the input is a record file, as
// a dataset shard, a checkpoint's table file or a bundle's corpus holds.
//
// Checked beyond the sanitizers, under both corruption policies: a reader
// whose buffer holds 16 bytes (it refills at every record, and in the middle
// of most) agrees record for record, error for error, with one that reads
// the file at once; offsets and skipped bytes stay inside the file; in skip
// mode the reader always reaches the end. Then the payloads are parsed as
// the datasets' messages (NextMessage), and read through a ShardedReader
// of the file twice.
#include <cstdint>
#include <string>
#include <vector>

#include "data/record_reader.h"
#include "fuzz_util.h"
#include "glog/logging.h"
#include "proto/data.pb.h"

namespace vrec::fuzz {
namespace {

// What a reader returned, record by record, and where it ended.
struct Transcript {
  std::vector<std::string> records;  // payloads, or "error: ..." last
  uint64_t offset = 0, skipped_records = 0, skipped_bytes = 0;
  bool operator==(const Transcript& o) const {
    return records == o.records && offset == o.offset && skipped_records == o.skipped_records &&
           skipped_bytes == o.skipped_bytes;
  }
};

Transcript ReadAll(const std::string& path, uint64_t size, const RecordReaderOptions& options) {
  Transcript t;
  auto reader = RecordReader::Open(path, options);
  VREC_FUZZ_CHECK(reader.ok(), reader.status().ToString());
  std::string payload;
  while (true) {
    StatusOr<bool> more = (*reader)->Next(&payload);
    if (!more.ok()) {
      VREC_FUZZ_CHECK(absl::IsDataLoss(more.status()), more.status().ToString());
      VREC_FUZZ_CHECK(options.on_corruption == CorruptionPolicy::kFailFast,
                      "skip mode failed: " + more.status().ToString());
      t.records.push_back("error: " + more.status().ToString());
      break;
    }
    if (!*more) {
      VREC_FUZZ_CHECK((*reader)->offset() == size, "clean end before the end of the file");
      break;
    }
    t.records.push_back(payload);
  }
  t.offset = (*reader)->offset();
  t.skipped_records = (*reader)->skipped_records();
  t.skipped_bytes = (*reader)->skipped_bytes();
  VREC_FUZZ_CHECK(t.offset <= size && t.skipped_bytes <= size, "outside the file");
  return t;
}

template <typename M>
void ReadMessages(const std::string& path, CorruptionPolicy policy) {
  RecordReaderOptions options;
  options.on_corruption = policy;
  auto reader = RecordReader::Open(path, options);
  VREC_FUZZ_CHECK(reader.ok(), reader.status().ToString());
  M message;
  while (true) {
    StatusOr<bool> more = (*reader)->NextMessage(&message);
    if (!more.ok() || !*more) break;
  }
}

}  // namespace
}  // namespace vrec::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = 2;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vrec;
  static const std::string path = fuzz::ScratchPath("record.rec");
  fuzz::WriteFileOrDie(path, data, size);
  for (CorruptionPolicy policy : {CorruptionPolicy::kFailFast, CorruptionPolicy::kSkipAndCount}) {
    RecordReaderOptions whole;
    whole.on_corruption = policy;
    RecordReaderOptions small = whole;
    small.buffer_bytes = 16;
    const fuzz::Transcript a = fuzz::ReadAll(path, size, whole);
    const fuzz::Transcript b = fuzz::ReadAll(path, size, small);
    VREC_FUZZ_CHECK(a == b, "a 16-byte buffer reads the file differently");
    // A record limit below most records: they become corruption to skip.
    RecordReaderOptions tight = whole;
    tight.max_record_bytes = 8;
    fuzz::ReadAll(path, size, tight);
  }
  fuzz::ReadMessages<CandidateExample>(path, CorruptionPolicy::kSkipAndCount);
  fuzz::ReadMessages<RankingExample>(path, CorruptionPolicy::kFailFast);
  fuzz::ReadMessages<VideoInfo>(path, CorruptionPolicy::kSkipAndCount);
  auto sharded = ShardedReader::Open({path, path}, {}, {CorruptionPolicy::kSkipAndCount});
  VREC_FUZZ_CHECK(sharded.ok(), sharded.status().ToString());
  std::string payload;
  while (true) {
    StatusOr<bool> more = (*sharded)->Next(&payload);
    VREC_FUZZ_CHECK(more.ok(), more.status().ToString());
    if (!*more) break;
  }
  VREC_FUZZ_CHECK((*sharded)->position() == (DataPosition{2, 0}), "not at the end");
  return 0;
}
