// The round trip of `vrec datagen --logs` (tests/integration/logs_roundtrip_test.sh):
// compares a generated dataset with the dataset `vrec convert` made from its
// logs, example by example, field by field.
//
//   compare_logs_dataset NATIVE_DIR CONVERTED_DIR LOGS_DIR [--max_diffs=N]
//
// The converted examples differ from the native ones only by their ids
// (docs/data_format.md, "Generated logs"): users, items and search tokens
// become IdKey("u<id>"), IdKey("v<id>"), IdKey("w<id>"); regions and
// devices ContextKey("r<n>"), ContextKey("d<n>"); topics the converter's
// dense ids, compared by name (CONVERTED_DIR/topics.tsv, or else the order
// of first appearance in LOGS_DIR/items.csv). example_id and page_id are
// ignored, but impressions that share a native page must share a converted
// page and the other way round; the generator's truth (true_click_prob,
// true_expected_watch_time) is ignored; `time` must agree within 1e-7 days
// and floats within 1e-6 (relative to max(1, |value|)).
//
// Each split (candidate train and test, ranking train and test) is matched
// as a multiset: both sides sorted by (user, label or impression video,
// time), an example matching the other side's of the same user and video
// whose time is within 1e-5 days (0.86 s). Prints the first --max_diffs (20) differences (which
// example, which field, both values) on stderr, then one JSON line of
// counts on stdout. Exit 0 when everything matches, 1 when something
// differs, 2 when an input cannot be read.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/generated_logs.h"
#include "data/id_key.h"
#include "data/interaction_log.h"
#include "data/record_reader.h"
#include "data/table_reader.h"
#include "nlohmann/json.hpp"
#include "proto/data.pb.h"

namespace vrec {
namespace {

// The converter's key of a region or device string: ContextKey
// (data/interaction_log.h), the one place that says it.
uint32_t CategoryKey(std::string_view name) { return ContextKey(name); }

constexpr double kTimeTolerance = 1e-7;   // days
constexpr double kFloatTolerance = 1e-6;  // relative to max(1, |value|)

// Native ids to converted ones, and converted keys back to names for
// messages.
class Mapping {
 public:
  uint64_t User(uint64_t id) { return Key(LogUserName(id)); }
  uint64_t Item(uint64_t id) { return Key(LogItemName(id)); }
  uint64_t Token(uint64_t id) { return Key(LogTokenName(id)); }
  uint32_t Region(uint32_t r) { return r == 0 ? 0 : Category(LogRegionName(r)); }
  uint32_t Device(uint32_t d) { return d == 0 ? 0 : Category(LogDeviceName(d)); }
  // Native topic (1-based, 0 unknown) to the converter's id; nullopt when
  // the converted dataset has no id for its name.
  std::optional<uint64_t> Topic(uint64_t topic) const {
    if (topic == 0) return 0;
    const auto it = topic_ids_.find(LogTopicName(static_cast<uint32_t>(topic)));
    if (it == topic_ids_.end()) return std::nullopt;
    return it->second;
  }
  std::string Name(uint64_t key) const {
    const auto it = names_.find(key);
    if (it != names_.end()) return it->second;
    for (const IdTable& table : tables_) {
      if (const std::string* id = table.Find(key)) return *id;
    }
    return absl::StrCat("?", key);
  }
  // The converted dataset's own id tables, for naming keys the native side
  // never had.
  void AddIdTable(IdTable table) { tables_.push_back(std::move(table)); }
  std::string CategoryName(uint32_t key) const {
    if (key == 0) return "0 (unknown)";
    const auto it = category_names_.find(key);
    return it == category_names_.end() ? absl::StrCat("?", key) : it->second;
  }
  std::string TopicName(uint64_t id) const {
    if (id == 0) return "0 (none)";
    const auto it = topic_names_.find(id);
    return absl::StrCat(id, " (", it == topic_names_.end() ? "?" : it->second, ")");
  }
  void AddTopic(const std::string& name, uint64_t id) {
    topic_ids_.emplace(name, id);
    topic_names_.emplace(id, name);
  }
  bool HasTopic(const std::string& name) const { return topic_ids_.count(name) > 0; }
  size_t topics() const { return topic_ids_.size(); }

