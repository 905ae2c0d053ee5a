#include "data/record_reader.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <google/protobuf/message_lite.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/file_util.h"

namespace vrec {
namespace {

uint64_t LoadLE64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint32_t LoadLE32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Whether `p` holds a length whose stored CRC verifies.
bool HeaderVerifies(const char* p) { return UnmaskCrc(LoadLE32(p + 8)) == Crc32c(p, 8); }

}  // namespace

// ---------------------------------------------------------------- RecordReader

StatusOr<std::unique_ptr<RecordReader>> RecordReader::Open(const std::string& path,
                                                           const RecordReaderOptions& options,
                                                           uint64_t offset) {
  uint64_t size = 0;
  VREC_ASSIGN_OR_RETURN(const int fd, OpenRegularFile(path, &size));
  if (offset > size) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("cannot start reading ", path, " at offset ",
                                                   offset, ": the file has only ", size, " bytes"));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<RecordReader>(new RecordReader(path, fd, size, options, offset));
}

RecordReader::RecordReader(std::string path, int fd, uint64_t file_size,
                           const RecordReaderOptions& options, uint64_t offset)
    : path_(std::move(path)),
      options_(options),
      fd_(fd),
      file_size_(file_size),
      offset_(offset),
      buffer_start_(offset) {}

RecordReader::~RecordReader() { ::close(fd_); }

Status RecordReader::Fill(uint64_t pos, size_t n, const char** data) {
  if (pos >= buffer_start_ && pos + n <= buffer_start_ + buffer_len_) {
    *data = buffer_.get() + (pos - buffer_start_);
    return absl::OkStatus();
  }
  DCHECK_LE(pos + n, file_size_);
  const size_t want = static_cast<size_t>(
      std::min<uint64_t>(std::max<uint64_t>(n, options_.buffer_bytes), file_size_ - pos));
  // Bytes from pos on that the buffer already holds move to its front.
  size_t kept = 0;
  const char* keep_from = nullptr;
  if (pos >= buffer_start_ && pos < buffer_start_ + buffer_len_) {
    kept = static_cast<size_t>(buffer_start_ + buffer_len_ - pos);
    keep_from = buffer_.get() + (pos - buffer_start_);
  }
  if (want > buffer_capacity_) {
    std::unique_ptr<char[]> bigger(new char[want]);
    if (kept > 0) std::memcpy(bigger.get(), keep_from, kept);
    buffer_ = std::move(bigger);
    buffer_capacity_ = want;
  } else if (kept > 0) {
    std::memmove(buffer_.get(), keep_from, kept);
  }
  buffer_start_ = pos;
  buffer_len_ = kept;
  while (buffer_len_ < want) {
    const ssize_t r =
        ::pread(fd_, buffer_.get() + buffer_len_, want - buffer_len_, pos + buffer_len_);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      buffer_len_ = 0;
      return ErrnoStatus(err, absl::StrCat("cannot read ", path_, " at offset ", pos));
    }
    if (r == 0) {
      const uint64_t end = pos + buffer_len_;
      buffer_len_ = 0;
      return absl::DataLossError(absl::StrCat(path_,
                                              " shrank while being read: it ended at offset ", end,
                                              ", was ", file_size_, " bytes"));
    }
    buffer_len_ += static_cast<size_t>(r);
  }
  *data = buffer_.get();
  return absl::OkStatus();
}

StatusOr<RecordReader::Check> RecordReader::CheckAt(uint64_t pos, std::string_view* payload,
                                                    uint64_t* record_bytes, std::string* reason) {
  if (pos == file_size_) return Check::kEnd;
  const uint64_t left = file_size_ - pos;
  if (left < kHeaderBytes) {
    *reason =
        absl::StrCat("truncated record: ", left, " bytes left, a header needs ", kHeaderBytes);
    return Check::kTruncated;
  }
  const char* p;
  VREC_RETURN_IF_ERROR(Fill(pos, kHeaderBytes, &p));
  if (!HeaderVerifies(p)) {
    *reason = "length CRC mismatch";
    return Check::kCorrupt;
  }
  const uint64_t length = LoadLE64(p);
  if (length > options_.max_record_bytes) {
    *reason = absl::StrCat("record length ", length, " exceeds max_record_bytes ",
                           options_.max_record_bytes);
    return Check::kCorrupt;
  }
  const uint64_t total = kHeaderBytes + length + kFooterBytes;
  if (total > left) {
    *reason = absl::StrCat("truncated record: length ", length, " needs ", total, " bytes, only ",
                           left, " left");
    return Check::kTruncated;
  }
  VREC_RETURN_IF_ERROR(Fill(pos, static_cast<size_t>(total), &p));
  const char* body = p + kHeaderBytes;
  if (UnmaskCrc(LoadLE32(body + length)) != Crc32c(body, static_cast<size_t>(length))) {
    *reason = "payload CRC mismatch";
    return Check::kCorrupt;
  }
  *payload = std::string_view(body, static_cast<size_t>(length));
  *record_bytes = total;
  return Check::kOk;
}

StatusOr<uint64_t> RecordReader::Resync(uint64_t pos) {
  // Each candidate offset costs one 8-byte CRC; only the rare candidate whose
  // header verifies gets its payload checked, so the scan is linear in the
  // bytes skipped.
  constexpr uint64_t kMinRecord = kHeaderBytes + kFooterBytes;
  for (uint64_t p = pos + 1; p + kMinRecord <= file_size_; ++p) {
    const char* h;
    VREC_RETURN_IF_ERROR(Fill(p, kHeaderBytes, &h));
    if (!HeaderVerifies(h)) continue;
    std::string_view payload;
    uint64_t record_bytes;
    std::string reason;
    VREC_ASSIGN_OR_RETURN(Check c, CheckAt(p, &payload, &record_bytes, &reason));
    if (c == Check::kOk) return p;
  }
  return file_size_;
}

