#include "data/csv_converter.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <memory>
#include <string_view>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/random.h"
#include "data/csv_reader.h"
#include "data/dataset.h"
#include "data/events_reader.h"
#include "data/event_sorter.h"
#include "data/example_builder.h"
#include "data/interaction_log.h"
#include "data/record_writer.h"
#include "nlohmann/json.hpp"
#include "proto/data.pb.h"

namespace vrec {
namespace {

constexpr double kSecondsPerDay = 86400.0;

// Column indices found in the header; -1 = absent.
struct Columns {
  int user = -1;
  int item = -1;
  int timestamp = -1;
  int rating = -1;
  int genres = -1;
  size_t count = 0;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <typename T>
bool ParseInteger(std::string_view s, T* out) {
  s = Trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool ParseDouble(std::string_view s, double* out) {
  s = Trim(s);
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(*out);
}

// Quotes a field value for an error message: shortened if long, and every
// byte that is not printable ASCII written as \xNN, so that a binary file's
// bytes never reach the terminal.
std::string Show(std::string_view s) {
  constexpr size_t kMax = 40;  // characters shown
  std::string out = "'";
  size_t i = 0;
  for (; i < s.size() && out.size() <= kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  absl::StrAppend(&out, i < s.size() ? "...'" : "'");
  return out;
}

StatusOr<Columns> ParseHeader(const std::vector<std::string_view>& fields, const std::string& path,
                              int64_t line) {
  Columns c;
  c.count = fields.size();
  std::vector<std::string> names;
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string name = std::string(Trim(fields[i]));
    names.push_back(name);
    const std::string lower = absl::AsciiStrToLower(name);
    int* slot = nullptr;
    if (lower == "userid") {
      slot = &c.user;
    } else if (lower == "movieid" || lower == "itemid") {
      slot = &c.item;
    } else if (lower == "timestamp") {
      slot = &c.timestamp;
    } else if (lower == "rating") {
      slot = &c.rating;
    } else if (lower == "genres") {
      slot = &c.genres;
    }
    if (slot == nullptr) continue;  // title and unknown columns are ignored
    if (*slot >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line, ": column ", Show(name), " appears twice in the header"));
    }
    *slot = static_cast<int>(i);
  }
  std::vector<std::string> missing;
  if (c.user < 0) missing.push_back("userId");
  if (c.item < 0) missing.push_back("movieId");
  if (c.timestamp < 0) missing.push_back("timestamp");
  if (!missing.empty()) {
    // The columns found, quoted and shortened (at most 8): a binary file's
    // first "line" can be thousands of bytes.
    std::vector<std::string> found;
    for (size_t i = 0; i < names.size() && i < 8; ++i) found.push_back(Show(names[i]));
    if (names.size() > 8) found.push_back(absl::StrCat("and ", names.size() - 8, " more"));
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", line, ": the header lacks required column(s) ", absl::StrJoin(missing, ", "),
        "; columns found: ", absl::StrJoin(found, ", "),
        " (required: userId, movieId, timestamp; optional: rating, title, genres). Is it a "
        "CSV file in MovieLens layout?"));
  }
  return c;
}

// A parsed data row.
struct Row {
  uint64_t user = 0;
  uint64_t item = 0;
  int64_t timestamp = 0;
  double rating = 0;
  std::string_view genres;
};

// Parses one data row; the error message is the reason only (no location).
Status ParseRow(const std::vector<std::string_view>& f, const Columns& c, bool need_rating,
                Row* row) {
  if (f.size() != c.count) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", c.count, " fields as in the header, found ", f.size()));
  }
  auto id = [](const char* name, std::string_view s, uint64_t* out) -> Status {
    if (Trim(s).empty()) return absl::InvalidArgumentError(absl::StrCat("missing ", name));
    if (!ParseInteger(s, out)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " ", Show(s), " is not a non-negative 64-bit integer"));
    }
    return absl::OkStatus();
  };
  VREC_RETURN_IF_ERROR(id("userId", f[c.user], &row->user));
  VREC_RETURN_IF_ERROR(id("movieId", f[c.item], &row->item));
  const std::string_view ts = f[c.timestamp];
  if (Trim(ts).empty()) return absl::InvalidArgumentError("missing timestamp");
  if (!ParseInteger(ts, &row->timestamp)) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestamp ", Show(ts), " is not an integer (unix seconds)"));
  }
  if (need_rating) {
    const std::string_view r = f[c.rating];
    if (Trim(r).empty()) return absl::InvalidArgumentError("missing rating");
    if (!ParseDouble(r, &row->rating)) {
      return absl::InvalidArgumentError(absl::StrCat("rating ", Show(r), " is not a number"));
    }
  }
  if (c.genres >= 0) row->genres = f[c.genres];
  return absl::OkStatus();
}

