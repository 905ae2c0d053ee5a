#include "data/generated_logs.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "data/dataset.h"
#include "data/generator.h"
#include "data/record_reader.h"
#include "data/table_reader.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

using Row = std::vector<std::optional<std::string>>;

WorldOptions LogWorld(uint64_t seed) {
  WorldOptions o;
  o.seed = seed;
  o.num_videos = 600;
  o.num_users = 240;
  o.num_tokens = 300;
  o.num_topics = 6;
  o.num_days = 6;
  return o;
}

GeneratorOptions LogGenerator(const std::string& out, const std::string& logs) {
  GeneratorOptions g;
  g.out_dir = out;
  g.logs_dir = logs;
  g.shards = 3;
  g.threads = 2;
  g.test_users = 40;
  g.max_examples_per_user = 0;
  g.page_rate = 0.25;
  g.max_history = 8;  // short, so that the histories' windows are tested
  g.sync = false;
  g.progress_interval_s = 0;
  return g;
}

// Every row of a table, the columns as named.
std::vector<Row> ReadTable(const std::string& path, const std::vector<std::string>& columns) {
  std::vector<Row> rows;
  auto reader = TableReader::Open(path, columns);
  EXPECT_OK(reader);
  if (!reader.ok()) return rows;
  Row row;
  while (true) {
    StatusOr<bool> more = (*reader)->Next(&row);
    EXPECT_OK(more);
    if (!more.ok() || !*more) break;
    rows.push_back(row);
  }
  EXPECT_TRUE((*reader)->unknown_columns().empty()) << path;
  return rows;
}

template <typename Message>
std::vector<Message> ReadExamples(const std::string& dir,
                                  const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
  std::vector<Message> out;
  auto reader = ShardedReader::Open(ShardPaths(dir, shards));
  EXPECT_OK(reader);
  if (!reader.ok()) return out;
  Message m;
  while (true) {
    StatusOr<bool> more = (*reader)->NextMessage(&m);
    EXPECT_OK(more);
    if (!more.ok() || !*more) break;
    out.push_back(m);
  }
  return out;
}

std::string Names(const google::protobuf::RepeatedField<uint64_t>& ids,
                  std::string (*name)(uint64_t)) {
  std::string out;
  for (uint64_t id : ids) absl::StrAppend(&out, out.empty() ? "" : " ", name(id));
  return out;
}

std::string Last(const std::vector<std::string>& v, size_t n) {
  std::string out;
  for (size_t i = v.size() > n ? v.size() - n : 0; i < v.size(); ++i) {
    absl::StrAppend(&out, out.empty() ? "" : " ", v[i]);
  }
  return out;
}

// What a reader of the logs knows at one moment of a user.
struct Context {
  std::string watches, tokens;  // the last max_history, oldest first, names
  int position = -1;
  int previous_impressions = 0;
};

struct Generated {
  testing::ScratchDir scratch;
  std::unique_ptr<World> world;
  GeneratorOptions options;
  GenerationSummary summary;
  std::vector<CandidateExample> candidate_train, candidate_test;
  std::vector<RankingExample> ranking_train, ranking_test;
};

const Generated& Shared() {
  static Generated* g = [] {
    auto* out = new Generated;
    auto world = World::Build(LogWorld(testing::TestSeed(61)), 2);
    EXPECT_OK(world);
    out->world = std::move(world).value();
    out->options = LogGenerator(out->scratch.File("ds"), out->scratch.File("logs"));
    auto summary = GenerateDataset(*out->world, out->options);
    EXPECT_OK(summary);
    if (summary.ok()) out->summary = *summary;
    auto m = ReadManifest(out->options.out_dir);
    EXPECT_OK(m);
    if (!m.ok()) return out;
    const std::string& dir = out->options.out_dir;
    out->candidate_train = ReadExamples<CandidateExample>(dir, m->candidate_train());
    out->candidate_test = ReadExamples<CandidateExample>(dir, m->candidate_test());
    out->ranking_train = ReadExamples<RankingExample>(dir, m->ranking_train());
    out->ranking_test = ReadExamples<RankingExample>(dir, m->ranking_test());
    return out;
  }();
  return *g;
}

enum { kUser, kItem, kTime, kEvent, kWatchSeconds, kQuery, kPosition, kDevice, kRegion };
const std::vector<std::string> kEventColumns = {
    "user", "item", "timestamp", "event", "watch_seconds", "query", "position", "device", "region"};

