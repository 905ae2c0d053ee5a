#include "data/csv_converter.h"

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/random.h"
#include "data/dataset.h"
#include "data/id_key.h"
#include "data/record_reader.h"
#include "nlohmann/json.hpp"
#include "proto/data.pb.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kDay = 86400;

// Examples of one kind, keyed by (user, label) for lookups in tests where
// that pair is unique.
struct Examples {
  std::vector<CandidateExample> all;
  const CandidateExample* Find(uint64_t user, uint64_t label) const {
    for (const auto& e : all) {
      if (e.user_id() == user && e.label_video() == label) return &e;
    }
    return nullptr;
  }
  // Labels of one user in the order written.
  std::vector<uint64_t> Labels(uint64_t user) const {
    std::vector<uint64_t> out;
    for (const auto& e : all) {
      if (e.user_id() == user) out.push_back(e.label_video());
    }
    return out;
  }
};

std::vector<uint64_t> History(const CandidateExample* e) {
  if (e == nullptr) return {999999};  // makes a missing example fail loudly
  return {e->watch_history().begin(), e->watch_history().end()};
}

class CsvConverterTest : public ::testing::Test {
 protected:
  std::string WriteCsv(const std::string& contents) {
    const std::string path = dir_.File("in.csv");
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  ConvertOptions Options(const std::string& csv) {
    ConvertOptions o;
    o.csv_path = WriteCsv(csv);
    o.out_dir = dir_.File("out");
    o.shards = 3;
    return o;
  }

  // Reads every record of the listed shards back with RecordReader.
  Examples ReadShards(const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
    Examples out;
    for (const std::string& path : ShardPaths(dir_.File("out"), shards)) {
      auto reader = RecordReader::Open(path);
      EXPECT_OK(reader);
      if (!reader.ok()) continue;
      CandidateExample ex;
      while (true) {
        StatusOr<bool> more = (*reader)->NextMessage(&ex);
        EXPECT_OK(more);
        if (!more.ok() || !*more) break;
        out.all.push_back(ex);
      }
    }
    return out;
  }

  testing::ScratchDir dir_;
};

// Columns permuted, extra columns, a quoted title with a comma and quotes,
// CRLF endings, rows out of time order, timestamp ties.
const char kSmallCsv[] =
    "timestamp,extra,movieId,title,userId,rating,genres\r\n"
    "2592000,x,102,\"Heat, The (1995)\",7,4.0,Action|Crime\r\n"
    "864000,x,100,\"\"\"Quoted\"\" (1990)\",7,5.0,Comedy\r\n"
    "3456000,x,103,Up (2009),7,2.5,Animation|Comedy\r\n"
    "1728000,x,101,Alien (1979),7,3.0,Horror\r\n"
    "4320000,x,300,Solo (2018),8,4.0,(no genres listed)\r\n"
    "432000,x,200,A,9,1.0,Comedy\r\n"
    "432000,x,201,B,9,1.0,Comedy\r\n"
    "432000,x,202,C,9,1.0,Drama\r\n";

TEST_F(CsvConverterTest, NextWatchLabelsHistoriesAndHoldout) {
  ConvertOptions o = Options(kSmallCsv);
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.rows, 8u);
  EXPECT_EQ(s.interactions, 8u);
  EXPECT_EQ(s.users, 3u);
  EXPECT_EQ(s.items, 8u);
  EXPECT_EQ(s.train_examples, 3u);  // user 7: 101, 102; user 9: 201
  EXPECT_EQ(s.test_examples, 2u);   // users 7 and 9; user 8 has one watch
  EXPECT_EQ(s.first_watches, 3u);
  EXPECT_EQ(s.single_watch_users, 1u);
  EXPECT_EQ(s.skipped_rows, 0u);
  // The latest non-held-out watch is user 8's only one, on day 50.
  EXPECT_DOUBLE_EQ(s.t_max, 50.0);

  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  ASSERT_EQ(m.candidate_train_size(), 3);
  ASSERT_EQ(m.candidate_test_size(), 1);
  EXPECT_EQ(m.candidate_test(0).path(), "candidate/test-00000-of-00001.rec");
  EXPECT_EQ(m.source(), "convert:" + o.csv_path);
  EXPECT_DOUBLE_EQ(m.t_max(), 50.0);
  EXPECT_EQ(m.num_users(), 3u);
  EXPECT_EQ(m.num_videos(), 8u);