// The first genre of a MovieLens genres field ("Adventure|Children"), or
// empty when there is none.
std::string_view FirstGenre(std::string_view genres) {
  const size_t bar = genres.find('|');
  std::string_view first = Trim(genres.substr(0, bar));
  if (first == "(no genres listed)") return {};
  return first;
}

Status ValidateOptions(const ConvertOptions& o) {
  if (o.csv_path.empty() == o.events_path.empty()) {
    return absl::InvalidArgumentError("convert: give one input, a CSV or an events table");
  }
  if (o.events_path.empty() && (!o.users_path.empty() || !o.items_path.empty())) {
    return absl::InvalidArgumentError("convert: users and items tables go with an events table");
  }
  if (!o.events_path.empty() && o.min_rating.has_value()) {
    return absl::InvalidArgumentError("convert: min_rating is for MovieLens CSVs (ratings)");
  }
  if (o.out_dir.empty()) return absl::InvalidArgumentError("convert: no output folder given");
  if (o.max_history <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("convert: max_history must be > 0, got ", o.max_history));
  }
  if (o.shards <= 0 || o.shards > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("convert: shards must be in [1, 100000], got ", o.shards));
  }
  if (o.max_examples_per_user < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("convert: max_examples_per_user must be >= 0, got ", o.max_examples_per_user));
  }
  if (o.min_rating.has_value() && !std::isfinite(*o.min_rating)) {
    return absl::InvalidArgumentError("convert: min_rating must be a finite number");
  }
  if ((o.test_split == TestSplit::kUsers) != !o.test_users_path.empty()) {
    return absl::InvalidArgumentError(
        "convert: held_out_users (a file of user ids) goes with test_split=users, and it needs one");
  }
  if (o.sort_memory_mb <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("convert: sort_memory_mb must be > 0, got ", o.sort_memory_mb));
  }
  if (!(o.session_seconds > 0) || !std::isfinite(o.session_seconds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("convert: session_seconds must be > 0, got ", o.session_seconds));
  }
  if (o.label_from && !(std::fabs(*o.label_from) < 9.2e15)) {
    return absl::InvalidArgumentError("convert: label_from must be a finite time");
  }
  if (o.window_end && !std::isfinite(*o.window_end)) {
    return absl::InvalidArgumentError("convert: window_end must be a finite time");
  }
  return absl::OkStatus();
}

Status RemoveIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("cannot remove ", path));
  }
  return absl::OkStatus();
}

using Log = InteractionLog;