Status RecordReader::CorruptionError(uint64_t pos, const std::string& reason) const {
  return absl::DataLossError(
      absl::StrCat("corrupt record in ", path_, " at offset ", pos, ": ", reason));
}

StatusOr<bool> RecordReader::NextRecord(std::string_view* payload) {
  for (;;) {
    uint64_t record_bytes = 0;
    std::string reason;
    VREC_ASSIGN_OR_RETURN(Check c, CheckAt(offset_, payload, &record_bytes, &reason));
    switch (c) {
      case Check::kOk:
        offset_ += record_bytes;
        ++records_read_;
        return true;
      case Check::kEnd:
        return false;
      case Check::kTruncated:
      case Check::kCorrupt: {
        corruption_reason_ = reason;
        if (options_.on_corruption == CorruptionPolicy::kFailFast) {
          return CorruptionError(offset_, reason);
        }
        uint64_t next = file_size_;
        if (c == Check::kCorrupt) {
          VREC_ASSIGN_OR_RETURN(next, Resync(offset_));
        }
        VLOG(1) << "skipping " << (next - offset_) << " bytes of " << path_ << " at offset "
                << offset_ << ": " << reason;
        ++skipped_records_;
        skipped_bytes_ += next - offset_;
        offset_ = next;
        break;
      }
    }
  }
}

StatusOr<bool> RecordReader::Next(std::string* payload) {
  std::string_view view;
  VREC_ASSIGN_OR_RETURN(bool got, NextRecord(&view));
  if (got) payload->assign(view.data(), view.size());
  return got;
}

StatusOr<bool> RecordReader::NextMessage(google::protobuf::MessageLite* message) {
  for (;;) {
    const uint64_t start = offset_;
    std::string_view view;
    VREC_ASSIGN_OR_RETURN(bool got, NextRecord(&view));
    if (!got) return false;
    if (message->ParseFromArray(view.data(), static_cast<int>(view.size()))) return true;
    // A payload whose CRCs verify but that does not parse: the writer wrote
    // something else (or another type) here. Corruption all the same.
    corruption_reason_ = absl::StrCat("payload of ", view.size(), " bytes does not parse as ",
                                      message->GetTypeName());
    --records_read_;
    if (options_.on_corruption == CorruptionPolicy::kFailFast) {
      offset_ = start;  // stay at the bad record, as for a CRC mismatch
      return CorruptionError(start, corruption_reason_);
    }
    ++skipped_records_;
    skipped_bytes_ += offset_ - start;
  }
}

// --------------------------------------------------------------- ShardedReader

StatusOr<std::unique_ptr<ShardedReader>> ShardedReader::Open(std::vector<std::string> files,
                                                             DataPosition start,
                                                             const RecordReaderOptions& options) {
  if (start.shard > files.size() || (start.shard == files.size() && start.offset != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("data position {shard ", start.shard,
                                                   ", offset ", start.offset, "} is outside the ",
                                                   files.size(), " files"));
  }
  std::unique_ptr<ShardedReader> reader(new ShardedReader(std::move(files), options));
  reader->shard_ = start.shard;
  if (reader->shard_ < reader->files_.size()) {
    VREC_RETURN_IF_ERROR(reader->OpenCurrent(start.offset));
  }
  return reader;
}

ShardedReader::ShardedReader(std::vector<std::string> files, const RecordReaderOptions& options)
    : files_(std::move(files)), options_(options) {}

Status ShardedReader::OpenCurrent(uint64_t offset) {
  VREC_ASSIGN_OR_RETURN(current_, RecordReader::Open(files_[shard_], options_, offset));
  return absl::OkStatus();
}

Status ShardedReader::Advance() {
  // The next file is opened before the current one is let go, so a failed
  // open leaves the reader where it was and the next call retries it.
  std::unique_ptr<RecordReader> next;
  if (shard_ + 1 < files_.size()) {
    VREC_ASSIGN_OR_RETURN(next, RecordReader::Open(files_[shard_ + 1], options_, 0));
  }
  skipped_before_current_ += current_->skipped_records();
  current_ = std::move(next);
  ++shard_;
  return absl::OkStatus();
}

StatusOr<bool> ShardedReader::Next(std::string* payload) {
  while (current_ != nullptr) {
    VREC_ASSIGN_OR_RETURN(bool got, current_->Next(payload));
    if (got) return true;
    VREC_RETURN_IF_ERROR(Advance());
  }
  return false;
}

StatusOr<bool> ShardedReader::NextMessage(google::protobuf::MessageLite* message) {
  while (current_ != nullptr) {
    VREC_ASSIGN_OR_RETURN(bool got, current_->NextMessage(message));
    if (got) return true;
    VREC_RETURN_IF_ERROR(Advance());
  }
  return false;
}

DataPosition ShardedReader::position() const {
  DataPosition pos;
  pos.shard = shard_;
  pos.offset = current_ != nullptr ? current_->offset() : 0;
  return pos;
}

uint64_t ShardedReader::skipped_records() const {
  return skipped_before_current_ + (current_ != nullptr ? current_->skipped_records() : 0);
}

std::vector<std::string> FilesForWorker(const std::vector<std::string>& files, int worker,
                                        int num_workers) {
  CHECK_GT(num_workers, 0);
  CHECK_GE(worker, 0);
  CHECK_LT(worker, num_workers);
  std::vector<std::string> out;
  for (size_t i = static_cast<size_t>(worker); i < files.size();
       i += static_cast<size_t>(num_workers)) {
    out.push_back(files[i]);
  }
  return out;
}

}  // namespace vrec
