// One table of a team's logs (docs/data_format.md): CSV with a header row, or
// JSON Lines (one object per line), chosen by the name: `.jsonl` or
// `.ndjson` (optionally followed by `.gz`) is JSON Lines, anything else CSV.
// Either may be gzip-compressed (byte_source.h). Columns are found by name,
// in any order; the caller names the columns it wants and gets, for each
// row, each one's value as text, or nothing when the row lacks it (a CSV
// field that is empty, a JSON key absent or null). JSON numbers come as
// their text (`1.5`, `1700000000`), booleans as `true`/`false`. Other
// columns are ignored and listed (unknown_columns()).
//
// Malformed input is kInvalidArgument "PATH:LINE: reason" (a JSON line that
// does not parse, a value that is an object or array, a CSV record as
// csv_reader.h says); the reader has moved past it and Next() may be called
// again (a caller counting bad rows). Other codes (I/O, a damaged gzip) end
// the table.
//
// Thread safety: not thread-safe; one reader per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "data/byte_source.h"
#include "data/csv_reader.h"
#include "vrec/status.h"

namespace vrec {

struct TableReaderOptions {
  char csv_delimiter = ',';
  // A row longer than this (bytes) is an error, skipped.
  size_t max_row_bytes = 1 << 20;
};

class TableReader {
 public:
  // Opens `path` for the columns `wanted` (names, exact; for CSV headers
  // compared case-insensitively).
  static StatusOr<std::unique_ptr<TableReader>> Open(const std::string& path,
                                                     std::vector<std::string> wanted,
                                                     const TableReaderOptions& options = {});
  ~TableReader();

  // The next row: (*values)[i] is wanted[i]'s value, or nullopt. false at
  // the end of the table.
  StatusOr<bool> Next(std::vector<std::optional<std::string>>* values);

  bool json_lines() const { return json_; }
  const std::string& path() const { return path_; }
  int64_t line() const { return line_; }  // of the row last returned
  // Columns seen that were not wanted (CSV: the header's; JSON Lines: the
  // keys of the rows read so far).
  const std::set<std::string>& unknown_columns() const { return unknown_; }
  // For progress lines: bytes of the file on disk, and how far reading is.
  uint64_t file_size() const;
  uint64_t file_position() const;

 private:
  TableReader(std::string path, std::vector<std::string> wanted, const TableReaderOptions& o);
  StatusOr<bool> NextCsv(std::vector<std::optional<std::string>>* values);
  StatusOr<bool> NextJson(std::vector<std::optional<std::string>>* values);
  // JSON Lines: the next physical line into line_text_; false at the end.
  StatusOr<bool> ReadLine();

  const std::string path_;
  const std::vector<std::string> wanted_;
  const TableReaderOptions options_;
  bool json_ = false;
  int64_t line_ = 0;
  std::set<std::string> unknown_;
  // CSV
  std::unique_ptr<CsvReader> csv_;
  std::vector<int> csv_column_;  // wanted[i]'s field index, or -1
  // JSON Lines
  std::unique_ptr<ByteSource> source_;
  std::string buffer_;
  size_t pos_ = 0;
  uint64_t read_offset_ = 0;
  bool eof_ = false;
  int64_t physical_line_ = 0;
  std::string line_text_;
};

}  // namespace vrec