Status ReadLog(const ConvertOptions& options, Log* log, ConvertSummary* summary,
               EventSorter* sorter) {
  const std::string& path = options.csv_path;
  CsvReaderOptions reader_options;
  reader_options.delimiter = options.delimiter;
  VREC_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path, reader_options));

  std::vector<std::string_view> fields;
  VREC_ASSIGN_OR_RETURN(bool has_header, reader->Next(&fields));
  if (!has_header) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": empty file; expected a header line naming userId, movieId and timestamp"));
  }
  VREC_ASSIGN_OR_RETURN(const Columns columns, ParseHeader(fields, path, reader->line()));
  const bool need_rating = options.min_rating.has_value();
  if (need_rating && columns.rating < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": --min_rating needs a rating column, and the header has none"));
  }

  absl::flat_hash_map<uint64_t, uint32_t> user_index;
  absl::flat_hash_map<uint64_t, uint32_t> item_index;
  absl::flat_hash_map<std::string, uint32_t> topic_index;
  ReadPass pass(options, summary);

  Row row;
  while (true) {
    StatusOr<bool> more = reader->Next(&fields);
    if (!more.ok()) {
      // Malformed records are bad rows; anything else (I/O) is fatal.
      if (more.status().code() != absl::StatusCode::kInvalidArgument) return more.status();
      pass.Row(reader->file_position(), reader->file_size());
      VREC_RETURN_IF_ERROR(pass.BadRow(more.status()));
      continue;
    }
    if (!*more) break;
    pass.Row(reader->file_position(), reader->file_size());
    if (Status s = ParseRow(fields, columns, need_rating, &row); !s.ok()) {
      VREC_RETURN_IF_ERROR(pass.BadRow(
          absl::InvalidArgumentError(absl::StrCat(path, ":", reader->line(), ": ", s.message()))));
      continue;
    }
    if (need_rating && row.rating < *options.min_rating) {
      ++summary->filtered_rows;
      continue;
    }
    const auto [user_it, new_user] =
        user_index.try_emplace(row.user, static_cast<uint32_t>(log->user_ids.size()));
    if (new_user) log->user_ids.push_back(row.user);
    const auto [item_it, new_item] =
        item_index.try_emplace(row.item, static_cast<uint32_t>(log->item_ids.size()));
    if (new_item) {
      log->item_ids.push_back(row.item);
      uint32_t topic = 0;
      const std::string_view genre = FirstGenre(row.genres);
      if (!genre.empty()) {
        const auto [topic_it, new_topic] = topic_index.try_emplace(
            std::string(genre), static_cast<uint32_t>(log->topic_names.size() + 1));
        if (new_topic) log->topic_names.emplace_back(genre);
        topic = topic_it->second;
      }
      log->item_topic.push_back(topic);
    }
    if (log->user_ids.size() >= UINT32_MAX || log->item_ids.size() >= UINT32_MAX) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ":", reader->line(), ": more than 2^32 - 1 distinct users or items"));
    }
    if (row.timestamp > INT64_MAX / 1000 || row.timestamp < INT64_MIN / 1000) {
      VREC_RETURN_IF_ERROR(pass.BadRow(absl::InvalidArgumentError(
          absl::StrCat(path, ":", reader->line(), ": timestamp ", row.timestamp, " is out of range"))));
      continue;
    }
    LogEvent event;
    event.user = user_it->second;
    event.item = item_it->second;
    event.time_ms = row.timestamp * 1000;
    VREC_RETURN_IF_ERROR(sorter->Add(event));
    ++summary->interactions;
  }
  summary->users = log->user_ids.size();
  summary->items = log->item_ids.size();
  summary->topics = log->topic_names.size();
  if (summary->interactions == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no interactions to convert (", summary->rows, " data rows: ",
        summary->skipped_rows, " bad and skipped, ", summary->filtered_rows, " below min_rating)"));
  }
  return absl::OkStatus();
}