  Examples train = ReadShards(m.candidate_train());
  Examples test = ReadShards(m.candidate_test());
  ASSERT_EQ(train.all.size(), 3u);
  ASSERT_EQ(test.all.size(), 2u);
  uint64_t records = 0;
  for (const auto& shard : m.candidate_train()) records += shard.records();
  EXPECT_EQ(records, 3u);

  // User 7 in time order: 100 (day 10), 101 (20), 102 (30), 103 (40).
  EXPECT_THAT(History(train.Find(7, 101)), ElementsAre(100));
  EXPECT_THAT(History(train.Find(7, 102)), ElementsAre(100, 101));
  EXPECT_THAT(History(test.Find(7, 103)), ElementsAre(100, 101, 102));
  EXPECT_EQ(train.Find(7, 100), nullptr);  // the first watch has no history
  // Ties on day 5 keep file order: 200, 201, 202.
  EXPECT_THAT(History(train.Find(9, 201)), ElementsAre(200));
  EXPECT_THAT(History(test.Find(9, 202)), ElementsAre(200, 201));
  EXPECT_THAT(train.Labels(8), IsEmpty());
  EXPECT_THAT(test.Labels(8), IsEmpty());

  const CandidateExample* e = train.Find(7, 101);
  ASSERT_NE(e, nullptr);
  EXPECT_DOUBLE_EQ(e->time(), 20.0);
  EXPECT_FLOAT_EQ(e->example_age(), 30.0f);
  // A held-out example before t_max is t_max - time old.
  ASSERT_NE(test.Find(7, 103), nullptr);
  EXPECT_DOUBLE_EQ(test.Find(7, 103)->time(), 40.0);
  EXPECT_FLOAT_EQ(test.Find(7, 103)->example_age(), 10.0f);

  // All of a user's training examples are in one shard, and ids are unique.
  std::set<uint64_t> ids;
  for (const auto* set : {&train, &test}) {
    for (const auto& ex : set->all) EXPECT_TRUE(ids.insert(ex.example_id()).second);
  }
  EXPECT_EQ(ids.size(), 5u);
}

TEST_F(CsvConverterTest, VideosCatalogueAndGenreTopics) {
  ConvertOptions o = Options(kSmallCsv);
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.topics, 5u);  // Action, Comedy, Animation, Horror, Drama (first genres)
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  ASSERT_EQ(m.videos(), "videos.rec");
  ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(JoinPath(o.out_dir, "videos.rec")));
  std::map<uint64_t, uint32_t> topic;
  VideoInfo info;
  while (true) {
    ASSERT_OK_AND_ASSIGN(bool more, reader->NextMessage(&info));
    if (!more) break;
    topic[info.video_id()] = info.topic();
  }
  ASSERT_EQ(topic.size(), 8u);
  // Topics are numbered from 1 in order of first appearance; 0 = no genre.
  EXPECT_EQ(topic[102], 1u);  // Action
  EXPECT_EQ(topic[100], 2u);  // Comedy
  EXPECT_EQ(topic[103], 3u);  // Animation|Comedy
  EXPECT_EQ(topic[101], 4u);  // Horror
  EXPECT_EQ(topic[300], 0u);  // (no genres listed)
  EXPECT_EQ(topic[200], 2u);
  EXPECT_EQ(topic[202], 5u);  // Drama
  ASSERT_OK_AND_ASSIGN(std::string tsv, ReadFileToString(JoinPath(o.out_dir, "topics.tsv")));
  EXPECT_EQ(tsv, "topic\tgenre\n1\tAction\n2\tComedy\n3\tAnimation\n4\tHorror\n5\tDrama\n");
}