TEST(GeneratedLogsTest, FormatsTimesNumbersAndFields) {
  EXPECT_EQ(FormatLogSeconds(2.0), "172800.000");
  EXPECT_EQ(FormatLogSeconds(2.0 + 0.125 / 86400), "172800.125");
  EXPECT_EQ(FormatLogSeconds(0), "0.000");
  EXPECT_EQ(FormatLogSeconds(-1.5), "-129600.000");
  EXPECT_EQ(FormatLogSeconds(-0.0004 / 86400), "0.000");  // rounds to zero: no "-0.000"
  EXPECT_EQ(FormatLogSeconds(-0.0006 / 86400), "-0.001");
  for (float f : {123.456f, 1e-7f, 0.1f, 299.99997f, 3.4e38f}) {
    const std::string text = FormatLogNumber(f);
    EXPECT_EQ(static_cast<float>(std::strtod(text.c_str(), nullptr)), f) << text;
  }
  EXPECT_EQ(FormatLogNumber(0.5), "0.5");
  EXPECT_EQ(FormatLogNumber(1), "1");
  std::string row;
  AppendCsvField("plain", &row);
  row += ',';
  AppendCsvField("a,b", &row);
  row += ',';
  AppendCsvField("say \"hi\"", &row);
  row += ',';
  AppendCsvField(" padded", &row);
  EXPECT_EQ(row, "plain,\"a,b\",\"say \"\"hi\"\"\",\" padded\"");
  EXPECT_EQ(LogUserName(7), "u7");
  EXPECT_EQ(LogItemName(8), "v8");
  EXPECT_EQ(LogTokenName(9), "w9");
  EXPECT_EQ(LogRegionName(3), "r3");
  EXPECT_EQ(LogDeviceName(2), "d2");
  EXPECT_EQ(LogTopicName(1), "topic1");
}

TEST(GeneratedLogsTest, ConvertCommandNamesTheSplitAndQuotesPaths) {
  const Generated& g = Shared();
  GeneratorOptions o = g.options;
  o.logs_dir = "my logs";
  const std::string command = GeneratedLogsConvertCommand(o, *g.world, "out");
  EXPECT_EQ(
      command,
      "vrec convert --events='my logs/events.csv' --items='my logs/items.csv' "
      "--users='my logs/users.csv' --test_split=users --held_out_users='my logs/test_users.txt' "
      "--clicks_are_watches=false --window_end=518400 --max_examples_per_user=0 "
      "--max_history=8 --out=out");
  ASSERT_OK_AND_ASSIGN(std::string readme,
                       ReadFileToString(JoinPath(g.options.logs_dir, "README")));
  EXPECT_NE(readme.find(GeneratedLogsConvertCommand(g.options, *g.world, "OUT")), std::string::npos)
      << readme;
  EXPECT_EQ(
      g.summary.ToJson()["logs"]["convert_command"],
      GeneratedLogsConvertCommand(g.options, *g.world, JoinPath(g.options.logs_dir, "converted")));
}

