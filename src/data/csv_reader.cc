#include "data/csv_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace vrec {

namespace {

// Printable description of a byte for error messages.
std::string DescribeByte(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return absl::StrCat("'", std::string(1, c), "'");
  return absl::StrCat("byte 0x", absl::Hex(u, absl::kZeroPad2));
}

}  // namespace

StatusOr<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path,
                                                     const CsvReaderOptions& options) {
  if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r') {
    return absl::InvalidArgumentError("CsvReader: the delimiter cannot be a quote or line break");
  }
  VREC_ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> source, ByteSource::Open(path));
  return std::unique_ptr<CsvReader>(new CsvReader(path, std::move(source), options));
}

CsvReader::CsvReader(std::string path, std::unique_ptr<ByteSource> source,
                     const CsvReaderOptions& options)
    : path_(std::move(path)), options_(options), source_(std::move(source)) {
  buffer_.resize(std::max<size_t>(options_.buffer_bytes, 16));
}

CsvReader::~CsvReader() = default;

uint64_t CsvReader::file_size() const { return source_->file_size(); }
uint64_t CsvReader::file_position() const {
  return source_->compressed() ? source_->file_position() : offset();
}

Status CsvReader::Error(int64_t line, const std::string& reason) const {
  return absl::InvalidArgumentError(absl::StrCat(path_, ":", line, ": ", reason));
}

Status CsvReader::Fill() {
  if (pos_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + pos_, size_ - pos_);
    buffer_start_ += pos_;
    size_ -= pos_;
    pos_ = 0;
  }
  if (size_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
  VREC_ASSIGN_OR_RETURN(
      size_t n, source_->ReadAt(read_offset_, buffer_.data() + size_, buffer_.size() - size_));
  if (n == 0) eof_ = true;
  size_ += n;
  read_offset_ += n;
  return absl::OkStatus();
}

void CsvReader::Resync(uint64_t offset, int64_t line) {
  buffer_start_ = offset;
  read_offset_ = offset;
  size_ = 0;
  pos_ = 0;
  eof_ = false;
  line_ = line;
  skip_line_ = true;
}

CsvReader::ScanResult CsvReader::Scan(ScanOutput* out) {
  enum class State { kFieldStart, kUnquoted, kQuoted, kAfterQuote };
  spans_.clear();
  const char delim = options_.delimiter;
  State state = State::kFieldStart;
  size_t i = pos_;
  size_t field_begin = pos_;
  int64_t line = line_;
  size_t line_start = pos_;  // buffer index where physical line `line` starts
  int64_t quote_line = line;
  size_t quote_line_start = pos_;
  auto fail = [&](int64_t err_line, size_t err_line_start, std::string reason) {
    out->error = std::move(reason);
    out->error_line = err_line;
    out->resume_offset = buffer_start_ + err_line_start;
    return ScanResult::kError;
  };
  auto push = [&](size_t begin, size_t end, bool quoted) {
    spans_.push_back({begin - pos_, end - pos_, quoted});
  };
  while (true) {
    if (i - pos_ > options_.max_record_bytes) {
      const bool in_quote = state == State::kQuoted || state == State::kAfterQuote;
      return fail(
          in_quote ? quote_line : line, in_quote ? quote_line_start : line_start,
          absl::StrCat("record longer than ", options_.max_record_bytes, " bytes",
                       in_quote ? " (a quoted field opened on this line never ends?)" : ""));
    }
    if (i == size_) {
      if (!eof_) return ScanResult::kNeedMore;
      // The end of the file ends the record.
      switch (state) {
        case State::kQuoted:
          return fail(quote_line, quote_line_start,
                      "unterminated quoted field (the quote opened on this line never closes)");
        case State::kAfterQuote:
          push(field_begin, i - 1, true);
          break;
        default:
          push(field_begin, i, false);
      }
      out->end = i;
      out->next_line = line;
      return ScanResult::kRecord;
    }
    const char c = buffer_[i];
    switch (state) {
      case State::kFieldStart:
        if (c == '"') {
          state = State::kQuoted;
          field_begin = i + 1;
          quote_line = line;
          quote_line_start = line_start;
          ++i;
          break;
        }
        field_begin = i;
        state = State::kUnquoted;
        [[fallthrough]];
      case State::kUnquoted:
        if (c == delim) {
          push(field_begin, i, false);
          state = State::kFieldStart;
          field_begin = ++i;
        } else if (c == '\n') {
          size_t content_end = i;
          if (content_end > field_begin && buffer_[content_end - 1] == '\r') --content_end;
          push(field_begin, content_end, false);
          out->end = i + 1;
          out->next_line = line + 1;
          return ScanResult::kRecord;
        } else {
          ++i;
        }
        break;
      case State::kQuoted:
        if (c == '"') {
          state = State::kAfterQuote;
        } else if (c == '\n') {
          ++line;
          line_start = i + 1;
        }
        ++i;
        break;
      case State::kAfterQuote:
        if (c == '"') {  // "" is an escaped quote
          state = State::kQuoted;
          ++i;
        } else if (c == delim) {
          push(field_begin, i - 1, true);
          state = State::kFieldStart;
          field_begin = ++i;
        } else if (c == '\n' || c == '\r') {
          size_t end = i + 1;
          if (c == '\r') {
            if (i + 1 == size_ && !eof_) return ScanResult::kNeedMore;
            if (i + 1 < size_ && buffer_[i + 1] != '\n') {
              return fail(line, line_start, "unexpected carriage return after a closing quote");
            }
            end = std::min(i + 2, size_);
          }
          push(field_begin, i - 1, true);
          out->end = end;
          out->next_line = line + 1;
          return ScanResult::kRecord;
        } else {
          return fail(
              line, line_start,
              absl::StrCat("unexpected ", DescribeByte(c), " after the closing quote of field ",
                           spans_.size() + 1, " (a quote inside a quoted field is written \"\")"));
        }
        break;
    }
  }
}