 private:
  uint64_t Key(const std::string& name) {
    const uint64_t key = IdKey(name);
    names_.emplace(key, name);
    return key;
  }
  uint32_t Category(const std::string& name) {
    const uint32_t key = CategoryKey(name);
    category_names_.emplace(key, name);
    return key;
  }
  absl::flat_hash_map<uint64_t, std::string> names_;
  std::vector<IdTable> tables_;
  absl::flat_hash_map<uint32_t, std::string> category_names_;
  std::map<std::string, uint64_t> topic_ids_;
  std::map<uint64_t, std::string> topic_names_;
};

// The converted dataset's topic ids by name: its topics.tsv ("topic\tname"
// lines after a header), or else first appearance in the items table.
Status LoadTopics(const std::string& converted, const std::string& logs, Mapping* m) {
  const std::string tsv = JoinPath(converted, "topics.tsv");
  if (PathExists(tsv)) {
    VREC_ASSIGN_OR_RETURN(std::string text, ReadFileToString(tsv));
    int line_number = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      ++line_number;
      const std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
      uint64_t id = 0;
      if (f.size() != 2 || !absl::SimpleAtoi(f[0], &id)) {
        if (line_number == 1) continue;  // the header
        return absl::InvalidArgumentError(
            absl::StrCat(tsv, ":", line_number, ": not 'id<TAB>name': ", std::string(line)));
      }
      m->AddTopic(std::string(f[1]), id);
    }
    return absl::OkStatus();
  }
  const std::string items = JoinPath(logs, "items.csv");
  VREC_ASSIGN_OR_RETURN(auto reader, TableReader::Open(items, {"topic"}));
  std::vector<std::optional<std::string>> row;
  uint64_t next = 1;
  while (true) {
    VREC_ASSIGN_OR_RETURN(const bool more, reader->Next(&row));
    if (!more) break;
    if (row[0] && !m->HasTopic(*row[0])) m->AddTopic(*row[0], next++);  // first appearance
  }
  return absl::OkStatus();
}

template <typename Message>
StatusOr<std::vector<Message>> ReadSplit(
    const std::string& dir, const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
  std::vector<Message> out;
  VREC_ASSIGN_OR_RETURN(auto reader, ShardedReader::Open(ShardPaths(dir, shards)));
  Message m;
  while (true) {
    VREC_ASSIGN_OR_RETURN(const bool more, reader->NextMessage(&m));
    if (!more) break;
    out.push_back(m);
  }
  return out;
}

using Key = std::pair<uint64_t, uint64_t>;  // user, label or impression video
// Examples of the same user and video match when their times are this
// close (days: 0.86 s); the field `time` must then agree within kTimeTolerance.
constexpr double kMatchWindow = 1e-5;

// A split's comparison: its counts and the differences found.
struct SplitReport {
  int64_t native = 0, converted = 0, matched = 0, only_native = 0, only_converted = 0;
  int64_t differing = 0;  // matched examples with at least one field apart
  std::map<std::string, int64_t> fields;
  nlohmann::json ToJson() const {
    return {{"native", native},
            {"converted", converted},
            {"matched", matched},
            {"only_native", only_native},
            {"only_converted", only_converted},
            {"differing_examples", differing},
            {"field_differences", fields}};
  }
  bool ok() const { return only_native == 0 && only_converted == 0 && differing == 0; }
};

class Comparer {
 public:
  Comparer(Mapping* mapping, int max_diffs) : m_(*mapping), max_diffs_(max_diffs) {}

  void Print(const std::string& line) {
    if (printed_++ < max_diffs_) std::cerr << line << "\n";
  }
  int64_t printed() const { return printed_; }

