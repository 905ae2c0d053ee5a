#include "data/table_reader.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace vrec {
namespace {

constexpr size_t kMaxUnknownColumns = 64;  // listed; a hostile file has no more
constexpr size_t kChunk = 1 << 16;

bool IsJsonLinesName(const std::string& path) {
  std::string name = absl::AsciiStrToLower(path);
  if (absl::EndsWith(name, ".gz")) name.resize(name.size() - 3);
  return absl::EndsWith(name, ".jsonl") || absl::EndsWith(name, ".ndjson");
}

}  // namespace

TableReader::TableReader(std::string path, std::vector<std::string> wanted,
                         const TableReaderOptions& o)
    : path_(std::move(path)), wanted_(std::move(wanted)), options_(o) {}

TableReader::~TableReader() = default;

StatusOr<std::unique_ptr<TableReader>> TableReader::Open(const std::string& path,
                                                         std::vector<std::string> wanted,
                                                         const TableReaderOptions& options) {
  std::unique_ptr<TableReader> t(new TableReader(path, std::move(wanted), options));
  t->json_ = IsJsonLinesName(path);
  if (t->json_) {
    VREC_ASSIGN_OR_RETURN(t->source_, ByteSource::Open(path));
    return t;
  }
  CsvReaderOptions co;
  co.delimiter = options.csv_delimiter;
  co.max_record_bytes = options.max_row_bytes;
  VREC_ASSIGN_OR_RETURN(t->csv_, CsvReader::Open(path, co));
  std::vector<std::string_view> header;
  VREC_ASSIGN_OR_RETURN(bool any, t->csv_->Next(&header));
  if (!any) return absl::InvalidArgumentError(absl::StrCat(path, ": empty, no header row"));
  t->csv_column_.assign(t->wanted_.size(), -1);
  for (size_t f = 0; f < header.size(); ++f) {
    const std::string name = absl::AsciiStrToLower(std::string(header[f]));
    bool used = false;
    for (size_t w = 0; w < t->wanted_.size(); ++w) {
      if (absl::AsciiStrToLower(t->wanted_[w]) != name) continue;
      if (t->csv_column_[w] >= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":1: the column '", t->wanted_[w], "' appears twice"));
      }
      t->csv_column_[w] = static_cast<int>(f);
      used = true;
    }
    if (!used && t->unknown_.size() < kMaxUnknownColumns)
      t->unknown_.insert(std::string(header[f]));
  }
  return t;
}

uint64_t TableReader::file_size() const { return json_ ? source_->file_size() : csv_->file_size(); }

uint64_t TableReader::file_position() const {
  if (!json_) return csv_->file_position();
  return source_->compressed() ? source_->file_position() : read_offset_;
}

StatusOr<bool> TableReader::Next(std::vector<std::optional<std::string>>* values) {
  values->assign(wanted_.size(), std::nullopt);
  return json_ ? NextJson(values) : NextCsv(values);
}

StatusOr<bool> TableReader::NextCsv(std::vector<std::optional<std::string>>* values) {
  std::vector<std::string_view> fields;
  VREC_ASSIGN_OR_RETURN(bool more, csv_->Next(&fields));
  line_ = csv_->line();
  if (!more) return false;
  for (size_t w = 0; w < wanted_.size(); ++w) {
    const int f = csv_column_[w];
    if (f >= 0 && static_cast<size_t>(f) < fields.size() && !fields[f].empty()) {
      (*values)[w] = std::string(fields[f]);
    }
  }
  return true;
}

StatusOr<bool> TableReader::ReadLine() {
  bool too_long = false;
  while (true) {
    const size_t nl = buffer_.find('\n', pos_);
    if (nl != std::string::npos || (eof_ && pos_ < buffer_.size())) {
      const size_t end = nl == std::string::npos ? buffer_.size() : nl;
      ++physical_line_;
      if (!too_long) line_text_.assign(buffer_, pos_, end - pos_);
      pos_ = nl == std::string::npos ? buffer_.size() : nl + 1;
      if (too_long) {
        line_ = physical_line_;
        return absl::InvalidArgumentError(absl::StrCat(path_, ":", line_, ": a line longer than ",
                                                       options_.max_row_bytes, " bytes"));
      }
      if (!line_text_.empty() && line_text_.back() == '\r') line_text_.pop_back();
      return true;
    }
    if (eof_) return false;
    buffer_.erase(0, pos_);
    pos_ = 0;
    if (buffer_.size() > options_.max_row_bytes) {
      too_long = true;  // dropped until its end; reported then
      buffer_.clear();
    }
    const size_t have = buffer_.size();
    buffer_.resize(have + kChunk);
    VREC_ASSIGN_OR_RETURN(size_t n, source_->ReadAt(read_offset_, buffer_.data() + have, kChunk));
    buffer_.resize(have + n);
    read_offset_ += n;
    if (n == 0) eof_ = true;
  }
}

StatusOr<bool> TableReader::NextJson(std::vector<std::optional<std::string>>* values) {
  while (true) {
    VREC_ASSIGN_OR_RETURN(bool more, ReadLine());
    if (!more) return false;
    line_ = physical_line_;
    if (line_ == 1 && absl::StartsWith(line_text_, "\xEF\xBB\xBF")) line_text_.erase(0, 3);
    if (std::all_of(line_text_.begin(), line_text_.end(),
                    [](unsigned char c) { return std::isspace(c); })) {
      continue;  // blank lines are skipped
    }
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ":", line_, ": ", why));
    };
    nlohmann::json row = nlohmann::json::parse(line_text_, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) return bad("not a JSON value (one JSON object per line)");
    if (!row.is_object()) return bad("not a JSON object (one object per line)");
    for (auto it = row.begin(); it != row.end(); ++it) {
      const auto w = std::find(wanted_.begin(), wanted_.end(), it.key());
      if (w == wanted_.end()) {
        if (unknown_.size() < kMaxUnknownColumns) unknown_.insert(it.key());
        continue;
      }
      const nlohmann::json& v = it.value();
      std::optional<std::string>& out = (*values)[w - wanted_.begin()];
      if (v.is_null()) continue;
      if (v.is_string()) {
        out = v.get<std::string>();
      } else if (v.is_number() || v.is_boolean()) {
        out = v.dump();
      } else {
        return bad(absl::StrCat("'", it.key(), "' is a JSON ", v.type_name(),
                                "; expected a string or a number"));
      }
    }
    return true;
  }
}

}  // namespace vrec