TEST_F(CsvConverterTest, HistoryIsTruncatedToTheMostRecent) {
  std::string csv = "userId,movieId,timestamp\n";
  for (int i = 1; i <= 6; ++i)
    csv += "1," + std::to_string(10 + i) + "," + std::to_string(i) + "\n";
  ConvertOptions o = Options(csv);
  o.max_history = 2;
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.train_examples, 4u);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  Examples train = ReadShards(m.candidate_train());
  Examples test = ReadShards(m.candidate_test());
  EXPECT_THAT(train.Labels(1), ElementsAre(12, 13, 14, 15));  // time order within a user
  EXPECT_THAT(History(train.Find(1, 12)), ElementsAre(11));
  EXPECT_THAT(History(train.Find(1, 13)), ElementsAre(11, 12));
  EXPECT_THAT(History(train.Find(1, 15)), ElementsAre(13, 14));
  EXPECT_THAT(History(test.Find(1, 16)), ElementsAre(14, 15));
  // The held-out watch is after t_max (second 5): age 0, as at serving time.
  ASSERT_NE(test.Find(1, 16), nullptr);
  EXPECT_EQ(test.Find(1, 16)->example_age(), 0.0f);
  EXPECT_GT(train.Find(1, 12)->example_age(), 0.0f);
}

// A file concatenated with itself (rows repeating user, item and
// timestamp) converts to the same examples as the file once, the repeats
// counted; the same item at another time is another watch.
TEST_F(CsvConverterTest, RepeatedRowsAreOneWatch) {
  ASSERT_OK_AND_ASSIGN(ConvertSummary once, ConvertCsv(Options(kSmallCsv)));
  const Examples first = ReadShards(ReadManifest(dir_.File("out"))->candidate_train());
  std::string body = std::string(kSmallCsv).substr(std::string(kSmallCsv).find('\n') + 1);
  const std::string tripled = std::string(kSmallCsv) + body + body;
  ASSERT_OK_AND_ASSIGN(ConvertSummary thrice, ConvertCsv(Options(tripled)));
  EXPECT_EQ(thrice.rows, 3 * once.rows);
  EXPECT_EQ(thrice.duplicate_rows, 2 * once.rows);
  EXPECT_EQ(thrice.interactions, once.interactions);
  EXPECT_EQ(thrice.train_examples, once.train_examples);
  EXPECT_EQ(thrice.test_examples, once.test_examples);
  const Examples again = ReadShards(ReadManifest(dir_.File("out"))->candidate_train());
  ASSERT_EQ(again.all.size(), first.all.size());
  for (size_t k = 0; k < first.all.size(); ++k) {
    EXPECT_EQ(again.all[k].SerializeAsString(), first.all[k].SerializeAsString()) << k;
  }
  ASSERT_OK_AND_ASSIGN(ConvertSummary rewatch,
                       ConvertCsv(Options("userId,movieId,timestamp\n1,5,10\n1,6,20\n1,5,30\n")));
  EXPECT_EQ(rewatch.duplicate_rows, 0u);
  EXPECT_EQ(rewatch.interactions, 3u);
  EXPECT_EQ(rewatch.rewatches, 1u);
  EXPECT_FALSE(ReadManifest(dir_.File("out"))->watches_unique());
  // Kept when asked: counted all the same, and each is a watch (a rewatch).
  ConvertOptions keep = Options(tripled);
  keep.drop_duplicate_rows = false;
  ASSERT_OK_AND_ASSIGN(ConvertSummary kept, ConvertCsv(keep));
  EXPECT_EQ(kept.duplicate_rows, 2 * once.rows);
  EXPECT_EQ(kept.interactions, 3 * once.interactions);
  EXPECT_GT(kept.train_examples, once.train_examples);
}

// A log in which no user watches an item twice says so in its manifest: the
// task is then to recommend unwatched videos (vrec train and vrec eval
// exclude watched ones by default).
TEST_F(CsvConverterTest, ALogWithoutRewatchesIsMarkedInTheManifest) {
  ASSERT_OK_AND_ASSIGN(ConvertSummary s,
                       ConvertCsv(Options("userId,movieId,timestamp\n1,5,10\n1,6,20\n2,5,30\n"
                                          "2,6,40\n1,7,50\n")));
  EXPECT_EQ(s.rewatches, 0u);
  EXPECT_TRUE(ReadManifest(dir_.File("out"))->watches_unique());
}