  std::string Ids(const google::protobuf::RepeatedField<uint64_t>& keys) const {
    std::string out = "[";
    for (int i = 0; i < keys.size(); ++i) absl::StrAppend(&out, i ? " " : "", m_.Name(keys[i]));
    return out + "]";
  }
  static std::string Seconds(double days) { return FormatLogSeconds(days) + " s"; }

  // Compares the float fields `field` of both, recording a difference.
  template <typename T>
  bool Near(const std::string& where, const char* field, T native, T converted, double tol,
            bool relative, SplitReport* report) {
    const double a = native, b = converted;
    const double bound = relative ? tol * std::max({1.0, std::fabs(a), std::fabs(b)}) : tol;
    if (std::fabs(a - b) <= bound) return true;
    std::ostringstream s;
    s.precision(17);
    s << where << ": field " << field << ": native " << a << ", converted " << b;
    return Differ(s.str(), field, report);
  }
  bool Same(const std::string& where, const char* field, const std::string& native,
            const std::string& converted, SplitReport* report) {
    if (native == converted) return true;
    return Differ(
        absl::StrCat(where, ": field ", field, ": native ", native, ", converted ", converted),
        field, report);
  }
  // Id lists: the lengths and the first place they part.
  bool SameIds(const std::string& where, const char* field,
               const google::protobuf::RepeatedField<uint64_t>& native,
               const google::protobuf::RepeatedField<uint64_t>& converted, SplitReport* report) {
    int i = 0;
    while (i < native.size() && i < converted.size() && native[i] == converted[i]) ++i;
    if (i == native.size() && i == converted.size()) return true;
    auto at = [&](const google::protobuf::RepeatedField<uint64_t>& v) {
      return i < v.size() ? m_.Name(v[i]) : std::string("(end)");
    };
    return Differ(absl::StrCat(where, ": field ", field, ": native has ", native.size(),
                               ", converted ", converted.size(), "; first difference at [", i,
                               "]: native ", at(native), ", converted ", at(converted), "; native ",
                               Ids(native), ", converted ", Ids(converted)),
                  field, report);
  }
  bool Differ(const std::string& line, const char* field, SplitReport* report) {
    ++report->fields[field];
    Print(line);
    return false;
  }

  // Native mapped into the converted ids (what the converter should give).
  CandidateExample Map(const CandidateExample& n) {
    CandidateExample c = n;
    c.set_user_id(m_.User(n.user_id()));
    c.set_label_video(m_.Item(n.label_video()));
    for (int i = 0; i < n.watch_history_size(); ++i)
      c.set_watch_history(i, m_.Item(n.watch_history(i)));
    for (int i = 0; i < n.search_tokens_size(); ++i)
      c.set_search_tokens(i, m_.Token(n.search_tokens(i)));
    c.set_region(m_.Region(n.region()));
    c.set_device(m_.Device(n.device()));
    return c;
  }
  RankingExample Map(const RankingExample& n, bool* topic_known) {
    RankingExample c = n;
    c.set_user_id(m_.User(n.user_id()));
    c.set_impression_video(m_.Item(n.impression_video()));
    for (int i = 0; i < n.watch_history_size(); ++i)
      c.set_watch_history(i, m_.Item(n.watch_history(i)));
    for (int i = 0; i < n.search_tokens_size(); ++i)
      c.set_search_tokens(i, m_.Token(n.search_tokens(i)));
    c.set_region(m_.Region(n.region()));
    c.set_device(m_.Device(n.device()));
    const std::optional<uint64_t> topic = m_.Topic(n.video_topic());
    *topic_known = topic.has_value();
    c.set_video_topic(topic.value_or(0));
    return c;
  }