StatusOr<bool> CsvReader::Next(std::vector<std::string_view>* fields) {
  fields->clear();
  while (true) {
    if (pos_ == size_ || (at_file_start_ && size_ - pos_ < 3)) {
      if (eof_) {
        if (pos_ == size_) {
          return false;
        }
      } else {
        VREC_RETURN_IF_ERROR(Fill());
        continue;
      }
    }
    if (at_file_start_) {
      at_file_start_ = false;
      if (size_ - pos_ >= 3 && std::memcmp(buffer_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) {
        pos_ += 3;
        continue;
      }
    }
    if (skip_line_) {
      const char* begin = buffer_.data() + pos_;
      const void* nl = std::memchr(begin, '\n', size_ - pos_);
      if (nl == nullptr) {
        pos_ = size_;
        if (eof_) skip_line_ = false;
        continue;
      }
      pos_ += static_cast<const char*>(nl) - begin + 1;
      ++line_;
      skip_line_ = false;
      continue;
    }
    ScanOutput out;
    const ScanResult result = Scan(&out);
    if (result == ScanResult::kNeedMore) {
      VREC_RETURN_IF_ERROR(Fill());
      continue;
    }
    if (result == ScanResult::kError) {
      record_line_ = out.error_line;
      Resync(out.resume_offset, out.error_line);
      return Error(out.error_line, out.error);
    }
    record_line_ = line_;
    const size_t record_start = pos_;
    pos_ = out.end;
    line_ = out.next_line;
    if (spans_.size() == 1 && !spans_[0].quoted && spans_[0].begin == spans_[0].end) {
      continue;  // an empty line
    }
    fields->reserve(spans_.size());
    for (const FieldSpan& span : spans_) {
      char* const data = buffer_.data() + record_start;
      if (!span.quoted) {
        fields->emplace_back(data + span.begin, span.end - span.begin);
        continue;
      }
      // Unescape "" in place; the result is never longer than the source.
      size_t w = span.begin;
      for (size_t r = span.begin; r < span.end; ++r) {
        data[w++] = data[r];
        if (data[r] == '"') ++r;
      }
      fields->emplace_back(data + span.begin, w - span.begin);
    }
    return true;
  }
}

}  // namespace vrec