TEST_F(CsvConverterTest, BadRowIsAnErrorWithItsLineNumber) {
  const std::string header = "userId,movieId,timestamp\n1,2,3\n";
  struct Case {
    std::string row;
    std::string message;
  } cases[] = {
      {"1,abc,5\n", "in.csv:3: movieId 'abc' is not a non-negative 64-bit integer"},
      {"-4,2,5\n", "in.csv:3: userId '-4' is not a non-negative"},
      {"1,2\n", "in.csv:3: expected 3 fields as in the header, found 2"},
      {"1,2,5,6\n", "in.csv:3: expected 3 fields as in the header, found 4"},
      {"1,2,\n", "in.csv:3: missing timestamp"},
      {",2,5\n", "in.csv:3: missing userId"},
      {"1,2,5.5\n", "in.csv:3: timestamp '5.5' is not an integer"},
      {"1,2,99999999999999999999\n", "in.csv:3: timestamp"},
      {"1,\"2,5\n", "in.csv:3: unterminated quoted field"},
  };
  for (const Case& c : cases) {
    ConvertOptions o = Options(header + c.row + "1,3,9\n");
    EXPECT_THAT(ConvertCsv(o), StatusIs(absl::StatusCode::kInvalidArgument, c.message)) << c.row;
    EXPECT_FALSE(PathExists(JoinPath(o.out_dir, "manifest.pb")));
  }
}

TEST_F(CsvConverterTest, SkipModeCountsBadRowsAndContinues) {
  ConvertOptions o = Options(
      "userId,movieId,timestamp\n"
      "1,10,1\n"
      "1,abc,2\n"  // line 3
      "1,11,2\n"
      "1,12\n"  // line 5
      "1,12,3\n"
      "2,\"20,4\n"  // line 7: unterminated quote
      "2,20,4\n"
      "2,21,5\n");
  o.skip_bad_rows = true;
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.skipped_rows, 3u);
  EXPECT_EQ(s.rows, 8u);
  EXPECT_EQ(s.interactions, 5u);
  EXPECT_EQ(s.rows, s.interactions + s.skipped_rows + s.filtered_rows);
  EXPECT_EQ(s.train_examples, 1u);  // user 1: label 11
  EXPECT_EQ(s.test_examples, 2u);
  ASSERT_EQ(s.first_errors.size(), 3u);
  EXPECT_THAT(s.first_errors[0], HasSubstr("in.csv:3:"));
  EXPECT_THAT(s.first_errors[1], HasSubstr("in.csv:5:"));
  EXPECT_THAT(s.first_errors[2], HasSubstr("in.csv:7: unterminated"));
}