  static Key KeyOf(const CandidateExample& e) { return {e.user_id(), e.label_video()}; }
  static Key KeyOf(const RankingExample& e) { return {e.user_id(), e.impression_video()}; }
  std::string Describe(const std::string& split, const CandidateExample& e) const {
    return absl::StrCat(split, " example of ", m_.Name(e.user_id()), " at ", Seconds(e.time()),
                        ", label ", m_.Name(e.label_video()));
  }
  std::string Describe(const std::string& split, const RankingExample& e) const {
    return absl::StrCat(split, " impression of ", m_.Name(e.impression_video()), " to ",
                        m_.Name(e.user_id()), " at ", Seconds(e.time()));
  }

  // Field by field; true when all agree.
  bool Fields(const std::string& where, const CandidateExample& a, const CandidateExample& b,
              SplitReport* r) {
    bool ok = true;
    ok &= SameIds(where, "watch_history", a.watch_history(), b.watch_history(), r);
    ok &= SameIds(where, "search_tokens", a.search_tokens(), b.search_tokens(), r);
    ok &= Same(where, "region", m_.CategoryName(a.region()), m_.CategoryName(b.region()), r);
    ok &= Same(where, "device", m_.CategoryName(a.device()), m_.CategoryName(b.device()), r);
    ok &= Near(where, "age", a.age(), b.age(), kFloatTolerance, true, r);
    ok &= Near(where, "gender", a.gender(), b.gender(), kFloatTolerance, true, r);
    ok &= Near(where, "logged_in", a.logged_in(), b.logged_in(), kFloatTolerance, true, r);
    ok &= Near(where, "example_age", a.example_age(), b.example_age(), kFloatTolerance, true, r);
    ok &= Near(where, "time", a.time(), b.time(), kTimeTolerance, false, r);
    return ok;
  }
  bool Fields(const std::string& where, const RankingExample& a, const RankingExample& b,
              SplitReport* r) {
    bool ok = true;
    ok &=
        Same(where, "video_topic", m_.TopicName(a.video_topic()), m_.TopicName(b.video_topic()), r);
    ok &= Same(where, "region", m_.CategoryName(a.region()), m_.CategoryName(b.region()), r);
    ok &= Same(where, "device", m_.CategoryName(a.device()), m_.CategoryName(b.device()), r);
    ok &= SameIds(where, "watch_history", a.watch_history(), b.watch_history(), r);
    ok &= SameIds(where, "search_tokens", a.search_tokens(), b.search_tokens(), r);
    ok &= Near(where, "time", a.time(), b.time(), kTimeTolerance, false, r);
    ok &= Near(where, "time_since_last_watch", a.time_since_last_watch(), b.time_since_last_watch(),
               kFloatTolerance, true, r);
    ok &= Near(where, "previous_impressions", a.previous_impressions(), b.previous_impressions(),
               kFloatTolerance, true, r);
    ok &= Near(where, "video_age", a.video_age(), b.video_age(), kFloatTolerance, true, r);
    ok &= Near(where, "topic_watch_share", a.topic_watch_share(), b.topic_watch_share(),
               kFloatTolerance, true, r);
    ok &= Near(where, "age", a.age(), b.age(), kFloatTolerance, true, r);
    ok &= Near(where, "gender", a.gender(), b.gender(), kFloatTolerance, true, r);
    ok &= Same(where, "clicked", a.clicked() ? "true" : "false", b.clicked() ? "true" : "false", r);
    ok &= Near(where, "watch_time", a.watch_time(), b.watch_time(), kFloatTolerance, true, r);
    return ok;
  }

  // Pages: a native page is one converted page and the other way round.
  bool Page(const std::string& where, uint64_t native, uint64_t converted, SplitReport* r) {
    const auto [a, added_a] = page_to_converted_.emplace(native, converted);
    const auto [b, added_b] = page_to_native_.emplace(converted, native);
    if (a->second != converted) {
      Differ(absl::StrCat(where,
                          ": field page_id: its native page's other impressions are on "
                          "converted page ",
                          a->second, ", this one on ", converted),
             "page_id", r);
      ++page_mismatches_;
      return false;
    }
    if (b->second != native) {
      Differ(absl::StrCat(where, ": field page_id: converted page ", converted,
                          " also holds impressions of another native page"),
             "page_id", r);
      ++page_mismatches_;
      return false;
    }
    return true;
  }
  nlohmann::json PagesJson() const {
    return {{"native", page_to_converted_.size()},
            {"converted", page_to_native_.size()},
            {"mismatched_impressions", page_mismatches_}};
  }

