// RecordReader reads a file written by RecordWriter (TFRecord framing, see
// record_writer.h), verifying both CRCs of every record.
//
// Corruption (a flipped byte, a truncated file, a length that is absurd, a
// payload that does not parse) is reported as kDataLoss whose message names
// the file and the byte offset of the bad record, never a crash and never a
// silently wrong record. With CorruptionPolicy::kSkipAndCount the reader
// instead skips the bad bytes (resynchronising by scanning forward for the
// next offset whose length CRC and payload CRC both verify), counts them, and
// carries on; skipped_records()/skipped_bytes() report what was lost.
//
// ShardedReader reads a list of record files in order starting from a
// DataPosition (shard index, byte offset) and reports its position, so that a
// worker can stop and resume exactly where a checkpoint says.
//
// Thread safety: not thread-safe; one reader per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vrec/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace vrec {

enum class CorruptionPolicy {
  kFailFast,      // the first bad record is an error
  kSkipAndCount,  // skip bad records, count them, continue
};

struct RecordReaderOptions {
  CorruptionPolicy on_corruption = CorruptionPolicy::kFailFast;
  size_t buffer_bytes = 1 << 20;
  // A length field above this is treated as corruption (protects memory).
  uint64_t max_record_bytes = 64ull << 20;
};

class RecordReader {
 public:
  // Opens `path` and positions at byte `offset`, which must be the start of a
  // record (an offset reported by offset() or RecordWriter::offset()).
  static StatusOr<std::unique_ptr<RecordReader>> Open(const std::string& path,
                                                      const RecordReaderOptions& options = {},
                                                      uint64_t offset = 0);
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // Reads the next record into *payload. Returns true if a record was read,
  // false at the clean end of the file, or an error (kDataLoss: corrupt,
  // naming file and offset; other codes: I/O).
  StatusOr<bool> Next(std::string* payload);
  // Next() and parses the payload into *message; a payload that does not
  // parse is corruption like a bad CRC.
  StatusOr<bool> NextMessage(google::protobuf::MessageLite* message);

  const std::string& path() const { return path_; }
  // Offset of the next record to be read.
  uint64_t offset() const { return offset_; }
  uint64_t records_read() const { return records_read_; }
  uint64_t skipped_records() const { return skipped_records_; }
  uint64_t skipped_bytes() const { return skipped_bytes_; }

 private:
  RecordReader(std::string path, int fd, uint64_t file_size, const RecordReaderOptions& options,
               uint64_t offset);

  const std::string path_;
  const RecordReaderOptions options_;
  int fd_;
  uint64_t file_size_;
  uint64_t offset_;
  uint64_t records_read_ = 0;
  uint64_t skipped_records_ = 0;
  uint64_t skipped_bytes_ = 0;
  // Read buffer: bytes [buffer_start_, buffer_start_ + buffer_.size()) of the file.
  std::string buffer_;
  uint64_t buffer_start_ = 0;
  std::string scratch_;
};

// Where a reader is in a list of files: the index of the file and the byte
// offset of the next record in it. {files.size(), 0} is the end.
struct DataPosition {
  uint32_t shard = 0;
  uint64_t offset = 0;
  bool operator==(const DataPosition& o) const { return shard == o.shard && offset == o.offset; }
};

class ShardedReader {
 public:
  static StatusOr<std::unique_ptr<ShardedReader>> Open(std::vector<std::string> files,
                                                       DataPosition start = {},
                                                       const RecordReaderOptions& options = {});
  StatusOr<bool> Next(std::string* payload);
  StatusOr<bool> NextMessage(google::protobuf::MessageLite* message);
  // Position of the next record; valid to pass to Open() to resume.
  DataPosition position() const;
  uint64_t skipped_records() const;

 private:
  ShardedReader(std::vector<std::string> files, const RecordReaderOptions& options);
  Status OpenCurrent(uint64_t offset);

  const std::vector<std::string> files_;
  const RecordReaderOptions options_;
  uint32_t shard_ = 0;
  std::unique_ptr<RecordReader> current_;
  uint64_t skipped_before_current_ = 0;
};

// The files a worker reads: files i with i % num_workers == worker.
// REQUIRES: 0 <= worker < num_workers.
std::vector<std::string> FilesForWorker(const std::vector<std::string>& files, int worker,
                                        int num_workers);

}  // namespace vrec
