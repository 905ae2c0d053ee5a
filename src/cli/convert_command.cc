// `vrec convert`: an interaction CSV (MovieLens layout) to a candidate-
// generation dataset. This file only maps flags onto ConvertOptions and prints;
// the work is in data/csv_converter.h. See docs/convert.md.
#include <gflags/gflags.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "cli/command.h"
#include "cli/common_flags.h"
#include "data/csv_converter.h"

// --out, --seed, --shards, --max_history, --max_examples_per_user and
// --progress_seconds are shared with `vrec datagen`: see cli/common_flags.h.
DEFINE_string(csv, "",
              "Interaction CSV to convert, MovieLens layout (a regular file, plain or gzip; "
              "header line required)");
DEFINE_string(events, "",
              "Instead of --csv: an events table of your own logs, CSV or JSON Lines (.jsonl), "
              "plain or gzip, with user, item, timestamp and optional event and watch_seconds "
              "columns; ids are any strings, kept in DIR/ids/ (docs/data_format.md)");
DEFINE_string(users, "",
              "With --events: a users table (user, age, gender, region), CSV or JSON Lines");
DEFINE_string(items, "",
              "With --events: an items table (item, upload_time, topic or channel, duration), "
              "CSV or JSON Lines");
DEFINE_string(min_rating, "",
              "If set (a number), only rows with rating >= this are watches; needs a rating "
              "column");
DEFINE_bool(skip_bad_rows, false,
            "Skip and count malformed rows instead of failing on the first one");
DEFINE_bool(drop_duplicate_rows, true,
            "Drop rows that repeat an earlier row's user, item and timestamp (the same watch "
            "logged twice, a file concatenated with itself); they are counted either way");
DEFINE_string(delimiter, ",", "Field separator: one character, or \"tab\"");

namespace vrec::cli {

int RunConvert(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "vrec convert: unexpected argument '" << argv[1]
              << "'; usage: vrec convert --csv=FILE|--events=FILE --out=DIR\n";
    return kExitUsage;
  }
  if (FLAGS_csv.empty() == FLAGS_events.empty() || FLAGS_out.empty()) {
    std::cerr << "vrec convert: --out and one of --csv or --events are required; see `vrec "
                 "convert --help`\n";
    return kExitUsage;
  }
  ConvertOptions options;
  options.csv_path = FLAGS_csv;
  options.events_path = FLAGS_events;
  options.users_path = FLAGS_users;
  options.items_path = FLAGS_items;
  options.out_dir = FLAGS_out;
  options.max_history = FLAGS_max_history;
  options.shards = FLAGS_shards;
  options.max_examples_per_user = FLAGS_max_examples_per_user;
  options.seed = FLAGS_seed;
  options.skip_bad_rows = FLAGS_skip_bad_rows;
  options.drop_duplicate_rows = FLAGS_drop_duplicate_rows;
  options.progress_interval_s = FLAGS_progress_seconds;
  if (FLAGS_delimiter == "tab" || FLAGS_delimiter == "\\t") {
    options.delimiter = '\t';
  } else if (FLAGS_delimiter.size() == 1) {
    options.delimiter = FLAGS_delimiter[0];
  } else {
    std::cerr << "vrec convert: --delimiter must be one character or \"tab\", got '"
              << FLAGS_delimiter << "'\n";
    return kExitUsage;
  }
  if (!FLAGS_min_rating.empty()) {
    double min_rating = 0;
    if (!absl::SimpleAtod(FLAGS_min_rating, &min_rating)) {
      std::cerr << "vrec convert: --min_rating must be a number, got '" << FLAGS_min_rating
                << "'\n";
      return kExitUsage;
    }
    options.min_rating = min_rating;
  }
  options.on_progress = [](const ConvertProgress& p) {
    const double pct = p.total_bytes > 0 ? 100.0 * p.bytes / p.total_bytes : 0.0;
    std::fprintf(stderr, "vrec convert: %llu rows read (%.1f%% of the file), %.0f rows/s\n",
                 static_cast<unsigned long long>(p.rows), pct,
                 p.seconds > 0 ? p.rows / p.seconds : 0.0);
  };

  StatusOr<ConvertSummary> summary = ConvertCsv(options);
  if (!summary.ok()) {
    std::cerr << "vrec convert: " << summary.status().message() << "\n";
    const bool usage = summary.status().code() == absl::StatusCode::kInvalidArgument &&
                       summary.status().message().rfind("convert:", 0) == 0;
    return usage ? kExitUsage : kExitFailure;
  }
  if (summary->skipped_rows > 0) {
    std::cerr << "vrec convert: skipped " << summary->skipped_rows << " bad rows; the first:\n";
    for (const std::string& e : summary->first_errors) std::cerr << "  " << e << "\n";
  }
  if (summary->duplicate_rows > 0) {
    std::cerr << "vrec convert: " << (FLAGS_drop_duplicate_rows ? "dropped " : "kept (as asked) ")
              << summary->duplicate_rows
              << " rows that repeat an earlier row's user, item and timestamp\n";
  }
  std::cerr << "vrec convert: wrote " << FLAGS_out << " in " << summary->seconds << " s\n";
  std::cout << ConvertSummaryJson(*summary) << std::endl;
  return kExitOk;
}

}  // namespace vrec::cli
