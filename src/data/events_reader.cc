#include "data/events_reader.h"

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "data/log_values.h"
#include "data/table_reader.h"

namespace vrec {
namespace {

constexpr uint64_t kProgressCheckRows = 1 << 16;
constexpr double kSecondsPerDay = 86400.0;
constexpr size_t kMaxTokensPerSearch = 50;

using Values = std::vector<std::optional<std::string>>;

// Reads every row of `path`'s `columns`, calling row(values, fail) for
// each; fail(why) makes a bad row of it.
template <typename RowFn>
Status ForEachRow(const std::string& path, std::vector<std::string> columns, ReadPass* pass,
                  const RowFn& row) {
  VREC_ASSIGN_OR_RETURN(std::unique_ptr<TableReader> reader,
                        TableReader::Open(path, std::move(columns)));
  Values v;
  while (true) {
    StatusOr<bool> more = reader->Next(&v);
    if (!more.ok()) {
      // Malformed rows are bad rows; anything else (I/O, damage) is fatal.
      if (more.status().code() != absl::StatusCode::kInvalidArgument) return more.status();
      pass->Row(reader->file_position(), reader->file_size());
      VREC_RETURN_IF_ERROR(pass->BadRow(more.status()));
      continue;
    }
    if (!*more) return absl::OkStatus();
    pass->Row(reader->file_position(), reader->file_size());
    auto fail = [&](const std::string& why) {
      return pass->BadRow(
          absl::InvalidArgumentError(absl::StrCat(path, ":", reader->line(), ": ", why)));
    };
    VREC_RETURN_IF_ERROR(row(v, fail));
  }
}

Status ReadEvents(const ConvertOptions& options, InteractionLog* log, ConvertSummary* summary,
                  ReadPass* pass, EventSorter* sorter) {
  enum { kUser, kItem, kTime, kEvent, kWatchSeconds, kQuery, kPosition, kDevice, kRegion };
  log->user_names.emplace("user");
  log->item_names.emplace("item");
  absl::flat_hash_map<uint64_t, uint32_t> user_index, item_index;
  auto user_of = [&](const std::string& id) -> StatusOr<uint32_t> {
    VREC_ASSIGN_OR_RETURN(const uint64_t key, log->user_names->Add(id));
    const auto [it, added] =
        user_index.try_emplace(key, static_cast<uint32_t>(log->user_ids.size()));
    if (added) log->user_ids.push_back(key);
    return it->second;
  };
  auto item_of = [&](const std::string& id) -> StatusOr<uint32_t> {
    VREC_ASSIGN_OR_RETURN(const uint64_t key, log->item_names->Add(id));
    const auto [it, added] =
        item_index.try_emplace(key, static_cast<uint32_t>(log->item_ids.size()));
    if (added) {
      log->item_ids.push_back(key);
      log->item_topic.push_back(0);
    }
    return it->second;
  };
  const std::string& path = options.events_path;
  std::vector<uint64_t> tokens;
  uint64_t watches = 0;
  VREC_RETURN_IF_ERROR(ForEachRow(
      path,
      {"user", "item", "timestamp", "event", "watch_seconds", "query", "position", "device",
       "region"},
      pass, [&](const Values& v, const auto& fail) -> Status {
        EventKind kind = EventKind::kWatch;
        if (v[kEvent]) {
          StatusOr<EventKind> k = ParseEventKind(*v[kEvent]);
          if (!k.ok()) return fail(std::string(k.status().message()));
          kind = *k;
        }
        const bool search = kind == EventKind::kSearch;
        if (!v[kUser] || !v[kTime] || (!search && !v[kItem]) || (search && !v[kQuery])) {
          return fail(absl::StrCat("missing ",
                                   !v[kUser]   ? "user"
                                   : !v[kTime] ? "timestamp"
                                   : search    ? "query"
                                               : "item",
                                   " (required: user, timestamp, and an item, or for a "
                                   "search a query)"));
        }
        StatusOr<double> time = ParseTimestamp(*v[kTime]);
        if (!time.ok()) return fail(std::string(time.status().message()));
        if (!(std::fabs(*time) < 9.2e15)) return fail("timestamp out of range");
        LogEvent e;
        e.time_ms = static_cast<int64_t>(std::llround(*time * 1000.0));
        if (v[kWatchSeconds]) {
          StatusOr<double> w = ParseNumber(*v[kWatchSeconds], 0);
          if (!w.ok()) return fail(absl::StrCat("watch_seconds: ", w.status().message()));
          e.watch_seconds = static_cast<float>(*w);
        }
        if (v[kPosition]) {
          StatusOr<double> p = ParseNumber(*v[kPosition], 0);
          if (!p.ok() || *p != std::floor(*p) || *p >= LogEvent::kNoPosition) {
            return fail(absl::StrCat("position '", *v[kPosition],
                                     "' is not an integer in [0, 65534]"));
          }
          e.position = static_cast<uint16_t>(*p);
        }
        if (v[kDevice]) e.device = ContextKey(*v[kDevice]);
        if (v[kRegion]) e.region = ContextKey(*v[kRegion]);
        VREC_ASSIGN_OR_RETURN(e.user, user_of(*v[kUser]));
        tokens.clear();
        switch (kind) {
          case EventKind::kSearch:
            for (const std::string& t : QueryTokens(*v[kQuery], kMaxTokensPerSearch)) {
              tokens.push_back(IdKey(t));
            }
            e.kind = LogEvent::kSearch;
            e.tokens = static_cast<uint8_t>(tokens.size());
            ++summary->searches;
            break;
          case EventKind::kImpression:
            e.kind = LogEvent::kImpression;
            ++summary->impressions;
            ++summary->other_events;
            break;
          case EventKind::kClick:
            e.kind = LogEvent::kClick;
            ++summary->clicks;
            if (options.clicks_are_watches && e.watch_seconds > 0) {
              ++watches;
            } else {
              ++summary->other_events;
            }
            break;
          case EventKind::kWatch:
            e.kind = LogEvent::kWatch;
            ++watches;
            break;
        }
        if (!search) {
          VREC_ASSIGN_OR_RETURN(e.item, item_of(*v[kItem]));
        }
        if (log->user_ids.size() >= UINT32_MAX || log->item_ids.size() >= UINT32_MAX) {
          return absl::ResourceExhaustedError(
              absl::StrCat(path, ": more than 2^32 - 1 distinct users or items"));
        }
        return sorter->Add(e, tokens);
      }));
  summary->users = log->user_ids.size();
  summary->items = log->item_ids.size();
  if (watches == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no watches to convert (", summary->rows,
                     " rows: ", summary->skipped_rows, " bad and skipped, ", summary->impressions,
                     " impressions, ", summary->clicks, " clicks",
                     options.clicks_are_watches ? " (none with watch_seconds)" : "", ", ",
                     summary->searches, " searches)"));
  }
  return absl::OkStatus();
}

// Scales years as CandidateExample.age: 13 -> 0, 80 -> 1.
float ScaledAge(double years) {
  return static_cast<float>(std::clamp((years - 13.0) / (80.0 - 13.0), 0.0, 1.0));
}

Status ReadUsers(const ConvertOptions& options, InteractionLog* log, ConvertSummary* summary,
                 ReadPass* pass) {
  enum { kUser, kAge, kGender, kRegion, kLoggedIn };
  absl::flat_hash_map<uint64_t, uint32_t> index;
  for (size_t u = 0; u < log->user_ids.size(); ++u) index[log->user_ids[u]] = u;
  log->user_age.assign(log->user_ids.size(), 0.0f);
  log->user_gender.assign(log->user_ids.size(), 0.5f);
  log->user_region.assign(log->user_ids.size(), 0);
  log->user_logged_in.assign(log->user_ids.size(), 0.0f);
  return ForEachRow(options.users_path, {"user", "age", "gender", "region", "logged_in"}, pass,
                    [&](const Values& v, const auto& fail) -> Status {
                      if (!v[kUser]) return fail("missing user");
                      auto it = index.find(IdKey(*v[kUser]));
                      if (it == index.end()) {
                        ++summary->users_without_events;
                        return absl::OkStatus();
                      }
                      if (v[kAge]) {
                        StatusOr<double> age = ParseNumber(*v[kAge], 0);
                        if (!age.ok()) return fail(absl::StrCat("age: ", age.status().message()));
                        log->user_age[it->second] = ScaledAge(*age);
                      }
                      if (v[kGender]) {
                        StatusOr<double> g = ParseGender(*v[kGender]);
                        if (!g.ok()) return fail(std::string(g.status().message()));
                        log->user_gender[it->second] = static_cast<float>(*g);
                      }
                      if (v[kRegion]) log->user_region[it->second] = ContextKey(*v[kRegion]);
                      if (v[kLoggedIn]) {
                        StatusOr<double> l = ParseNumber(*v[kLoggedIn], 0);
                        if (!l.ok() || *l > 1) {
                          return fail(absl::StrCat("logged_in '", *v[kLoggedIn],
                                                   "' is not 0 or 1"));
                        }
                        log->user_logged_in[it->second] = *l >= 0.5 ? 1.0f : 0.0f;
                      }
                      return absl::OkStatus();
                    });
}

Status ReadItems(const ConvertOptions& options, InteractionLog* log, ConvertSummary* summary,
                 ReadPass* pass) {
  enum { kItem, kUpload, kTopic, kChannel, kDuration };
  absl::flat_hash_map<uint64_t, uint32_t> index;
  for (size_t i = 0; i < log->item_ids.size(); ++i) index[log->item_ids[i]] = i;
  absl::flat_hash_map<std::string, uint32_t> topics;
  log->item_upload_time.assign(log->item_ids.size(), std::numeric_limits<double>::quiet_NaN());
  log->item_duration.assign(log->item_ids.size(), 0.0f);
  VREC_RETURN_IF_ERROR(ForEachRow(
      options.items_path, {"item", "upload_time", "topic", "channel", "duration"}, pass,
      [&](const Values& v, const auto& fail) -> Status {
        if (!v[kItem]) return fail("missing item");
        auto it = index.find(IdKey(*v[kItem]));
        if (it == index.end()) {
          ++summary->items_without_events;
          return absl::OkStatus();
        }
        if (v[kUpload]) {
          StatusOr<double> t = ParseTimestamp(*v[kUpload]);
          if (!t.ok()) return fail(absl::StrCat("upload_time: ", t.status().message()));
          log->item_upload_time[it->second] = *t / kSecondsPerDay;
        }
        if (v[kDuration]) {
          StatusOr<double> d = ParseNumber(*v[kDuration], 0);
          if (!d.ok()) return fail(absl::StrCat("duration: ", d.status().message()));
          log->item_duration[it->second] = static_cast<float>(*d);
        }
        const std::optional<std::string>& topic = v[kTopic] ? v[kTopic] : v[kChannel];
        if (topic) {
          const auto [t, added] =
              topics.try_emplace(*topic, static_cast<uint32_t>(log->topic_names.size() + 1));
          if (added) log->topic_names.push_back(*topic);
          log->item_topic[it->second] = t->second;
        }
        return absl::OkStatus();
      }));
  summary->topics = log->topic_names.size();
  return absl::OkStatus();
}

}  // namespace

