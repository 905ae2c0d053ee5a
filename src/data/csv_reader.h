// CsvReader streams the records of a comma-separated file (RFC 4180) with a
// bounded buffer, so that a file of any size is read in O(longest record)
// memory.
//
// Dialect (what `vrec convert` accepts; see docs/convert.md):
//   - Fields are separated by `delimiter` (','); records end at LF or CRLF.
//     The last record may lack a line ending.
//   - A field that starts with '"' is quoted: it ends at the next lone '"',
//     "" inside it is one '"', and it may contain delimiters and line breaks
//     (kept verbatim). After the closing quote only a delimiter or the end of
//     the record may follow.
//   - A '"' inside an unquoted field is an ordinary character.
//   - A UTF-8 byte-order mark at the start of the file is skipped.
//   - Empty lines (no bytes, or only "\r", before the line feed) are skipped.
//   - A gzip-compressed file reads as the file it holds (byte_source.h).
//
// Line numbers are 1-based physical lines of the file (the header is line 1).
// A record that spans lines (a quoted line break) reports the line it starts
// on; errors report the line where the problem is.
//
// Malformed input is kInvalidArgument "PATH:LINE: reason". The reader then
// resynchronises at the next physical line after the problem (for an
// unterminated quote: the line after the one the quote opened on), so a
// caller may count the bad record and call Next() again. A record longer
// than max_record_bytes (almost always a stray quote swallowing the file) is
// reported and skipped the same way, which bounds both memory and the cost of
// recovering from a stray quote.
//
// Thread safety: not thread-safe; one reader per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/byte_source.h"
#include "vrec/status.h"

namespace vrec {

struct CsvReaderOptions {
  char delimiter = ',';
  size_t buffer_bytes = 1 << 20;
  // A record longer than this (bytes, before unescaping) is an error.
  size_t max_record_bytes = 1 << 20;
};

class CsvReader {
 public:
  // Opens `path` (a regular file, plain or gzip). kNotFound if it does not
  // exist.
  static StatusOr<std::unique_ptr<CsvReader>> Open(const std::string& path,
                                                   const CsvReaderOptions& options = {});
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record into *fields (unquoted and unescaped). The views
  // point into the reader's buffer and stay valid until the next call.
  // Returns true if a record was read, false at the end of the file, or
  // kInvalidArgument "PATH:LINE: reason" for a malformed record (the reader
  // has already moved past it; calling Next() again continues) or another
  // code for an I/O error (not recoverable).
  StatusOr<bool> Next(std::vector<std::string_view>* fields);

  const std::string& path() const { return path_; }
  // 1-based line on which the record last returned by Next() starts.
  int64_t line() const { return record_line_; }
  // Bytes of the file consumed so far (of its contents, when compressed).
  uint64_t offset() const { return buffer_start_ + pos_; }
  // The file's size on disk, and how far into it reading has got (progress
  // lines: compressed bytes for a gzip file, offset() otherwise).
  uint64_t file_size() const;
  uint64_t file_position() const;

 private:
  struct FieldSpan {
    size_t begin;  // offsets into buffer_, relative to the record start
    size_t end;
    bool quoted;
  };
  enum class ScanResult { kRecord, kNeedMore, kError };
  struct ScanOutput {
    size_t end = 0;              // kRecord: buffer index just past the line ending
    int64_t next_line = 0;       // kRecord: physical line of `end`
    std::string error;           // kError: the reason
    int64_t error_line = 0;      // kError: the line to report
    uint64_t resume_offset = 0;  // kError: file offset of the start of error_line
  };

  CsvReader(std::string path, std::unique_ptr<ByteSource> source, const CsvReaderOptions& options);

  // Scans one record starting at pos_ without consuming it. On kRecord fills
  // spans_; kNeedMore means the buffer ends inside the record.
  ScanResult Scan(ScanOutput* out);
  // Moves unread bytes to the front and reads more. Sets eof_ at the end.
  Status Fill();
  // Discards the buffer and continues at absolute `offset`, the start of
  // physical line `line`, skipping that line.
  void Resync(uint64_t offset, int64_t line);
  Status Error(int64_t line, const std::string& reason) const;

  const std::string path_;
  const CsvReaderOptions options_;
  std::unique_ptr<ByteSource> source_;

  std::string buffer_;  // bytes [buffer_start_, buffer_start_ + size_) of the file
  size_t size_ = 0;     // valid bytes in buffer_
  size_t pos_ = 0;      // next unread byte in buffer_
  uint64_t buffer_start_ = 0;
  uint64_t read_offset_ = 0;  // file offset of the next read()
  bool eof_ = false;
  bool at_file_start_ = true;
  bool skip_line_ = false;  // discard bytes through the next line feed first
  int64_t line_ = 1;        // physical line of buffer_[pos_]
  int64_t record_line_ = 0;
  std::vector<FieldSpan> spans_;
};

}  // namespace vrec