TEST_F(CsvConverterTest, HeaderProblems) {
  EXPECT_THAT(ConvertCsv(Options("")), StatusIs(absl::StatusCode::kInvalidArgument, "empty file"));
  EXPECT_THAT(ConvertCsv(Options("userId,itemx,time\n1,2,3\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "in.csv:1: the header lacks required column(s) movieId, timestamp; "
                       "columns found: 'userId', 'itemx', 'time'"));
  // A binary file: its bytes are escaped and shortened, never printed raw.
  std::string binary =
      "\x7f"
      "ELF\x01\x02";
  for (int i = 0; i < 20; ++i) binary += std::string(100, '\x03') + ",";
  StatusOr<ConvertSummary> bad = ConvertCsv(Options(binary + "\n"));
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument, "'\\x7fELF\\x01\\x02\\x03"));
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument, "and 13 more"));
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument, "Is it a CSV file"));
  EXPECT_LT(bad.status().message().size(), 1500u);
  for (char c : bad.status().message()) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "a raw byte " << static_cast<int>(c);
  }
  EXPECT_THAT(ConvertCsv(Options("userId,movieId,timestamp,userId\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, "'userId' appears twice"));
  EXPECT_THAT(ConvertCsv(Options("userId,movieId,timestamp\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, "no interactions"));
  ConvertOptions o = Options("userId,movieId,timestamp\n1,2,3\n");
  o.min_rating = 3.5;
  EXPECT_THAT(ConvertCsv(o), StatusIs(absl::StatusCode::kInvalidArgument, "needs a rating column"));
  ConvertOptions missing;
  missing.csv_path = dir_.File("nope.csv");
  missing.out_dir = dir_.File("out");
  EXPECT_THAT(ConvertCsv(missing), StatusIs(absl::StatusCode::kNotFound, "nope.csv"));
}

TEST_F(CsvConverterTest, MinRatingKeepsOnlyWatches) {
  ConvertOptions o = Options(kSmallCsv);
  o.min_rating = 3.0;  // drops 103 (2.5) and user 9 (1.0) entirely
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.filtered_rows, 4u);
  EXPECT_EQ(s.users, 2u);
  EXPECT_EQ(s.items, 4u);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  Examples test = ReadShards(m.candidate_test());
  EXPECT_THAT(History(test.Find(7, 102)), ElementsAre(100, 101));

  o.skip_bad_rows = false;
  ConvertOptions bad = Options("userId,movieId,timestamp,rating\n1,2,3,4\n1,3,4,good\n");
  bad.min_rating = 1;
  EXPECT_THAT(ConvertCsv(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "in.csv:3: rating 'good' is not a"));
}

TEST_F(CsvConverterTest, MaxExamplesPerUserSubsamplesDeterministically) {
  std::string csv = "userId,movieId,timestamp\n";
  for (int i = 0; i < 22; ++i)
    csv += "5," + std::to_string(100 + i) + "," + std::to_string(i) + "\n";
  ConvertOptions o = Options(csv);
  o.max_examples_per_user = 5;
  o.seed = testing::TestSeed(7);
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.train_examples, 5u);
  EXPECT_EQ(s.subsampled_out, 15u);  // 20 candidates (not the first, not the held-out last)
  EXPECT_EQ(s.test_examples, 1u);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  const std::vector<uint64_t> labels = ReadShards(m.candidate_train()).Labels(5);
  ASSERT_EQ(labels.size(), 5u);
  EXPECT_TRUE(std::is_sorted(labels.begin(), labels.end()));
  EXPECT_TRUE(std::adjacent_find(labels.begin(), labels.end()) == labels.end());
  EXPECT_GE(labels.front(), 101u);
  EXPECT_LE(labels.back(), 120u);
  const Examples test = ReadShards(m.candidate_test());
  EXPECT_THAT(test.Labels(5), ElementsAre(121));
  // Each kept example still carries its full history.
  const CandidateExample* e = ReadShards(m.candidate_train()).Find(5, labels[0]);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(static_cast<uint64_t>(e->watch_history_size()), labels[0] - 100);

  // Same seed, same choice.
  ASSERT_OK(ConvertCsv(o));
  ASSERT_OK_AND_ASSIGN(m, ReadManifest(o.out_dir));
  EXPECT_EQ(ReadShards(m.candidate_train()).Labels(5), labels);
}

TEST_F(CsvConverterTest, SubsamplingIsRoughlyUniform) {
  // 300 users x 12 watches; 3 of the 10 training candidates kept per user:
  // every position should be kept about 90 times (sd ~8).
  std::string csv = "userId,movieId,timestamp\n";
  for (int u = 0; u < 300; ++u) {
    for (int i = 0; i < 12; ++i) {
      csv += std::to_string(u) + "," + std::to_string(i) + "," + std::to_string(i) + "\n";
    }
  }
  ConvertOptions o = Options(csv);
  o.max_examples_per_user = 3;
  o.seed = testing::TestSeed(11);
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.train_examples, 900u);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  std::map<uint64_t, int> kept;
  for (const auto& e : ReadShards(m.candidate_train()).all) ++kept[e.label_video()];
  ASSERT_EQ(kept.size(), 10u);
  for (const auto& [label, count] : kept) {
    EXPECT_GE(label, 1u);
    EXPECT_LE(label, 10u);
    EXPECT_GT(count, 55) << "position " << label;
    EXPECT_LT(count, 125) << "position " << label;
  }
}

TEST_F(CsvConverterTest, UsersAreSpreadOverShards) {
  std::string csv = "userId,movieId,timestamp\n";
  for (int u = 0; u < 200; ++u) {
    for (int i = 0; i < 3; ++i) {
      csv += std::to_string(u) + "," + std::to_string(i) + "," + std::to_string(i) + "\n";
    }
  }
  ConvertOptions o = Options(csv);
  o.shards = 4;
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.train_examples, 200u);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  ASSERT_EQ(m.candidate_train_size(), 4);
  for (const auto& shard : m.candidate_train()) {
    EXPECT_GT(shard.records(), 25u) << shard.path();
    EXPECT_LT(shard.records(), 75u) << shard.path();
  }
}

TEST(ConvertSummaryJsonTest, HasTheDocumentedFields) {
  ConvertSummary s;
  s.users = 3;
  s.items = 8;
  s.train_examples = 5;
  s.test_examples = 2;
  s.skipped_rows = 1;
  s.duplicate_rows = 4;
  s.rewatches = 6;
  const nlohmann::json j = nlohmann::json::parse(ConvertSummaryJson(s));
  EXPECT_EQ(j["duplicate_rows"], 4);
  EXPECT_EQ(j["rewatches"], 6);
  EXPECT_EQ(j["users"], 3);
  EXPECT_EQ(j["items"], 8);
  EXPECT_EQ(j["train_examples"], 5);
  EXPECT_EQ(j["test_examples"], 2);
  EXPECT_EQ(j["skipped_rows"], 1);
}

// The same watches as kSmallCsv as an events table of string ids (JSON
// Lines, ISO and numeric times), with impressions, a search, a click with
// watch time (a watch) and one without (not), and a bad row skipped: the
// same examples, by the ids' keys, and the ids kept.
TEST_F(CsvConverterTest, AnEventsTableWithStringIdsGivesTheSameExamples) {
  const std::string events = dir_.File("events.jsonl");
  std::ofstream(events, std::ios::binary)
      << "{\"user\": \"seven\", \"item\": \"m102\", \"timestamp\": 2592000}\n"
         "{\"user\": \"seven\", \"item\": \"m100\", \"timestamp\": \"1970-01-11T00:00:00Z\","
         " \"event\": \"watch\"}\n"
         "{\"user\": \"seven\", \"item\": \"m103\", \"timestamp\": 3456000, \"event\": "
         "\"click\", \"watch_seconds\": 12}\n"
         "{\"user\": \"seven\", \"item\": \"m999\", \"timestamp\": 3456001, \"event\": "
         "\"impression\", \"position\": 3}\n"
         "{\"user\": \"seven\", \"item\": \"m101\", \"timestamp\": 1728000}\n"
         "{\"user\": \"seven\", \"timestamp\": 1728001, \"event\": \"search\", \"query\": \"x\"}\n"
         "{\"user\": \"eight\", \"item\": \"m300\", \"timestamp\": 4320000}\n"
         "{\"user\": \"eight\", \"item\": \"m301\", \"timestamp\": \"soon\"}\n"
         "{\"user\": \"nine\", \"item\": \"m200\", \"timestamp\": 432000}\n"
         "{\"user\": \"nine\", \"item\": \"m201\", \"timestamp\": 432000, \"event\": "
         "\"click\"}\n"
         "{\"user\": \"nine\", \"item\": \"m201\", \"timestamp\": 432000}\n"
         "{\"user\": \"nine\", \"item\": \"m202\", \"timestamp\": 432000}\n";
  ConvertOptions o;
  o.events_path = events;
  o.out_dir = dir_.File("out");
  o.shards = 3;
  EXPECT_THAT(ConvertCsv(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "events.jsonl:8: timestamp 'soon'"));
  o.skip_bad_rows = true;
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.rows, 12u);
  EXPECT_EQ(s.skipped_rows, 1u);
  EXPECT_EQ(s.other_events, 2u);  // the impression, the click without watch time
  EXPECT_EQ(s.searches, 1u);
  EXPECT_EQ(s.interactions, 8u);
  EXPECT_EQ(s.users, 3u);
  EXPECT_EQ(s.train_examples, 3u);
  EXPECT_EQ(s.test_examples, 2u);
  EXPECT_DOUBLE_EQ(s.t_max, 50.0);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  EXPECT_EQ(m.source(), "convert:events:" + events);
  Examples train = ReadShards(m.candidate_train());
  Examples test = ReadShards(m.candidate_test());
  const uint64_t seven = IdKey("seven"), nine = IdKey("nine");
  auto key = [](const char* id) { return IdKey(id); };
  EXPECT_THAT(History(train.Find(seven, key("m101"))), ElementsAre(key("m100")));
  // The search (day 20, a second after m101) is in later examples only.
  EXPECT_THAT(train.Find(seven, key("m101"))->search_tokens(), IsEmpty());
  EXPECT_THAT(train.Find(seven, key("m102"))->search_tokens(), ElementsAre(key("x")));
  EXPECT_THAT(History(test.Find(seven, key("m103"))),
              ElementsAre(key("m100"), key("m101"), key("m102")));
  EXPECT_THAT(History(test.Find(nine, key("m202"))), ElementsAre(key("m200"), key("m201")));
  // The ids come back.
  ASSERT_OK_AND_ASSIGN(IdTable items, IdTable::Read(dir_.File("out/ids/items.tsv"), "item"));
  ASSERT_OK_AND_ASSIGN(IdTable users, IdTable::Read(dir_.File("out/ids/users.tsv"), "user"));
  EXPECT_EQ(items.size(), 9u);
  EXPECT_EQ(*items.Find(key("m103")), "m103");
  EXPECT_EQ(*users.Find(seven), "seven");
  EXPECT_EQ(*items.Find(key("m999")), "m999");  // only impressed: in the catalogue too
  // The impression is a ranking example (its instant is after the user's
  // last watch: held out), not clicked.
  EXPECT_EQ(s.impressions, 1u);
  EXPECT_EQ(s.ranking_test_examples, 1u);
  EXPECT_EQ(s.ranking_train_examples, 0u);
}

