// RecordWriter appends records to a file with TFRecord framing:
//
//   uint64 length (little-endian)
//   uint32 masked CRC32C of the 8 length bytes
//   byte   payload[length]
//   uint32 masked CRC32C of the payload
//
// where masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (as TFRecord).
//
// Thread safety: not thread-safe; one writer per file. Writes are buffered;
// Close() flushes and (by default) fsyncs. A writer destroyed without Close()
// closes itself and logs any error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vrec/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace vrec {

struct RecordWriterOptions {
  size_t buffer_bytes = 1 << 20;
  bool sync_on_close = true;
};

class RecordWriter {
 public:
  // Creates (truncating) `path`.
  static StatusOr<std::unique_ptr<RecordWriter>> Create(const std::string& path,
                                                        const RecordWriterOptions& options = {});
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // Appends one record. After any error the writer is unusable: every later
  // call returns that error (the file may end in a partial record, which a
  // reader reports as truncated).
  Status Write(std::string_view payload);
  // Serializes `message` and writes it as one record.
  Status WriteMessage(const google::protobuf::MessageLite& message);
  // Flushes, optionally fsyncs, closes. Idempotent.
  Status Close();

  const std::string& path() const { return path_; }
  uint64_t records() const { return records_; }
  // Bytes written so far (the offset of the next record).
  uint64_t offset() const { return offset_; }

 private:
  RecordWriter(std::string path, int fd, const RecordWriterOptions& options);
  Status Flush();
  // Writes all of data[0, n) to fd_ (retrying short writes and EINTR).
  Status WriteFully(const char* data, size_t n);

  const std::string path_;
  const RecordWriterOptions options_;
  int fd_;
  std::string buffer_;
  std::string scratch_;  // reused serialization buffer
  uint64_t records_ = 0;
  uint64_t offset_ = 0;
  // The first write error; once set, every later call returns it, because
  // the file no longer ends at a record boundary.
  Status error_;
};

}  // namespace vrec