// Opens writers; Close() on each before recording the shard.
class ShardSet {
 public:
  // DIR/KIND/PREFIX-i-of-count.rec
  static StatusOr<ShardSet> Open(const std::string& dir, const std::string& kind,
                                 const std::string& prefix, int count) {
    ShardSet set;
    for (int i = 0; i < count; ++i) {
      const std::string rel = JoinPath(kind, ShardFileName(prefix, i, count));
      VREC_ASSIGN_OR_RETURN(auto writer, RecordWriter::Create(JoinPath(dir, rel)));
      set.names_.push_back(rel);
      set.writers_.push_back(std::move(writer));
    }
    return set;
  }
  RecordWriter& at(size_t i) { return *writers_[i]; }
  Status CloseInto(google::protobuf::RepeatedPtrField<ShardInfo>* shards) {
    for (size_t i = 0; i < writers_.size(); ++i) {
      VREC_RETURN_IF_ERROR(writers_[i]->Close());
      ShardInfo* info = shards->Add();
      info->set_path(names_[i]);
      info->set_records(writers_[i]->records());
      info->set_bytes(writers_[i]->offset());
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<RecordWriter>> writers_;
};

// Routes a user's examples to the shard files: training ones to the shard
// the user's hash picks.
class ShardSink : public ExampleSink {
 public:
  ShardSink(ShardSet* candidate_train, ShardSet* candidate_test, ShardSet* ranking_train,
            ShardSet* ranking_test)
      : candidate_train_(candidate_train),
        candidate_test_(candidate_test),
        ranking_train_(ranking_train),
        ranking_test_(ranking_test) {}
  void set_shard(size_t shard) { shard_ = shard; }
  Status AddCandidate(const CandidateExample& e, bool test) override {
    return (test ? candidate_test_->at(0) : candidate_train_->at(shard_)).WriteMessage(e);
  }
  Status AddRanking(const RankingExample& e, bool test) override {
    return (test ? ranking_test_->at(0) : ranking_train_->at(shard_)).WriteMessage(e);
  }

 private:
  ShardSet *candidate_train_, *candidate_test_, *ranking_train_, *ranking_test_;
  size_t shard_ = 0;
};

// The held-out users' keys, one id per line (blank lines and a trailing
// newline ignored).
StatusOr<absl::flat_hash_set<uint64_t>> ReadTestUsers(const ConvertOptions& options) {
  VREC_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(options.test_users_path));
  absl::flat_hash_set<uint64_t> users;
  int64_t line = 0;
  for (absl::string_view piece : absl::StrSplit(text, '\n')) {
    std::string_view id(piece.data(), piece.size());
    ++line;
    if (!id.empty() && id.back() == '\r') id.remove_suffix(1);
    if (id.empty()) continue;
    if (!options.events_path.empty()) {
      users.insert(IdKey(id));
      continue;
    }
    uint64_t key = 0;
    if (!ParseInteger(id, &key)) {
      return absl::InvalidArgumentError(absl::StrCat(options.test_users_path, ":", line,
                                                     ": user ", Show(id),
                                                     " is not an integer id (MovieLens layout)"));
    }
    users.insert(key);
  }
  if (users.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.test_users_path, ": no user ids (one per line)"));
  }
  return users;
}

// 00:00 UTC of the day of `ms`.
int64_t DayStartMs(int64_t ms) {
  constexpr int64_t kMsPerDay = 86400 * 1000;
  const int64_t day = ms >= 0 ? ms / kMsPerDay : -((-ms + kMsPerDay - 1) / kMsPerDay);
  return day * kMsPerDay;
}

}  // namespace