// The events table, read back, holds exactly the simulator's actions: every
// native example is one of its rows, with the history a reader of the
// table rebuilds.
TEST(GeneratedLogsTest, EventsDescribeTheNativeExamples) {
  const Generated& g = Shared();
  const GenerationCounts& c = g.summary.counts;
  ASSERT_GT(c.pages, 10);
  ASSERT_GT(c.candidate_test, 10);
  const std::vector<Row> rows =
      ReadTable(JoinPath(g.options.logs_dir, "events.csv"), kEventColumns);
  std::map<std::string, int64_t> kinds;
  for (const Row& r : rows) ++kinds[r[kEvent].value_or("(none)")];
  EXPECT_EQ(kinds.size(), 4u);
  EXPECT_EQ(kinds["watch"], c.watches);
  EXPECT_EQ(kinds["search"], c.searches);
  EXPECT_EQ(kinds["impression"], c.ranking_train + c.ranking_test);
  int64_t clicked = 0;
  for (const auto* list : {&g.ranking_train, &g.ranking_test}) {
    for (const RankingExample& r : *list) clicked += r.clicked();
  }
  ASSERT_GT(clicked, 0);
  EXPECT_EQ(kinds["click"], clicked);
  const nlohmann::json counts = g.summary.ToJson()["logs"]["counts"];
  EXPECT_EQ(counts["events"], static_cast<int64_t>(rows.size()));
  EXPECT_EQ(counts["clicks"], clicked);

  // Walk the table as a reader would: per user, in file order.
  const size_t h = static_cast<size_t>(g.options.max_history);
  struct UserState {
    std::vector<std::string> watches, tokens;
    std::map<std::string, int> shown;
    double last_time = -1e300;
    bool done = false;  // another user's rows came after this one's
  };
  std::map<std::string, UserState> users;
  std::string current;
  // (user, timestamp, item) -> what the reader knows there.
  std::map<std::tuple<std::string, std::string, std::string>, Context> watch_context,
      impression_context;
  std::map<std::tuple<std::string, std::string, std::string>, std::string> clicks;
  std::string page_time;  // of the impressions and clicks just read, "" when none
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    ASSERT_TRUE(r[kUser] && r[kTime] && r[kEvent] && r[kDevice] && r[kRegion]) << "row " << i;
    const std::string& user = *r[kUser];
    const std::string& event = *r[kEvent];
    const std::string& time = *r[kTime];
    if (user != current) {
      if (!current.empty()) users[current].done = true;
      ASSERT_FALSE(users[user].done) << user << "'s rows are not together (row " << i << ")";
      current = user;
      ASSERT_TRUE(page_time.empty()) << "a page without its watch before row " << i;
    }
    UserState& u = users[user];
    const double t = std::strtod(time.c_str(), nullptr);
    ASSERT_GE(t, u.last_time) << "row " << i << " goes back in time";
    u.last_time = t;
    ASSERT_EQ(time.size() - time.find('.'), 4u) << time;  // three decimals
    if (event == "search") {
      ASSERT_FALSE(r[kItem]) << "row " << i;
      ASSERT_TRUE(r[kQuery]) << "row " << i;
      ASSERT_TRUE(page_time.empty()) << "row " << i;
      for (absl::string_view token : absl::StrSplit(*r[kQuery], ' ')) {
        ASSERT_EQ(token.substr(0, 1), "w") << *r[kQuery];
        u.tokens.emplace_back(token);
      }
      continue;
    }
    ASSERT_TRUE(r[kItem]) << "row " << i;
    const auto key = std::make_tuple(user, time, *r[kItem]);
    if (event == "impression") {
      ASSERT_TRUE(page_time.empty() || page_time == time) << "row " << i;
      page_time = time;
      ASSERT_TRUE(r[kPosition]) << "row " << i;
      Context ctx{Last(u.watches, h), Last(u.tokens, h), std::atoi(r[kPosition]->c_str()),
                  u.shown[*r[kItem]]++};
      ASSERT_TRUE(impression_context.emplace(key, ctx).second) << "row " << i;
    } else if (event == "click") {
      ASSERT_EQ(page_time, time) << "a click outside a page, row " << i;
      ASSERT_TRUE(impression_context.count(key)) << "a click of no impression, row " << i;
      ASSERT_TRUE(r[kWatchSeconds]) << "row " << i;
      clicks[key] = *r[kWatchSeconds];
    } else {
      ASSERT_EQ(event, "watch");
      ASSERT_TRUE(page_time.empty() || page_time == time) << "a page not at its watch, row " << i;
      page_time.clear();
      if (!u.watches.empty()) {
        ASSERT_TRUE(
            watch_context.emplace(key, Context{Last(u.watches, h), Last(u.tokens, h)}).second)
            << "row " << i;
      }
      u.watches.push_back(*r[kItem]);
    }
  }
  ASSERT_TRUE(page_time.empty());

  // Every watch but each user's first is a candidate example (all are kept:
  // max_examples_per_user = 0), with the history the table gives.
  EXPECT_EQ(watch_context.size(), g.candidate_train.size() + g.candidate_test.size());
  for (const auto* list : {&g.candidate_train, &g.candidate_test}) {
    for (const CandidateExample& e : *list) {
      const auto key = std::make_tuple(LogUserName(e.user_id()), FormatLogSeconds(e.time()),
                                       LogItemName(e.label_video()));
      const auto it = watch_context.find(key);
      ASSERT_NE(it, watch_context.end()) << "no watch row for " << std::get<0>(key) << " at "
                                         << std::get<1>(key) << " of " << std::get<2>(key);
      EXPECT_EQ(it->second.watches, Names(e.watch_history(), LogItemName));
      EXPECT_EQ(it->second.tokens, Names(e.search_tokens(), LogTokenName));
    }
  }
  // Every impression is a ranking example, clicked when a click row says
  // so, with the float watch time back; pages share a time and fill slots
  // 0..n-1.
  EXPECT_EQ(impression_context.size(), g.ranking_train.size() + g.ranking_test.size());
  std::map<uint64_t, std::set<int>> slots;
  std::map<uint64_t, std::string> page_times;
  for (const auto* list : {&g.ranking_train, &g.ranking_test}) {
    for (const RankingExample& e : *list) {
      const auto key = std::make_tuple(LogUserName(e.user_id()), FormatLogSeconds(e.time()),
                                       LogItemName(e.impression_video()));
      const auto it = impression_context.find(key);
      ASSERT_NE(it, impression_context.end())
          << "no impression row for " << std::get<0>(key) << " at " << std::get<1>(key);
      EXPECT_EQ(it->second.watches, Names(e.watch_history(), LogItemName));
      EXPECT_EQ(it->second.tokens, Names(e.search_tokens(), LogTokenName));
      EXPECT_EQ(it->second.previous_impressions, e.previous_impressions());
      EXPECT_TRUE(slots[e.page_id()].insert(it->second.position).second);
      // The slot, as the generator numbers impressions within the user
      // (generator.cc: the upper half of its 24-bit sequence space).
      const uint64_t seq = e.example_id() & ((uint64_t{1} << 24) - 1);
      const uint64_t page = e.page_id() & ((uint64_t{1} << 24) - 1);
      EXPECT_EQ(static_cast<uint64_t>(it->second.position),
                seq - (uint64_t{1} << 23) - page * g.options.page_size);
      const auto [pt, added] = page_times.emplace(e.page_id(), std::get<1>(key));
      EXPECT_EQ(pt->second, std::get<1>(key)) << "page " << e.page_id();
      const auto click = clicks.find(key);
      ASSERT_EQ(click != clicks.end(), e.clicked()) << std::get<0>(key) << " " << std::get<1>(key);
      if (e.clicked()) {
        EXPECT_EQ(static_cast<float>(std::strtod(click->second.c_str(), nullptr)), e.watch_time())
            << click->second;
      }
    }
  }
  for (const auto& [page, s] : slots) {
    EXPECT_EQ(static_cast<int>(s.size()), *s.rbegin() + 1) << "page " << page;
    EXPECT_EQ(*s.begin(), 0);
  }
}

