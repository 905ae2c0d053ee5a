// `vrec convert`: a log (a MovieLens-layout CSV, or a team's events, users
// and items tables) to a dataset. This file only maps flags onto ConvertOptions and prints;
// the work is in data/csv_converter.h. See docs/convert.md.
#include <gflags/gflags.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "cli/command.h"
#include "cli/common_flags.h"
#include "data/csv_converter.h"
#include "data/log_values.h"

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
DEFINE_string(test_split, "last_watch",
              "What is held out for evaluation: last_watch (each user's last watch is a "
              "candidate test example; the user's impressions from that instant on are ranking "
              "test examples), last_day (every watch and impression of the log's last UTC day), "
              "or users (the users listed in --held_out_users: their last watch and all their "
              "impressions; everyone else trains)");
DEFINE_string(held_out_users, "",
              "With --test_split=users: a file of held-out user ids, one per line");
DEFINE_bool(clicks_are_watches, true,
            "Events tables: a click with watch_seconds > 0 is also a watch (for logs without "
            "separate watch rows); false: clicks only label impressions");
DEFINE_double(session_seconds, 1800,
              "An impression counts as clicked when a click on its item (or, in a log without "
              "clicks, a watch) follows within this many seconds");
DEFINE_string(window_end, "",
              "End of the training window (unix seconds or ISO 8601): example ages count back "
              "from it; default: the latest watch that is not held out");
DEFINE_string(label_from, "",
              "Events before this time (unix seconds or ISO 8601) are history only: "
              "histories and search tokens reach back into them, but they give no example; "
              "for converting a day with the days before it as context");
DEFINE_int64(sort_memory_mb, 1024,
             "Memory for sorting the events by user and time (32 bytes an event); a larger log "
             "is sorted in runs on disk (--sort_dir) and merged");
DEFINE_string(sort_dir, "", "Where sorted runs go (default: OUT/.sort; removed afterwards)");

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
  options.test_users_path = FLAGS_held_out_users;
  options.clicks_are_watches = FLAGS_clicks_are_watches;
  options.session_seconds = FLAGS_session_seconds;
  options.sort_memory_mb = FLAGS_sort_memory_mb;
  options.sort_dir = FLAGS_sort_dir;
  if (StatusOr<TestSplit> split = ParseTestSplit(FLAGS_test_split); split.ok()) {
    options.test_split = *split;
  } else {
    std::cerr << "vrec convert: --test_split: " << split.status().message() << "\n";
    return kExitUsage;
  }
  if (!FLAGS_label_from.empty()) {
    StatusOr<double> from = ParseTimestamp(FLAGS_label_from);
    if (!from.ok()) {
      std::cerr << "vrec convert: --label_from: " << from.status().message() << "\n";
      return kExitUsage;
    }
    options.label_from = *from;
  }
  if (!FLAGS_window_end.empty()) {
    StatusOr<double> end = ParseTimestamp(FLAGS_window_end);
    if (!end.ok()) {
      std::cerr << "vrec convert: --window_end: " << end.status().message() << "\n";
      return kExitUsage;
    }
    options.window_end = *end;
  }
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
    if (p.users_total > 0) {
      std::fprintf(stderr, "vrec convert: examples of %llu of %llu users built (%.0f%%), %.1f s\n",
                   static_cast<unsigned long long>(p.users),
                   static_cast<unsigned long long>(p.users_total), 100.0 * p.users / p.users_total,
                   p.seconds);
      return;
    }
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