// Searches give each example the latest tokens before it, oldest first, at
// most max_history; the users and items tables give demographics, topics,
// upload times and durations; rows for users and items the events never
// name are counted.
TEST_F(CsvConverterTest, SearchesUsersAndItemsTablesFillTheExamples) {
  const std::string events = dir_.File("events.csv");
  std::ofstream(events, std::ios::binary) << "user,item,timestamp,event,query\n"
                                             "ann,v1,100,watch,\n"
                                             "ann,,150,search,Funny Cats\n"
                                             "ann,,160,search,\"cats, dogs & more\"\n"
                                             "ann,v2,200,watch,\n"
                                             "ann,v3,300,watch,\n"
                                             "bob,v1,100,watch,\n"
                                             "bob,v3,200,watch,\n";
  const std::string users = dir_.File("users.jsonl");
  std::ofstream(users, std::ios::binary)
      << "{\"user\": \"ann\", \"age\": 46.5, \"gender\": \"f\"}\n"
         "{\"user\": \"nobody\", \"age\": 30}\n";
  const std::string items = dir_.File("items.csv");
  std::ofstream(items, std::ios::binary) << "item,channel,upload_time,duration\n"
                                            "v1,news,86400,120\n"
                                            "v2,news,,60\n"
                                            "v3,sport,1970-01-03,\n"
                                            "v9,sport,0,1\n";
  ConvertOptions o;
  o.events_path = events;
  o.users_path = users;
  o.items_path = items;
  o.out_dir = dir_.File("out");
  o.shards = 1;
  o.max_history = 4;
  ASSERT_OK_AND_ASSIGN(ConvertSummary s, ConvertCsv(o));
  EXPECT_EQ(s.searches, 2u);
  EXPECT_EQ(s.users_without_events, 1u);
  EXPECT_EQ(s.items_without_events, 1u);
  EXPECT_EQ(s.topics, 2u);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(o.out_dir));
  Examples train = ReadShards(m.candidate_train());
  Examples test = ReadShards(m.candidate_test());
  auto key = [](const char* id) { return IdKey(id); };
  const CandidateExample* v2 = train.Find(key("ann"), key("v2"));
  ASSERT_NE(v2, nullptr);
  // funny cats | cats dogs more: the latest 4 tokens, oldest first.
  EXPECT_THAT(v2->search_tokens(), ElementsAre(key("cats"), key("cats"), key("dogs"), key("more")));
  EXPECT_FLOAT_EQ(v2->age(), 0.5f);  // 46.5 years: halfway from 13 to 80
  EXPECT_FLOAT_EQ(v2->gender(), 1.0f);
  const CandidateExample* bob = test.Find(key("bob"), key("v3"));
  ASSERT_NE(bob, nullptr);
  EXPECT_THAT(bob->search_tokens(), IsEmpty());
  EXPECT_FLOAT_EQ(bob->gender(), 0.5f);  // not in the users table: unknown
  EXPECT_FLOAT_EQ(bob->age(), 0.0f);
  // videos.rec: topics by channel, upload times in days, durations.
  ASSERT_OK_AND_ASSIGN(auto reader, RecordReader::Open(dir_.File("out/videos.rec")));
  std::map<uint64_t, VideoInfo> videos;
  VideoInfo info;
  while (*reader->NextMessage(&info)) videos[info.video_id()] = info;
  ASSERT_EQ(videos.size(), 3u);
  EXPECT_EQ(videos[key("v1")].topic(), videos[key("v2")].topic());
  EXPECT_NE(videos[key("v1")].topic(), videos[key("v3")].topic());
  EXPECT_DOUBLE_EQ(videos[key("v1")].upload_time(), 1.0);
  EXPECT_DOUBLE_EQ(videos[key("v3")].upload_time(), 2.0);
  EXPECT_FLOAT_EQ(videos[key("v2")].duration(), 60.0f);
  // A bad value in a side table is named by file and line.
  std::ofstream(users, std::ios::binary) << "{\"user\": \"ann\", \"age\": \"old\"}\n";
  EXPECT_THAT(ConvertCsv(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "users.jsonl:1: age: 'old'"));
}

