// Fuzzes the CSV reader (data/csv_reader.h) and the row parsing of `vrec
// convert` (data/csv_converter.h): the input is a CSV file.
//
// Checked beyond the sanitizers: a reader whose buffer starts at 16 bytes
// (it refills and grows inside records) agrees record for record, error for
// error, with one that reads the file at once, for ',' and ';'; a reader
// with a 32-byte record limit recovers from every error and reaches the
// end. Then ConvertCsv, skipping bad rows, turns the file into a dataset in
// a scratch folder (with a rating filter for inputs of odd length).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/csv_converter.h"
#include "data/csv_reader.h"
#include "fuzz_util.h"
#include "glog/logging.h"

namespace vrec::fuzz {
namespace {

// Records as "line: field|field|...", or "error: ..." for a bad one.
std::vector<std::string> ReadAll(const std::string& path, uint64_t size,
                                 const CsvReaderOptions& options) {
  std::vector<std::string> out;
  auto reader = CsvReader::Open(path, options);
  VREC_FUZZ_CHECK(reader.ok(), reader.status().ToString());
  std::vector<std::string_view> fields;
  // Each call consumes at least one byte, or ends the file.
  for (uint64_t calls = 0;; ++calls) {
    VREC_FUZZ_CHECK(calls <= size + 1, "the reader does not advance");
    StatusOr<bool> more = (*reader)->Next(&fields);
    if (!more.ok()) {
      VREC_FUZZ_CHECK(absl::IsInvalidArgument(more.status()), more.status().ToString());
      out.push_back(absl::StrCat("error: ", more.status().message()));
      continue;
    }
    if (!*more) break;
    std::string record = absl::StrCat((*reader)->line(), ":");
    for (std::string_view f : fields) record.append(" [").append(f).append("]");
    out.push_back(std::move(record));
    VREC_FUZZ_CHECK((*reader)->offset() <= size, "offset past the end");
  }
  VREC_FUZZ_CHECK((*reader)->offset() == size, "the end before the end of the file");
  return out;
}

}  // namespace
}  // namespace vrec::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FLAGS_minloglevel = 2;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vrec;
  static const std::string path = fuzz::ScratchPath("input.csv");
  static const std::string out_dir = fuzz::ScratchPath("dataset");
  fuzz::WriteFileOrDie(path, data, size);
  for (char delimiter : {',', ';'}) {
    CsvReaderOptions whole;
    whole.delimiter = delimiter;
    whole.buffer_bytes = size + 1;  // the whole file, not the default megabyte every input
    CsvReaderOptions small = whole;
    small.buffer_bytes = 16;
    VREC_FUZZ_CHECK(fuzz::ReadAll(path, size, whole) == fuzz::ReadAll(path, size, small),
                    "a 16-byte buffer reads the file differently");
  }
  CsvReaderOptions tight;
  tight.buffer_bytes = 16;
  tight.max_record_bytes = 32;
  fuzz::ReadAll(path, size, tight);

  ConvertOptions o;
  o.csv_path = path;
  o.out_dir = out_dir;
  o.shards = 2;
  o.max_examples_per_user = 2;
  o.skip_bad_rows = true;
  o.progress_interval_s = 0;
  if (size % 2 == 1) o.min_rating = 2.5;
  StatusOr<ConvertSummary> summary = ConvertCsv(o);
  if (summary.ok()) {
    VREC_FUZZ_CHECK(summary->interactions <= summary->rows, ConvertSummaryJson(*summary));
    VREC_FUZZ_CHECK(summary->train_examples + summary->test_examples <= summary->interactions,
                    ConvertSummaryJson(*summary));
  } else {
    VREC_FUZZ_CHECK(absl::IsInvalidArgument(summary.status()), summary.status().ToString());
  }
  return 0;
}
