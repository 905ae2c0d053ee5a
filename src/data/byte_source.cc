#include "data/byte_source.h"

#include <errno.h>
#include <unistd.h>
#include <zlib.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace vrec {
namespace {

class PlainFile : public ByteSource {
 public:
  PlainFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PlainFile() override { ::close(fd_); }

  StatusOr<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    while (true) {
      const ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0)
        return ErrnoStatus(errno, absl::StrCat("cannot read ", path_, " at offset ", offset));
      position_ = offset + static_cast<uint64_t>(got);
      return static_cast<size_t>(got);
    }
  }
  uint64_t file_size() const override { return size_; }
  uint64_t file_position() const override { return position_; }
  bool compressed() const override { return false; }

 private:
  const std::string path_;
  const int fd_;
  const uint64_t size_;
  uint64_t position_ = 0;
};

class GzipFile : public ByteSource {
 public:
  GzipFile(std::string path, gzFile gz, uint64_t size)
      : path_(std::move(path)), gz_(gz), size_(size) {}
  ~GzipFile() override { gzclose(gz_); }

  StatusOr<size_t> ReadAt(uint64_t offset, char* buf, size_t n) override {
    if (offset != next_) {
      if (gzseek(gz_, static_cast<z_off_t>(offset), SEEK_SET) < 0) return Error(offset);
      next_ = offset;
    }
    const unsigned want = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
    const int got = gzread(gz_, buf, want);
    if (got < 0) return Error(offset);
    if (got == 0) {  // the end, or a file cut short (Z_BUF_ERROR)
      int code = Z_OK;
      gzerror(gz_, &code);
      if (code != Z_OK && code != Z_STREAM_END) return Error(offset);
    }
    next_ += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
  uint64_t file_size() const override { return size_; }
  uint64_t file_position() const override {
    const z_off_t at = gzoffset(gz_);
    return at < 0 ? 0 : static_cast<uint64_t>(at);
  }
  bool compressed() const override { return true; }

 private:
  Status Error(uint64_t offset) {
    int code = 0;
    const char* message = gzerror(gz_, &code);
    return absl::DataLossError(absl::StrCat(path_, ": gzip data damaged or cut short near byte ",
                                            offset, " of its contents (", message, ")"));
  }

  const std::string path_;
  gzFile gz_;
  const uint64_t size_;
  uint64_t next_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<ByteSource>> ByteSource::Open(const std::string& path) {
  uint64_t size = 0;
  VREC_ASSIGN_OR_RETURN(const int fd, OpenRegularFile(path, &size));
  unsigned char magic[2] = {0, 0};
  const ssize_t got = ::pread(fd, magic, 2, 0);
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    gzFile gz = gzdopen(fd, "rb");
    if (gz == nullptr) {
      ::close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("cannot open ", path, " as gzip"));
    }
    gzbuffer(gz, 1 << 18);
    return std::unique_ptr<ByteSource>(new GzipFile(path, gz, size));
  }
  return std::unique_ptr<ByteSource>(new PlainFile(path, fd, size));
}

}  // namespace vrec