  // Matches the split's examples (native already mapped) and compares them.
  template <typename Message>
  SplitReport Split(const std::string& name, std::vector<Message> native,
                    std::vector<Message> converted, const std::vector<uint64_t>* native_pages) {
    SplitReport r;
    r.native = static_cast<int64_t>(native.size());
    r.converted = static_cast<int64_t>(converted.size());
    std::vector<size_t> a(native.size()), b(converted.size());
    for (size_t i = 0; i < a.size(); ++i) a[i] = i;
    for (size_t i = 0; i < b.size(); ++i) b[i] = i;
    auto order = [](const std::vector<Message>& v) {
      return [&v](size_t x, size_t y) {
        return std::make_pair(KeyOf(v[x]), v[x].time()) < std::make_pair(KeyOf(v[y]), v[y].time());
      };
    };
    std::stable_sort(a.begin(), a.end(), order(native));
    std::stable_sort(b.begin(), b.end(), order(converted));
    // Merged by (user, video, time); the same user and video within
    // kMatchWindow is a match.
    size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
      const bool has_a = i < a.size(), has_b = j < b.size();
      if (has_a && has_b && KeyOf(native[a[i]]) == KeyOf(converted[b[j]]) &&
          std::fabs(native[a[i]].time() - converted[b[j]].time()) <= kMatchWindow) {
        const Message& x = native[a[i]];
        const Message& y = converted[b[j]];
        const std::string where = Describe(name, x);
        ++r.matched;
        bool same = Fields(where, x, y, &r);
        if constexpr (std::is_same_v<Message, RankingExample>) {
          same &= Page(where, (*native_pages)[a[i]], y.page_id(), &r);
        }
        if (!same) ++r.differing;
        ++i;
        ++j;
      } else if (has_a &&
                 (!has_b || std::make_pair(KeyOf(native[a[i]]), native[a[i]].time()) <
                                std::make_pair(KeyOf(converted[b[j]]), converted[b[j]].time()))) {
        ++r.only_native;
        Print(absl::StrCat(Describe(name, native[a[i]]), ": only in the native dataset"));
        ++i;
      } else {
        ++r.only_converted;
        Print(absl::StrCat(Describe(name, converted[b[j]]), ": only in the converted dataset"));
        ++j;
      }
    }
    return r;
  }

 private:
  Mapping& m_;
  const int max_diffs_;
  int64_t printed_ = 0;
  std::map<uint64_t, uint64_t> page_to_converted_, page_to_native_;
  int64_t page_mismatches_ = 0;
};

int Fail(const std::string& what, const Status& status) {
  std::cerr << "compare_logs_dataset: " << what << ": " << status << "\n";
  return 2;
}

