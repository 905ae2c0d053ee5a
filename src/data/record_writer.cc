#include "data/record_writer.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <google/protobuf/message_lite.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/file_util.h"

namespace vrec {
namespace {

void AppendLE64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 8);
}

void AppendLE32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 4);
}

}  // namespace

StatusOr<std::unique_ptr<RecordWriter>> RecordWriter::Create(const std::string& path,
                                                             const RecordWriterOptions& options) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot create record file ", path));
  return std::unique_ptr<RecordWriter>(new RecordWriter(path, fd, options));
}

RecordWriter::RecordWriter(std::string path, int fd, const RecordWriterOptions& options)
    : path_(std::move(path)), options_(options), fd_(fd) {
  buffer_.reserve(options_.buffer_bytes + 64);
}

RecordWriter::~RecordWriter() {
  if (fd_ >= 0) {
    Status s = Close();
    if (!s.ok()) LOG(ERROR) << "RecordWriter for " << path_ << " closed on destruction: " << s;
  }
}

Status RecordWriter::WriteFully(const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("cannot write record file ", path_));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

Status RecordWriter::Flush() {
  if (buffer_.empty()) return absl::OkStatus();
  Status s = WriteFully(buffer_.data(), buffer_.size());
  buffer_.clear();
  return s;
}

Status RecordWriter::Write(std::string_view payload) {
  VREC_RETURN_IF_ERROR(error_);
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat("write to closed ", path_));
  const uint64_t length = payload.size();
  const size_t header_at = buffer_.size();
  AppendLE64(&buffer_, length);
  AppendLE32(&buffer_, MaskCrc(Crc32c(buffer_.data() + header_at, 8)));
  const uint32_t payload_crc = MaskCrc(Crc32c(payload.data(), payload.size()));
  if (buffer_.size() + payload.size() > options_.buffer_bytes) {
    // A big payload goes straight to the file instead of being copied into
    // the buffer first.
    error_ = Flush();
    if (error_.ok()) error_ = WriteFully(payload.data(), payload.size());
  } else {
    buffer_.append(payload.data(), payload.size());
  }
  AppendLE32(&buffer_, payload_crc);
  if (error_.ok() && buffer_.size() >= options_.buffer_bytes) error_ = Flush();
  VREC_RETURN_IF_ERROR(error_);
  offset_ += 8 + 4 + length + 4;
  ++records_;
  return absl::OkStatus();
}

Status RecordWriter::WriteMessage(const google::protobuf::MessageLite& message) {
  scratch_.clear();
  if (!message.SerializeToString(&scratch_)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serialize ", message.GetTypeName(),
                                                   " for ", path_, " (record ", records_, ")"));
  }
  return Write(scratch_);
}

Status RecordWriter::Close() {
  if (fd_ < 0) return error_;
  if (error_.ok()) error_ = Flush();
  if (error_.ok() && options_.sync_on_close && ::fsync(fd_) != 0) {
    error_ = ErrnoStatus(errno, absl::StrCat("cannot fsync ", path_));
  }
  if (::close(fd_) != 0 && error_.ok()) {
    error_ = ErrnoStatus(errno, absl::StrCat("cannot close ", path_));
  }
  fd_ = -1;
  return error_;
}

}  // namespace vrec