ReadPass::ReadPass(const ConvertOptions& options, ConvertSummary* summary)
    : options_(options),
      summary_(summary),
      start_(std::chrono::steady_clock::now()),
      last_progress_(start_) {}

Status ReadPass::BadRow(const Status& status) {
  if (!options_.skip_bad_rows) return status;
  ++summary_->skipped_rows;
  if (summary_->first_errors.size() < ConvertSummary::kMaxReportedErrors) {
    summary_->first_errors.emplace_back(status.message());
  }
  return absl::OkStatus();
}

void ReadPass::Row(uint64_t file_position, uint64_t file_size) {
  ++summary_->rows;
  if (!options_.on_progress || options_.progress_interval_s <= 0 ||
      summary_->rows % kProgressCheckRows != 0) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_progress_).count() < options_.progress_interval_s) {
    return;
  }
  last_progress_ = now;
  options_.on_progress({summary_->rows, file_position, file_size,
                        std::chrono::duration<double>(now - start_).count()});
}

Status ReadEventsLog(const ConvertOptions& options, InteractionLog* log, ConvertSummary* summary,
                     EventSorter* sorter) {
  ReadPass pass(options, summary);
  VREC_RETURN_IF_ERROR(ReadEvents(options, log, summary, &pass, sorter));
  if (!options.users_path.empty()) VREC_RETURN_IF_ERROR(ReadUsers(options, log, summary, &pass));
  if (!options.items_path.empty()) VREC_RETURN_IF_ERROR(ReadItems(options, log, summary, &pass));
  return absl::OkStatus();
}

}  // namespace vrec