StatusOr<ConvertSummary> ConvertCsv(const ConvertOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  VREC_RETURN_IF_ERROR(ValidateOptions(options));
  absl::flat_hash_set<uint64_t> test_users;
  if (options.test_split == TestSplit::kUsers) {
    VREC_ASSIGN_OR_RETURN(test_users, ReadTestUsers(options));
  }
  ConvertSummary summary;
  Log log;
  EventSorter sorter(static_cast<size_t>(options.sort_memory_mb) << 20,
                     options.sort_dir.empty() ? JoinPath(options.out_dir, ".sort")
                                              : options.sort_dir,
                     &log.user_ids, options.seed);
  VREC_RETURN_IF_ERROR(options.events_path.empty()
                           ? ReadLog(options, &log, &summary, &sorter)
                           : ReadEventsLog(options, &log, &summary, &sorter));
  VREC_RETURN_IF_ERROR(sorter.Finish());
  summary.sort_runs = sorter.runs();

  ExampleOptions eo;
  eo.max_history = options.max_history;
  eo.clicks_are_watches = options.clicks_are_watches;
  eo.labels_from_watches = summary.clicks == 0;
  eo.session_ms = static_cast<int64_t>(std::llround(options.session_seconds * 1000));
  eo.split = options.test_split;
  eo.test_users = &test_users;
  eo.max_examples_per_user = options.max_examples_per_user;
  eo.seed = options.seed;
  eo.drop_duplicates = options.drop_duplicate_rows;
  if (options.label_from) {
    eo.label_from_ms = static_cast<int64_t>(std::llround(*options.label_from * 1000));
  }
  if (options.test_split == TestSplit::kLastDay) {
    eo.test_from_ms = DayStartMs(sorter.max_time_ms());
    summary.test_from = static_cast<double>(eo.test_from_ms) / (kSecondsPerDay * 1000);
  }

  // The training window's end: given, or the latest watch not held out.
  if (options.window_end) {
    summary.t_max = *options.window_end / kSecondsPerDay;
  } else {
    ExampleBuilder scan(eo, &log);
    std::optional<int64_t> latest;
    VREC_RETURN_IF_ERROR(sorter.ForEachUser([&](const UserEvents& u) -> Status {
      const std::optional<int64_t> t = scan.LatestTrainingWatch(u);
      if (t && (!latest || *t > *latest)) latest = t;
      return absl::OkStatus();
    }));
    if (!latest) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.events_path.empty() ? options.csv_path : options.events_path,
          ": every watch is held out (", ToString(options.test_split),
          "): nothing to train on"));
    }
    summary.t_max = static_cast<double>(*latest) / (kSecondsPerDay * 1000);
  }

  // Never leave an old manifest beside new, partial files.
  VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(options.out_dir, "candidate")));
  VREC_RETURN_IF_ERROR(RemoveIfExists(JoinPath(options.out_dir, "manifest.pb")));
  VREC_RETURN_IF_ERROR(RemoveIfExists(JoinPath(options.out_dir, "manifest.json")));
  const bool ranking = summary.impressions > 0;
  if (ranking) VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(options.out_dir, "ranking")));
  VREC_ASSIGN_OR_RETURN(ShardSet train,
                        ShardSet::Open(options.out_dir, "candidate", "train", options.shards));
  VREC_ASSIGN_OR_RETURN(ShardSet test, ShardSet::Open(options.out_dir, "candidate", "test", 1));
  ShardSet ranking_train, ranking_test;
  if (ranking) {
    VREC_ASSIGN_OR_RETURN(ranking_train,
                          ShardSet::Open(options.out_dir, "ranking", "train", options.shards));
    VREC_ASSIGN_OR_RETURN(ranking_test, ShardSet::Open(options.out_dir, "ranking", "test", 1));
  }

  ShardSink sink(&train, &test, &ranking_train, &ranking_test);
  ExampleBuilder builder(eo, &log);
  ConvertProgress progress;
  progress.rows = summary.rows;
  progress.users_total = log.user_ids.size();
  auto last_progress = std::chrono::steady_clock::now();
  VREC_RETURN_IF_ERROR(sorter.ForEachUser([&](const UserEvents& u) -> Status {
    sink.set_shard(HashCombine(options.seed, log.user_ids[u.user]) %
                   static_cast<uint64_t>(options.shards));
    if (++progress.users % 4096 == 0 && options.on_progress && options.progress_interval_s > 0) {
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last_progress).count() >=
          options.progress_interval_s) {
        last_progress = now;
        progress.seconds = std::chrono::duration<double>(now - start).count();
        options.on_progress(progress);
      }
    }
    return builder.Build(u, summary.t_max, &sink);
  }));
  const ExampleCounts& c = builder.counts();
  summary.duplicate_rows = c.duplicate_events;
  summary.interactions = c.watches;
  summary.rewatches = c.rewatches;
  summary.first_watches = c.first_watches;
  summary.single_watch_users = c.single_watch_users;
  summary.subsampled_out = c.subsampled_out;
  summary.train_examples = c.candidate_train;
  summary.test_examples = c.candidate_test;
  summary.clicked_impressions = c.clicked_impressions;
  summary.unanswered_clicks = c.unanswered_clicks;
  summary.ranking_train_examples = c.ranking_train;
  summary.ranking_test_examples = c.ranking_test;

  DatasetManifest manifest;
  manifest.set_format_version(kDatasetFormatVersion);
  manifest.set_source(options.events_path.empty()
                          ? absl::StrCat("convert:", options.csv_path)
                          : absl::StrCat("convert:events:", options.events_path));
  manifest.set_seed(options.seed);
  manifest.set_t_max(summary.t_max);
  manifest.set_watches_unique(summary.rewatches == 0);
  VREC_RETURN_IF_ERROR(train.CloseInto(manifest.mutable_candidate_train()));
  VREC_RETURN_IF_ERROR(test.CloseInto(manifest.mutable_candidate_test()));
  if (ranking) {
    VREC_RETURN_IF_ERROR(ranking_train.CloseInto(manifest.mutable_ranking_train()));
    VREC_RETURN_IF_ERROR(ranking_test.CloseInto(manifest.mutable_ranking_test()));
    manifest.set_ranking_train_examples(summary.ranking_train_examples);
  }
  manifest.set_candidate_train_examples(summary.train_examples);

  // The catalogue: every item the events name, by id.
  {
    std::vector<uint32_t> items(log.item_ids.size());
    for (size_t i = 0; i < items.size(); ++i) items[i] = static_cast<uint32_t>(i);
    std::sort(items.begin(), items.end(),
              [&](uint32_t a, uint32_t b) { return log.item_ids[a] < log.item_ids[b]; });
    VREC_ASSIGN_OR_RETURN(auto videos,
                          RecordWriter::Create(JoinPath(options.out_dir, "videos.rec")));
    VideoInfo info;
    for (uint32_t i : items) {
      info.Clear();
      info.set_video_id(log.item_ids[i]);
      info.set_topic(log.item_topic[i]);
      if (!log.item_upload_time.empty() && !std::isnan(log.item_upload_time[i])) {
        info.set_upload_time(log.item_upload_time[i]);
      }
      if (!log.item_duration.empty()) info.set_duration(log.item_duration[i]);
      VREC_RETURN_IF_ERROR(videos->WriteMessage(info));
    }
    VREC_RETURN_IF_ERROR(videos->Close());
    manifest.set_videos("videos.rec");
  }
  if (!log.topic_names.empty()) {
    // MovieLens: the first genre; an items table: its topic or channel.
    std::string tsv = log.item_names ? "topic\tname\n" : "topic\tgenre\n";
    for (size_t t = 0; t < log.topic_names.size(); ++t) {
      absl::StrAppend(&tsv, t + 1, "\t", log.topic_names[t], "\n");
    }
    VREC_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(options.out_dir, "topics.tsv"), tsv));
  }
  if (log.user_names) {  // the team's ids of every key (docs/data_format.md)
    VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(options.out_dir, "ids")));
    VREC_RETURN_IF_ERROR(log.user_names->Write(JoinPath(options.out_dir, "ids/users.tsv")));
    VREC_RETURN_IF_ERROR(log.item_names->Write(JoinPath(options.out_dir, "ids/items.tsv")));
  }
  manifest.set_num_users(summary.users);
  manifest.set_num_videos(summary.items);
  VREC_RETURN_IF_ERROR(WriteManifest(options.out_dir, manifest));
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::string ConvertSummaryJson(const ConvertSummary& s) {
  nlohmann::ordered_json j;
  j["users"] = s.users;
  j["items"] = s.items;
  j["train_examples"] = s.train_examples;
  j["test_examples"] = s.test_examples;
  j["skipped_rows"] = s.skipped_rows;
  j["rows"] = s.rows;
  j["filtered_rows"] = s.filtered_rows;
  j["duplicate_rows"] = s.duplicate_rows;
  j["rewatches"] = s.rewatches;
  j["interactions"] = s.interactions;
  j["first_watches"] = s.first_watches;
  j["single_watch_users"] = s.single_watch_users;
  j["subsampled_out"] = s.subsampled_out;
  j["topics"] = s.topics;
  j["other_events"] = s.other_events;
  j["impressions"] = s.impressions;
  j["clicks"] = s.clicks;
  j["clicked_impressions"] = s.clicked_impressions;
  j["unanswered_clicks"] = s.unanswered_clicks;
  j["ranking_train_examples"] = s.ranking_train_examples;
  j["ranking_test_examples"] = s.ranking_test_examples;
  j["sort_runs"] = s.sort_runs;
  j["searches"] = s.searches;
  j["users_without_events"] = s.users_without_events;
  j["items_without_events"] = s.items_without_events;
  j["t_max"] = s.t_max;
  if (s.test_from != 0) j["test_from"] = s.test_from;
  j["seconds"] = s.seconds;
  return j.dump();
}

}  // namespace vrec
