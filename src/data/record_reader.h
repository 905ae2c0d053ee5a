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
#include <string_view>
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

  // Why the last kDataLoss error (or, in skip mode, the last skipped region)
  // happened, without the file and offset: "payload CRC mismatch". Empty if
  // there was none. For tools that print their own framing (vrec inspect).
  const std::string& corruption_reason() const { return corruption_reason_; }

  // Bytes of framing around each payload: 8 (length) + 4 + 4 (two CRCs).
  static constexpr uint64_t kHeaderBytes = 12;
  static constexpr uint64_t kFooterBytes = 4;

 private:
  // Outcome of checking the record that starts at some offset.
  enum class Check { kOk, kEnd, kTruncated, kCorrupt };

  RecordReader(std::string path, int fd, uint64_t file_size, const RecordReaderOptions& options,
               uint64_t offset);
  // Makes bytes [pos, pos + n) of the file available at *data, valid until the
  // next call. REQUIRES: pos + n <= file_size_.
  Status Fill(uint64_t pos, size_t n, const char** data);
  // Checks the record at `pos`; on kOk sets *payload (valid until the next
  // Fill) and *record_bytes; otherwise sets *reason.
  StatusOr<Check> CheckAt(uint64_t pos, std::string_view* payload, uint64_t* record_bytes,
                          std::string* reason);
  // The next good record (applying the corruption policy) or false at the end.
  StatusOr<bool> NextRecord(std::string_view* payload);
  // The first offset after `pos` where a whole record verifies, or file_size_.
  StatusOr<uint64_t> Resync(uint64_t pos);
  Status CorruptionError(uint64_t pos, const std::string& reason) const;

  const std::string path_;
  const RecordReaderOptions options_;
  int fd_;
  uint64_t file_size_;
  uint64_t offset_;
  uint64_t records_read_ = 0;
  uint64_t skipped_records_ = 0;
  uint64_t skipped_bytes_ = 0;
  std::string corruption_reason_;
  // Read buffer: bytes [buffer_start_, buffer_start_ + buffer_len_) of the
  // file, in buffer_[0, buffer_len_); buffer_capacity_ bytes allocated.
  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_ = 0;
  size_t buffer_len_ = 0;
  uint64_t buffer_start_ = 0;
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
  // As RecordReader::Next/NextMessage, moving on to the next file at the end
  // of each; false once every file is read.
  StatusOr<bool> Next(std::string* payload);
  StatusOr<bool> NextMessage(google::protobuf::MessageLite* message);
  // Position of the next record; valid to pass to Open() to resume. At the
  // end of a file that is not the last it may be {shard, size of that file}.
  DataPosition position() const;
  uint64_t skipped_records() const;

 private:
  ShardedReader(std::vector<std::string> files, const RecordReaderOptions& options);
  Status OpenCurrent(uint64_t offset);
  // Moves from the exhausted current file to the next one (or the end).
  Status Advance();

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
