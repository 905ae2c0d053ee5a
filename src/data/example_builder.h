// ExampleBuilder turns one user's events, in time order (event_sorter.h),
// into the user's examples (docs/data_format.md, "From the tables to the two
// datasets"):
//
//   - watches (`watch` events, and `click` events with watch time when
//     clicks_are_watches) give candidate examples: every watch after the
//     user's first is a next-watch example whose history is the up-to-
//     max_history earlier watches and whose search tokens are the latest
//     max_history tokens of the user's earlier searches, oldest first;
//   - impressions give ranking examples: clicked when a click on the same
//     item follows within the session (the latest unanswered impression of
//     that item within session_ms before the click takes it), with that
//     click's watch time, or, when a click has none, that of a watch of the
//     item within the session after it. A log without click events labels
//     impressions by watches instead (labels_from_watches). Impressions of a
//     user at the same instant are one page. Features as the generator's
//     (proto/data.proto RankingExample), from the user's earlier events and
//     the items table;
//   - the held-out split (TestSplit) decides test or training.
//
// Repeated events (same kind, item and instant; a search with the same
// tokens) are counted, and dropped when drop_duplicates.
//
// Thread safety: one builder per thread; the log and options are shared,
// read-only.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "data/event_sorter.h"
#include "data/example_sink.h"
#include "data/interaction_log.h"
#include "proto/data.pb.h"
#include "vrec/status.h"

namespace vrec {

enum class TestSplit {
  // Each user's last watch (with at least one before it) is a candidate test
  // example; the user's impressions from that watch's instant on are ranking
  // test examples.
  kLastWatch,
  // Everything at or after test_from_ms: watches are candidate test
  // examples, impressions ranking test examples.
  kLastDay,
  // The users in test_users (keys) are held out as kLastWatch holds out
  // candidate examples, and all their impressions are ranking test examples
  // (the generator's split); the other users' examples all train.
  kUsers,
};

// "last_watch", "last_day", "users"; and back (kInvalidArgument naming the
// choices).
std::string ToString(TestSplit split);
StatusOr<TestSplit> ParseTestSplit(std::string_view text);

struct ExampleOptions {
  int max_history = 50;
  bool clicks_are_watches = true;
  bool labels_from_watches = false;
  int64_t session_ms = 30 * 60 * 1000;
  TestSplit split = TestSplit::kLastWatch;
  int64_t test_from_ms = std::numeric_limits<int64_t>::max();  // kLastDay
  const absl::flat_hash_set<uint64_t>* test_users = nullptr;   // kUsers
  // Events before this instant are history only: they give no example (a
  // day's conversion over a window of earlier days, docs/training.md).
  int64_t label_from_ms = std::numeric_limits<int64_t>::min();
  // Training candidate examples kept per user (uniformly, in time order);
  // 0 = all.
  int max_examples_per_user = 0;
  uint64_t seed = 1;
  bool drop_duplicates = true;
};

// What the builder counted, over every user it saw.
struct ExampleCounts {
  uint64_t duplicate_events = 0;
  uint64_t watches = 0;    // kept
  uint64_t rewatches = 0;  // watches of an item the user watched before
  uint64_t first_watches = 0;
  uint64_t single_watch_users = 0;
  uint64_t subsampled_out = 0;
  uint64_t candidate_train = 0, candidate_test = 0;
  uint64_t impressions = 0, clicked_impressions = 0;
  uint64_t unanswered_clicks = 0;  // clicks with no impression of the item before them
  uint64_t ranking_train = 0, ranking_test = 0;
  uint64_t searches = 0;
};

class ExampleBuilder {
 public:
  // REQUIRES: log (and options.test_users) outlive the builder.
  ExampleBuilder(const ExampleOptions& options, const InteractionLog* log);

  // The instant of the user's latest watch that is not held out (the
  // training window's end is the latest over users), or nullopt.
  std::optional<int64_t> LatestTrainingWatch(const UserEvents& user);

  // Writes the user's examples to *sink; example_age = t_max_days - time.
  Status Build(const UserEvents& user, double t_max_days, ExampleSink* sink);

  const ExampleCounts& counts() const { return counts_; }

 private:
  // Fills events_ (duplicates dropped or kept), watches_ (indices of watch
  // events) and the held-out boundary.
  void Prepare(const UserEvents& user, bool count);
  bool IsWatch(const LogEvent& e) const;
  bool HeldOutUser(uint32_t user) const;
  void LabelImpressions(const UserEvents& user);
  void FillHistory(size_t watches_before, size_t tokens_before,
                   google::protobuf::RepeatedField<uint64_t>* watches,
                   google::protobuf::RepeatedField<uint64_t>* tokens) const;

  const ExampleOptions options_;
  const InteractionLog* log_;
  ExampleCounts counts_;
  uint64_t next_example_id_ = 1;
  // Per-user scratch, reused.
  std::vector<LogEvent> events_;
  std::vector<uint64_t> event_tokens_;  // tokens of events_'s searches
  std::vector<size_t> watches_;         // indices into events_
  std::vector<float> impression_watch_;  // per event: < 0 not clicked, else watch seconds
  std::vector<uint64_t> history_;        // item keys of the watches so far
  std::vector<uint32_t> history_topic_;
  std::vector<uint64_t> tokens_;  // search tokens so far
  absl::flat_hash_map<uint32_t, int64_t> topic_last_watch_;
  absl::flat_hash_map<uint32_t, uint32_t> shown_;  // item -> impressions before
  absl::flat_hash_map<uint32_t, std::vector<size_t>> open_impressions_;
  absl::flat_hash_set<uint32_t> watched_;
  CandidateExample candidate_;
  RankingExample ranking_;
};

}  // namespace vrec
