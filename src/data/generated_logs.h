// A generated world written as a team's log tables (docs/data_format.md,
// "Generated logs"): `vrec datagen --logs=DIR` writes, from the simulator's
// own actions (generator.h ActionSink),
//
//   DIR/events.csv      user,item,timestamp,event,watch_seconds,query,position,device,region
//   DIR/items.csv       item,upload_time,topic,duration        (every video of the world)
//   DIR/users.csv       user,age,gender,region,logged_in       (every user)
//   DIR/test_users.txt  the held-out users, one id a line
//   DIR/README          what these are, and the `vrec convert` command that
//                       turns them back into the native examples; written
//                       last: the logs are complete when it exists
//
// so that `vrec convert` can be checked against the generator: converting
// the tables gives the examples datagen wrote (with --max_examples_per_user=0
// and next-watch labels), up to the ids (tests/tools/compare_logs_dataset.cc).
//
// Names: users `u<id>`, items `v<id>` (the numeric ids of the native
// examples), search tokens `w<id>` (a search's query is its tokens separated
// by single spaces), regions `r<n>`, devices `d<n>`, topics `topic<k>` (k as
// VideoInfo.topic, 1-based). Time: the world's day d is unix time d * 86400
// s; timestamps and upload times are seconds with exactly three decimals.
//
// Per user, the events are its actions in time order: a search is one
// `search` row; a page shown at a watch's time t is one `impression` row per
// slot (position 0..page_size-1), then one `click` row per clicked
// impression (watch_seconds = its watch time, written so that it parses
// back to the same float), then the `watch` row at t. Every row carries the
// user's device and region. Users come in shard order (user % shards), each
// user's rows together: the same files for any number of threads.
//
// Thread safety: a LogShardWriter is used by one thread at a time; the free
// functions are thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "data/generator.h"
#include "data/world.h"
#include "nlohmann/json.hpp"
#include "vrec/status.h"

namespace vrec {

// The tables' names for the world's ids.
std::string LogUserName(uint64_t user_id);    // "u<id>"
std::string LogItemName(uint64_t video_id);   // "v<id>"
std::string LogTokenName(uint64_t token_id);  // "w<id>"
std::string LogRegionName(uint32_t region);   // "r<n>"
std::string LogDeviceName(uint32_t device);   // "d<n>"
std::string LogTopicName(uint32_t topic);     // "topic<k>", k 1-based as VideoInfo.topic

// Days as unix seconds with exactly three decimals (milliseconds, rounded
// to nearest): 2.0000014467592594 -> "172800.125"; negative days keep their sign.
std::string FormatLogSeconds(double days);
// The shortest decimal that parses (as a double) back to exactly `value`.
std::string FormatLogNumber(double value);
// Appends `field` to a CSV row, quoted (RFC 4180: `"`, `""` for a quote)
// when it holds a comma, a quote, CR or LF, or starts or ends with a space.
void AppendCsvField(std::string_view field, std::string* row);

// What the logs hold, summed over shards.
struct GeneratedLogCounts {
  int64_t events = 0;  // rows of events.csv
  int64_t searches = 0;
  int64_t impressions = 0;
  int64_t clicks = 0;
  int64_t watches = 0;
  int64_t users = 0;  // rows of users.csv
  int64_t test_users = 0;
  int64_t items = 0;  // rows of items.csv
  void Merge(const GeneratedLogCounts& o);
  nlohmann::json ToJson() const;
};

class LogTextFile;  // generated_logs.cc

// One shard's part of the tables: DIR/events.csv.part-SSSSS and the like,
// rows without headers, joined by FinishGeneratedLogs. Errors name the file.
class LogShardWriter : public ActionSink {
 public:
  static StatusOr<std::unique_ptr<LogShardWriter>> Open(const std::string& dir, int shard);
  ~LogShardWriter() override;

  Status BeginUser(const UserProfile& user, bool test) override;
  Status Search(double time, const uint64_t* token_ids, size_t n) override;
  Status Page(double time, const PageImpression* impressions, size_t n) override;
  Status Watch(double time, uint64_t video_id) override;
  // Flushes and closes the parts (no fsync: they are joined, then removed).
  Status Close();

  const GeneratedLogCounts& counts() const { return counts_; }

 private:
  LogShardWriter() = default;
  Status AddEvent(std::string_view item, double time, std::string_view event,
                  std::string_view watch_seconds, std::string_view query,
                  std::string_view position);

  std::unique_ptr<LogTextFile> events_, users_, test_users_;
  GeneratedLogCounts counts_;
  // The current user's names.
  std::string user_, device_, region_;
  std::string row_;  // scratch
};

// The paths of shard `shard`'s parts of DIR's tables (for tests and cleanup).
std::string LogPartPath(const std::string& dir, const std::string& table, int shard);

// Removes DIR/README (the logs are incomplete until FinishGeneratedLogs
// writes it again) and creates DIR.
Status StartGeneratedLogs(const std::string& dir);

// Writes items.csv from the world, joins the `shards` parts of events.csv,
// users.csv and test_users.txt in shard order (removing them), fsyncs when
// options.sync, and writes README last. `counts` has the shards' counts;
// its items are set here.
Status FinishGeneratedLogs(const World& world, const GeneratorOptions& options, int shards,
                           GeneratedLogCounts* counts);

// The `vrec convert` command that turns options.logs_dir's tables into the
// native split (held-out users from test_users.txt, the window ending at
// t_max) into `out`. Paths are quoted for a POSIX shell when they need it.
std::string GeneratedLogsConvertCommand(const GeneratorOptions& options, const World& world,
                                        const std::string& out);

}  // namespace vrec
