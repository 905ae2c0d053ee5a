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
#include "common/file_util.h"
#include "common/random.h"
#include "data/csv_reader.h"
#include "data/dataset.h"
#include "data/events_reader.h"
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
  return absl::OkStatus();
}

Status RemoveIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("cannot remove ", path));
  }
  return absl::OkStatus();
}

using Log = InteractionLog;

Status ReadLog(const ConvertOptions& options, Log* log, ConvertSummary* summary) {
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
    log->interactions.push_back({user_it->second, item_it->second, row.timestamp});
  }
  summary->interactions = log->interactions.size();
  summary->users = log->user_ids.size();
  summary->items = log->item_ids.size();
  summary->topics = log->topic_names.size();
  if (log->interactions.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no interactions to convert (", summary->rows, " data rows: ",
        summary->skipped_rows, " bad and skipped, ", summary->filtered_rows, " below min_rating)"));
  }
  return absl::OkStatus();
}

// Opens writers; Close() on each before recording the shard.
class ShardSet {
 public:
  static StatusOr<ShardSet> Open(const std::string& dir, const std::string& prefix, int count) {
    ShardSet set;
    for (int i = 0; i < count; ++i) {
      const std::string rel = JoinPath("candidate", ShardFileName(prefix, i, count));
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

// One user's rows (time order) and searches (time order) in the log.
struct UserRows {
  const Interaction* rows;
  const SearchEvent* searches;
  size_t num_searches;
  uint32_t user;  // dense index
};

// The example of watch k of a user (k >= 1): its history, the search tokens
// of the user's searches before it (the latest max_history, oldest first),
// and the user's demographics when the log has them.
void FillExample(const UserRows& u, size_t k, uint64_t user_id, int max_history, double t_max,
                 const Log& log, uint64_t example_id, CandidateExample* ex) {
  ex->Clear();
  ex->set_example_id(example_id);
  ex->set_user_id(user_id);
  const size_t first = k > static_cast<size_t>(max_history) ? k - max_history : 0;
  for (size_t j = first; j < k; ++j) ex->add_watch_history(log.item_ids[u.rows[j].item]);
  ex->set_label_video(log.item_ids[u.rows[k].item]);
  const int64_t at = u.rows[k].timestamp;
  const SearchEvent* end =
      std::lower_bound(u.searches, u.searches + u.num_searches, at,
                       [](const SearchEvent& s, int64_t t) { return s.timestamp < t; });
  std::vector<uint64_t> tokens;  // newest first
  for (const SearchEvent* s = end; s != u.searches && tokens.size() < size_t(max_history);) {
    --s;
    for (uint32_t t = s->end; t > s->begin && tokens.size() < size_t(max_history); --t) {
      tokens.push_back(log.search_tokens[t - 1]);
    }
  }
  for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) ex->add_search_tokens(*it);
  const double time = static_cast<double>(at) / kSecondsPerDay;
  ex->set_time(time);
  ex->set_example_age(static_cast<float>(std::max(0.0, t_max - time)));
  ex->set_gender(log.user_gender.empty() ? 0.5f : log.user_gender[u.user]);  // 0.5: unknown
  if (!log.user_age.empty()) ex->set_age(log.user_age[u.user]);
}

}  // namespace

StatusOr<ConvertSummary> ConvertCsv(const ConvertOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  VREC_RETURN_IF_ERROR(ValidateOptions(options));
  ConvertSummary summary;
  Log log;
  VREC_RETURN_IF_ERROR(options.events_path.empty() ? ReadLog(options, &log, &summary)
                                                   : ReadEventsLog(options, &log, &summary));

  // A row repeating an earlier one's user, item and timestamp (a file
  // concatenated with itself, say) is the same watch: counted, and dropped
  // unless asked to keep them.
  {
    absl::flat_hash_set<std::tuple<uint32_t, uint32_t, int64_t>> seen;
    seen.reserve(log.interactions.size());
    size_t kept = 0;
    for (const Interaction& x : log.interactions) {
      const bool first = seen.insert({x.user, x.item, x.timestamp}).second;
      if (!first) ++summary.duplicate_rows;
      if (first || !options.drop_duplicate_rows) log.interactions[kept++] = x;
    }
    log.interactions.resize(kept);
    summary.interactions = kept;
  }

  // Group by user, each user's watches in time order, ties in file order.
  std::stable_sort(log.interactions.begin(), log.interactions.end(),
                   [](const Interaction& a, const Interaction& b) {
                     return a.user != b.user ? a.user < b.user : a.timestamp < b.timestamp;
                   });
  const size_t num_users = log.user_ids.size();
  std::vector<uint64_t> user_start(num_users + 1, 0);
  for (const Interaction& x : log.interactions) ++user_start[x.user + 1];
  for (size_t u = 0; u < num_users; ++u) user_start[u + 1] += user_start[u];

  // Searches grouped by user, in time order.
  std::stable_sort(log.searches.begin(), log.searches.end(),
                   [](const SearchEvent& a, const SearchEvent& b) {
                     return a.user != b.user ? a.user < b.user : a.timestamp < b.timestamp;
                   });
  std::vector<uint64_t> search_start(num_users + 1, 0);
  for (const SearchEvent& x : log.searches) ++search_start[x.user + 1];
  for (size_t u = 0; u < num_users; ++u) search_start[u + 1] += search_start[u];

  // Rewatches: a log without any is a log of unwatched next videos.
  {
    std::vector<uint32_t> items;
    for (size_t u = 0; u < num_users; ++u) {
      items.clear();
      for (uint64_t k = user_start[u]; k < user_start[u + 1]; ++k) {
        items.push_back(log.interactions[k].item);
      }
      std::sort(items.begin(), items.end());
      summary.rewatches +=
          items.size() -
          static_cast<size_t>(std::unique(items.begin(), items.end()) - items.begin());
    }
  }

  // t_max: the latest interaction that is not held out.
  int64_t t_max_seconds = INT64_MIN;
  for (size_t u = 0; u < num_users; ++u) {
    const uint64_t n = user_start[u + 1] - user_start[u];
    const uint64_t last_train = user_start[u] + (n >= 2 ? n - 2 : 0);
    t_max_seconds = std::max(t_max_seconds, log.interactions[last_train].timestamp);
  }
  summary.t_max = static_cast<double>(t_max_seconds) / kSecondsPerDay;

  // Never leave an old manifest beside new, partial files.
  VREC_RETURN_IF_ERROR(MakeDirs(JoinPath(options.out_dir, "candidate")));
  VREC_RETURN_IF_ERROR(RemoveIfExists(JoinPath(options.out_dir, "manifest.pb")));
  VREC_RETURN_IF_ERROR(RemoveIfExists(JoinPath(options.out_dir, "manifest.json")));
  VREC_ASSIGN_OR_RETURN(ShardSet train, ShardSet::Open(options.out_dir, "train", options.shards));
  VREC_ASSIGN_OR_RETURN(ShardSet test, ShardSet::Open(options.out_dir, "test", 1));

  // Users in a seeded pseudo-random order, each in the shard its hash picks.
  std::vector<std::pair<uint64_t, uint32_t>> order(num_users);
  for (size_t u = 0; u < num_users; ++u) {
    order[u] = {HashCombine(options.seed, log.user_ids[u]), static_cast<uint32_t>(u)};
  }
  std::sort(order.begin(), order.end());

  CandidateExample ex;
  uint64_t next_example_id = 1;
  const uint64_t cap = static_cast<uint64_t>(options.max_examples_per_user);
  for (const auto& [hash, u] : order) {
    const Interaction* rows = log.interactions.data() + user_start[u];
    const UserRows user_rows{rows, log.searches.data() + search_start[u],
                             static_cast<size_t>(search_start[u + 1] - search_start[u]), u};
    const uint64_t n = user_start[u + 1] - user_start[u];
    const uint64_t user_id = log.user_ids[u];
    ++summary.first_watches;
    if (n == 1) {
      ++summary.single_watch_users;
      continue;
    }
    // Training examples: watches 1 .. n-2. Selection sampling keeps `want`
    // of the `m` uniformly at random, in time order.
    RecordWriter& shard = train.at(hash % static_cast<uint64_t>(options.shards));
    const uint64_t m = n - 2;
    uint64_t want = (cap > 0 && m > cap) ? cap : m;
    summary.subsampled_out += m - want;
    Rng rng(options.seed, user_id);
    for (uint64_t k = 1; k <= m && want > 0; ++k) {
      const uint64_t remaining = m - (k - 1);
      if (want < remaining && rng.UniformInt(remaining) >= want) continue;
      --want;
      FillExample(user_rows, k, user_id, options.max_history, summary.t_max, log, next_example_id++,
                  &ex);
      VREC_RETURN_IF_ERROR(shard.WriteMessage(ex));
      ++summary.train_examples;
    }
    FillExample(user_rows, n - 1, user_id, options.max_history, summary.t_max, log,
                next_example_id++, &ex);
    VREC_RETURN_IF_ERROR(test.at(0).WriteMessage(ex));
    ++summary.test_examples;
  }

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

  // The catalogue: every watched item, by id.
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
  j["searches"] = s.searches;
  j["users_without_events"] = s.users_without_events;
  j["items_without_events"] = s.items_without_events;
  j["t_max"] = s.t_max;
  j["seconds"] = s.seconds;
  return j.dump();
}

}  // namespace vrec
