// ConvertCsv turns a log into a dataset (dataset.h): an interaction log in
// the MovieLens layout (one row per watch: userId, movieId, timestamp;
// optional rating, title, genres), or a team's own log tables with string
// ids (options.events_path, users_path, items_path; docs/data_format.md).
//
// Every row becomes an event; the events are grouped by user, each user's in
// time order (ties keep file order), by an external sort under
// sort_memory_mb (event_sorter.h); each user's examples are then built
// (example_builder.h): candidate examples from watches (next-watch labels),
// ranking examples from impressions, held out by options.test_split.
//
// Output: DIR/candidate/train-*.rec (users spread over `shards` files by a
// hash of the user id), DIR/candidate/test-00000-of-00001.rec, the same under
// DIR/ranking/ when the log has impressions, DIR/videos.rec (one VideoInfo
// per item; topic from the first genre or the items table), DIR/topics.tsv,
// DIR/ids/ (events tables: the team's ids), and the manifest last. See
// docs/convert.md and docs/data_format.md.
//
// Memory: the id tables (a hash-map entry and the id per distinct user and
// item), the users' and items' attributes, the sort buffer (at most
// sort_memory_mb), and one user's events at a time.
//
// Thread safety: ConvertCsv is a free function with no shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "data/example_builder.h"
#include "vrec/status.h"

namespace vrec {

// Where a conversion is, for progress lines.
struct ConvertProgress {
  uint64_t rows = 0;         // data rows read so far
  uint64_t bytes = 0;        // bytes of the CSV consumed
  uint64_t total_bytes = 0;  // size of the CSV
  double seconds = 0;        // since the start
  // After the reading: users whose examples are built, of users_total.
  uint64_t users = 0;
  uint64_t users_total = 0;
};

struct ConvertOptions {
  // The input: a CSV in the MovieLens layout (integer ids), or an events
  // table of a team's own logs (docs/data_format.md: CSV or JSON Lines,
  // string ids; watches, and clicks with watch_seconds > 0, become the
  // interactions; the ids are kept in DIR/ids/). Exactly one.
  std::string csv_path;
  std::string events_path;
  // With events_path: the optional users and items tables.
  std::string users_path;
  std::string items_path;
  std::string out_dir;
  char delimiter = ',';
  // Watched items kept in an example's history (the most recent ones). > 0.
  int max_history = 50;
  // Number of training shard files. > 0.
  int shards = 4;
  // When set, only rows with rating >= min_rating are watches (the others are
  // dropped and counted as filtered_rows). Requires a rating column.
  std::optional<double> min_rating;
  // Keep at most this many training examples per user, chosen uniformly at
  // random (seeded by seed and the user id) and kept in time order; 0 = all.
  // Test examples are never dropped.
  int max_examples_per_user = 0;
  uint64_t seed = 1;
  // false: the first bad row is an error "FILE:LINE: reason". true: bad rows
  // are counted (ConvertSummary::skipped_rows) and skipped.
  bool skip_bad_rows = false;
  // Rows that repeat an earlier row's user, kind, item and timestamp (a
  // search: its query) are counted (duplicate_rows) and, when true, dropped:
  // the same event logged twice.
  bool drop_duplicate_rows = true;
  // What is held out (example_builder.h TestSplit). kUsers needs
  // test_users_path: one user id per line (the team's ids; MovieLens:
  // integers).
  TestSplit test_split = TestSplit::kLastWatch;
  std::string test_users_path;
  // Events tables: a click with watch_seconds > 0 is also a watch (a log
  // without separate watch rows). false: clicks only label impressions.
  bool clicks_are_watches = true;
  // An impression is clicked when a click on its item follows within this.
  double session_seconds = 30 * 60;
  // The end of the training window, unix seconds (example_age counts back
  // from it); unset: the latest watch that is not held out.
  std::optional<double> window_end;
  // Unix seconds: events before it are history only (histories and search
  // tokens reach back into them; they give no example). Unset: all label.
  std::optional<double> label_from;
  // The sort's memory budget; past it, sorted runs go to sort_dir (default
  // out_dir/.sort, removed afterwards).
  int64_t sort_memory_mb = 1024;
  std::string sort_dir;
  // Called about every progress_interval_s seconds while reading (0 = never).
  double progress_interval_s = 2.0;
  std::function<void(const ConvertProgress&)> on_progress;
};

struct ConvertSummary {
  uint64_t rows = 0;           // data rows read (not counting the header)
  uint64_t skipped_rows = 0;   // bad rows skipped (skip_bad_rows)
  uint64_t filtered_rows = 0;  // rows below min_rating
  // Repeats of an earlier row's user, item and timestamp (dropped unless
  // options.drop_duplicate_rows is false).
  uint64_t duplicate_rows = 0;
  uint64_t rewatches = 0;     // kept watches of an item the user watched before
  uint64_t interactions = 0;  // rows kept as watches
  uint64_t users = 0;         // distinct users with at least one watch
  uint64_t items = 0;         // distinct items watched
  uint64_t train_examples = 0;
  uint64_t test_examples = 0;
  uint64_t first_watches = 0;       // first interactions of users: no history, no example
  uint64_t single_watch_users = 0;  // users with one watch: no test example
  uint64_t subsampled_out = 0;      // training examples dropped by max_examples_per_user
  uint64_t topics = 0;              // distinct first genres (0 without a genres column)
  // Events tables: impressions and clicks that are not watches.
  uint64_t other_events = 0;
  uint64_t impressions = 0;
  uint64_t clicks = 0;
  uint64_t clicked_impressions = 0;
  uint64_t unanswered_clicks = 0;  // clicks without an impression of the item before them
  uint64_t ranking_train_examples = 0;
  uint64_t ranking_test_examples = 0;
  double test_from = 0;  // days: where the held-out day starts (test_split last_day)
  int sort_runs = 0;     // run files the external sort wrote (0: it fit in memory)
  uint64_t searches = 0;              // search events (their tokens go into examples)
  uint64_t users_without_events = 0;  // users-table rows of users no event names
  uint64_t items_without_events = 0;  // items-table rows of items never watched
  double t_max = 0;                   // days: the latest training interaction
  double seconds = 0;                 // wall time of the conversion
  // The first few bad-row errors (at most kMaxReportedErrors), when skipping.
  std::vector<std::string> first_errors;

  static constexpr size_t kMaxReportedErrors = 10;
};

// Converts options.csv_path into a dataset in options.out_dir (created if
// needed; an existing manifest there is removed first, so an interrupted run
// never leaves a complete-looking dataset). Errors: kInvalidArgument for bad
// options or input ("FILE:LINE: reason" for a bad row, the columns found for
// a header missing a required column), kNotFound for a missing CSV, others
// for I/O.
StatusOr<ConvertSummary> ConvertCsv(const ConvertOptions& options);

// The summary as one line of JSON: {"users":..,"items":..,"train_examples":..,
// "test_examples":..,"skipped_rows":.., ...}.
std::string ConvertSummaryJson(const ConvertSummary& summary);

}  // namespace vrec