TEST(GeneratedLogsTest, UsersItemsAndTestUsersDescribeTheWorld) {
  const Generated& g = Shared();
  const WorldOptions& wo = g.world->options();
  // users.csv: every user once; the age parses back to the native float.
  const std::vector<Row> users = ReadTable(JoinPath(g.options.logs_dir, "users.csv"),
                                           {"user", "age", "gender", "region", "logged_in"});
  ASSERT_EQ(static_cast<int64_t>(users.size()), wo.num_users);
  std::map<std::string, const Row*> by_name;
  for (const Row& r : users) {
    for (const auto& v : r) ASSERT_TRUE(v);
    ASSERT_TRUE(by_name.emplace(*r[0], &r).second) << *r[0];
  }
  for (int64_t u = 0; u < wo.num_users; ++u) {
    const UserProfile p = g.world->MakeUser(u);
    const auto it = by_name.find(LogUserName(p.id));
    ASSERT_NE(it, by_name.end()) << u;
    const Row& r = *it->second;
    const double years = std::strtod(r[1]->c_str(), nullptr);
    EXPECT_EQ(static_cast<float>((years - 13.0) / 67.0), p.age) << *r[1];
    EXPECT_EQ(std::strtod(r[2]->c_str(), nullptr), p.gender);
    EXPECT_EQ(*r[3], LogRegionName(p.region));
    EXPECT_EQ(*r[4], p.logged_in > 0.5f ? "1" : "0");
  }
  // test_users.txt: the held-out users, whose last examples are the test ones.
  ASSERT_OK_AND_ASSIGN(std::string text,
                       ReadFileToString(JoinPath(g.options.logs_dir, "test_users.txt")));
  std::set<std::string> test_users;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ASSERT_TRUE(test_users.emplace(line).second) << line;
  }
  EXPECT_EQ(static_cast<int64_t>(test_users.size()), g.options.test_users);
  for (const CandidateExample& e : g.candidate_test) {
    EXPECT_TRUE(test_users.count(LogUserName(e.user_id()))) << e.user_id();
  }
  for (const RankingExample& e : g.ranking_train) {
    EXPECT_FALSE(test_users.count(LogUserName(e.user_id()))) << e.user_id();
  }
  // items.csv: every video, its facts as videos.rec has them.
  const std::vector<Row> items = ReadTable(JoinPath(g.options.logs_dir, "items.csv"),
                                           {"item", "upload_time", "topic", "duration"});
  ASSERT_EQ(items.size(), g.world->videos().size());
  std::vector<VideoInfo> infos;
  {
    ASSERT_OK_AND_ASSIGN(auto reader,
                         RecordReader::Open(JoinPath(g.options.out_dir, "videos.rec")));
    VideoInfo info;
    while (true) {
      ASSERT_OK_AND_ASSIGN(bool more, reader->NextMessage(&info));
      if (!more) break;
      infos.push_back(info);
    }
  }
  ASSERT_EQ(infos.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const Row& r = items[i];
    const VideoInfo& v = infos[i];
    ASSERT_EQ(*r[0], LogItemName(v.video_id()));
    EXPECT_NEAR(std::strtod(r[1]->c_str(), nullptr) / 86400, v.upload_time(), 1e-8) << *r[1];
    EXPECT_EQ(*r[2], LogTopicName(v.topic()));
    EXPECT_EQ(static_cast<float>(std::strtod(r[3]->c_str(), nullptr)), v.duration());
  }
}

