// Bytes of an input file, read sequentially, whether the file is plain or
// gzip-compressed (detected by its magic bytes, 1f 8b, whatever its name):
// the readers of logs (csv_reader.h) take their bytes from here, so a
// `.csv.gz` reads as the `.csv` it holds (docs/data_format.md).
//
// Offsets are of the uncompressed bytes. Reads are meant to be sequential; a
// read at another offset seeks (for gzip: by decompressing again from the
// start when it goes back, which readers do only to recover from an error).
//
// Thread safety: not thread-safe; one reader per source.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vrec/status.h"

namespace vrec {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Opens `path`, a regular file. kNotFound when it does not exist.
  static StatusOr<std::unique_ptr<ByteSource>> Open(const std::string& path);

  // Reads up to `n` bytes at uncompressed `offset` into `buf`; 0 at the end.
  virtual StatusOr<size_t> ReadAt(uint64_t offset, char* buf, size_t n) = 0;
  // The file's size on disk, and how far into it reading has got (for
  // progress lines: for gzip these are compressed bytes).
  virtual uint64_t file_size() const = 0;
  virtual uint64_t file_position() const = 0;
  virtual bool compressed() const = 0;
};

}  // namespace vrec