int Run(int argc, char** argv) {
  std::vector<std::string> dirs;
  int max_diffs = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--max_diffs=", 0) == 0) {
      if (!absl::SimpleAtoi(arg.substr(12), &max_diffs) || max_diffs < 0) {
        std::cerr << "compare_logs_dataset: --max_diffs wants a number >= 0, got " << arg << "\n";
        return 2;
      }
    } else {
      dirs.push_back(arg);
    }
  }
  if (dirs.size() != 3) {
    std::cerr << "usage: compare_logs_dataset NATIVE_DIR CONVERTED_DIR LOGS_DIR [--max_diffs=N]\n";
    return 2;
  }
  const std::string &native_dir = dirs[0], &converted_dir = dirs[1], &logs_dir = dirs[2];
  auto native = ReadManifest(native_dir);
  if (!native.ok()) return Fail(native_dir, native.status());
  if (native->train_streamed()) {
    return Fail(native_dir, absl::InvalidArgumentError(
                                "the dataset has no training files (datagen --write_train=false)"));
  }
  auto converted = ReadManifest(converted_dir);
  if (!converted.ok()) return Fail(converted_dir, converted.status());
  Mapping mapping;
  if (Status s = LoadTopics(converted_dir, logs_dir, &mapping); !s.ok()) {
    return Fail("topics", s);
  }
  for (const char* kind : {"users", "items"}) {
    const std::string path = JoinPath(converted_dir, absl::StrCat("ids/", kind, ".tsv"));
    if (!PathExists(path)) continue;
    auto table = IdTable::Read(path, kind);
    if (!table.ok()) return Fail(path, table.status());
    mapping.AddIdTable(std::move(table).value());
  }
  Comparer comparer(&mapping, max_diffs);
  nlohmann::json splits = nlohmann::json::object();
  bool match = true;

  auto candidate = [&](const char* name, const google::protobuf::RepeatedPtrField<ShardInfo>& n,
                       const google::protobuf::RepeatedPtrField<ShardInfo>& c) -> Status {
    VREC_ASSIGN_OR_RETURN(std::vector<CandidateExample> a,
                          ReadSplit<CandidateExample>(native_dir, n));
    VREC_ASSIGN_OR_RETURN(std::vector<CandidateExample> b,
                          ReadSplit<CandidateExample>(converted_dir, c));
    for (CandidateExample& e : a) e = comparer.Map(e);
    const SplitReport r = comparer.Split(name, std::move(a), std::move(b), nullptr);
    splits[name] = r.ToJson();
    match &= r.ok();
    return absl::OkStatus();
  };
  int64_t unknown_topics = 0;
  auto ranking = [&](const char* name, const google::protobuf::RepeatedPtrField<ShardInfo>& n,
                     const google::protobuf::RepeatedPtrField<ShardInfo>& c) -> Status {
    VREC_ASSIGN_OR_RETURN(std::vector<RankingExample> a, ReadSplit<RankingExample>(native_dir, n));
    VREC_ASSIGN_OR_RETURN(std::vector<RankingExample> b,
                          ReadSplit<RankingExample>(converted_dir, c));
    std::vector<uint64_t> pages(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      pages[i] = a[i].page_id();
      bool known = true;
      a[i] = comparer.Map(a[i], &known);
      unknown_topics += !known;
    }
    const SplitReport r = comparer.Split(name, std::move(a), std::move(b), &pages);
    splits[name] = r.ToJson();
    match &= r.ok();
    return absl::OkStatus();
  };
  Status s = candidate("candidate_train", native->candidate_train(), converted->candidate_train());
  if (s.ok()) {
    s = candidate("candidate_test", native->candidate_test(), converted->candidate_test());
  }
  if (s.ok()) s = ranking("ranking_train", native->ranking_train(), converted->ranking_train());
  if (s.ok()) s = ranking("ranking_test", native->ranking_test(), converted->ranking_test());
  if (!s.ok()) return Fail("reading the examples", s);

  nlohmann::json summary = {
      {"match", match},
      {"splits", splits},
      {"pages", comparer.PagesJson()},
      {"topics", mapping.topics()},
      {"native_topics_without_a_converted_id", unknown_topics},
      {"t_max", {{"native", native->t_max()}, {"converted", converted->t_max()}}},
      {"differences_printed", std::min<int64_t>(comparer.printed(), max_diffs)},
      {"differences", comparer.printed()}};
  if (comparer.printed() > max_diffs) {
    std::cerr << "... " << comparer.printed() - max_diffs << " more differences\n";
  }
  std::cout << summary.dump() << std::endl;
  return match ? 0 : 1;
}

}  // namespace
}  // namespace vrec

int main(int argc, char** argv) { return vrec::Run(argc, argv); }