// The logs, like the native files, do not depend on the thread count, and
// writing them changes nothing the simulator draws.
TEST(GeneratedLogsTest, SameForAnyThreadCountAndNativeFilesUnchanged) {
  const Generated& g = Shared();
  testing::ScratchDir scratch;
  GeneratorOptions o = g.options;
  o.out_dir = scratch.File("ds");
  o.logs_dir = scratch.File("logs");
  o.threads = 1;
  ASSERT_OK(GenerateDataset(*g.world, o));
  for (const char* table : {"events.csv", "items.csv", "users.csv", "test_users.txt"}) {
    ASSERT_OK_AND_ASSIGN(std::string a, ReadFileToString(JoinPath(g.options.logs_dir, table)));
    ASSERT_OK_AND_ASSIGN(std::string b, ReadFileToString(JoinPath(o.logs_dir, table)));
    EXPECT_TRUE(a == b) << table << " differs between 2 threads and 1";
    // The shards' parts are gone.
    EXPECT_FALSE(PathExists(LogPartPath(o.logs_dir, table, 0))) << table;
  }
  o.out_dir = scratch.File("plain");
  o.logs_dir.clear();
  ASSERT_OK_AND_ASSIGN(GenerationSummary plain, GenerateDataset(*g.world, o));
  EXPECT_TRUE(plain.logs.is_null());
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  for (const ShardInfo& s : m.candidate_train()) {
    ASSERT_OK_AND_ASSIGN(std::string a, ReadFileToString(JoinPath(g.options.out_dir, s.path())));
    ASSERT_OK_AND_ASSIGN(std::string b, ReadFileToString(JoinPath(o.out_dir, s.path())));
    EXPECT_TRUE(a == b) << s.path();
  }
  for (const ShardInfo& s : m.ranking_train()) {
    ASSERT_OK_AND_ASSIGN(std::string a, ReadFileToString(JoinPath(g.options.out_dir, s.path())));
    ASSERT_OK_AND_ASSIGN(std::string b, ReadFileToString(JoinPath(o.out_dir, s.path())));
    EXPECT_TRUE(a == b) << s.path();
  }
}

TEST(GeneratedLogsTest, UnwritableFolderIsAnErrorNamingIt) {
  testing::ScratchDir scratch;
  ASSERT_OK(WriteFileAtomic(scratch.File("file"), "not a folder"));
  auto world = World::Build(LogWorld(3), 1);
  ASSERT_OK(world);
  GeneratorOptions o = LogGenerator(scratch.File("ds"), scratch.File("file/logs"));
  const auto result = GenerateDataset(**world, o);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find(scratch.File("file")), std::string::npos)
      << result.status();
  EXPECT_FALSE(PathExists(JoinPath(o.out_dir, "manifest.pb")));
}

}  // namespace
}  // namespace vrec