// An events log of every kind, sorted in memory and in runs on disk under a
// 1 MB budget, gives the same dataset byte for byte; and the ranking
// examples are there.
TEST_F(CsvConverterTest, ExternalSortGivesTheSameDatasetAsInMemory) {
  const std::string events = dir_.File("events.csv");
  {
    std::ofstream out(events);
    out << "user,item,timestamp,event,watch_seconds,query,position,device,region\n";
    Rng rng(testing::TestSeed(11), 2);
    const char* kinds[] = {"watch", "impression", "click", "search"};
    uint64_t user = 0, item = 0, time = 0;  // the last impression's
    for (int i = 0; i < 60000; ++i) {
      const int kind = static_cast<int>(rng.UniformInt(4));
      if (kind == 2 && rng.Bernoulli(0.5)) {
        time += rng.UniformInt(600);  // a click on the last impression
      } else {
        user = rng.UniformInt(400);
        item = rng.UniformInt(900);
        time = 1700000000 + rng.UniformInt(30 * kDay);
      }
      out << "u" << user << ",";
      if (kind != 3) out << "v" << item;
      out << "," << time << "." << rng.UniformInt(1000) << "," << kinds[kind] << ",";
      if (kind == 2) out << rng.UniformInt(600);
      out << ",";
      if (kind == 3) out << "w" << rng.UniformInt(50) << " w" << rng.UniformInt(50);
      out << "," << (kind == 1 ? std::to_string(rng.UniformInt(10)) : "") << ",d"
          << rng.UniformInt(3) << ",r" << rng.UniformInt(5) << "\n";
    }
  }
  auto convert = [&](const std::string& out, int64_t memory_mb) {
    ConvertOptions o;
    o.events_path = events;
    o.out_dir = dir_.File(out);
    o.clicks_are_watches = false;
    o.sort_memory_mb = memory_mb;
    return ConvertCsv(o);
  };
  ASSERT_OK_AND_ASSIGN(ConvertSummary memory, convert("memory", 1024));
  ASSERT_OK_AND_ASSIGN(ConvertSummary disk, convert("disk", 1));
  EXPECT_EQ(memory.sort_runs, 0);
  EXPECT_GE(disk.sort_runs, 2);
  EXPECT_FALSE(PathExists(dir_.File("disk/.sort")));
  EXPECT_GT(memory.ranking_train_examples, 1000u);
  EXPECT_GT(memory.ranking_test_examples, 0u);
  EXPECT_GT(memory.clicked_impressions, 0u);
  EXPECT_EQ(memory.ranking_train_examples + memory.ranking_test_examples, memory.impressions);
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(dir_.File("memory")));
  ASSERT_EQ(m.ranking_train_size(), 4);
  ASSERT_EQ(m.ranking_test_size(), 1);
  std::vector<std::string> files = {"videos.rec", "ids/items.tsv", "ids/users.tsv"};
  for (const auto* shards : {&m.candidate_train(), &m.candidate_test(), &m.ranking_train(),
                             &m.ranking_test()}) {
    for (const ShardInfo& s : *shards) files.push_back(s.path());
  }
  for (const std::string& f : files) {
    ASSERT_OK_AND_ASSIGN(std::string a, ReadFileToString(dir_.File("memory/" + f)));
    ASSERT_OK_AND_ASSIGN(std::string b, ReadFileToString(dir_.File("disk/" + f)));
    EXPECT_TRUE(a == b) << f << " differs";
  }
}

TEST_F(CsvConverterTest, ExactlyOneInputIsGiven) {
  ConvertOptions o = Options(kSmallCsv);
  o.events_path = o.csv_path;
  EXPECT_THAT(ConvertCsv(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "give one input"));
}

}  // namespace
}  // namespace vrec
