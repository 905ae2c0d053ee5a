#include "data/example_builder.h"

#include <cmath>
#include <vector>

#include "testutil/testutil.h"

namespace vrec {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr double kDayS = 86400.0;

struct Capture : ExampleSink {
  std::vector<std::pair<CandidateExample, bool>> candidate;
  std::vector<std::pair<RankingExample, bool>> ranking;
  Status AddCandidate(const CandidateExample& e, bool test) override {
    candidate.emplace_back(e, test);
    return absl::OkStatus();
  }
  Status AddRanking(const RankingExample& e, bool test) override {
    ranking.emplace_back(e, test);
    return absl::OkStatus();
  }
  // The ranking example of `item` at `seconds`.
  const RankingExample* Impression(uint64_t item, double seconds) const {
    for (const auto& [r, test] : ranking) {
      if (r.impression_video() == item && std::abs(r.time() * kDayS - seconds) < 1e-3) return &r;
    }
    return nullptr;
  }
};

// One user (key 100) and three items: 1000 (topic 1), 1001 (topic 2,
// uploaded a day before the log), 1002 (topic 1, upload time unknown).
class ExampleBuilderTest : public ::testing::Test {
 protected:
  ExampleBuilderTest() {
    log_.user_ids = {100};
    log_.item_ids = {1000, 1001, 1002};
    log_.item_topic = {1, 2, 1};
    log_.item_upload_time = {0.0, -1.0, NAN};
    log_.user_age = {0.25f};
    log_.user_gender = {1.0f};
    log_.user_region = {77};
    log_.user_logged_in = {1.0f};
  }
  void Add(double seconds, uint8_t kind, uint32_t item, float watch = 0,
           std::vector<uint64_t> tokens = {}) {
    LogEvent e;
    e.user = 0;
    e.time_ms = static_cast<int64_t>(std::llround(seconds * 1000));
    e.kind = kind;
    e.watch_seconds = watch;
    e.device = 5;
    if (!tokens.empty()) {
      e.item = static_cast<uint32_t>(tokens_.size());
      e.tokens = static_cast<uint8_t>(tokens.size());
      tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
    } else {
      e.item = item;
    }
    events_.push_back(e);
  }
  // The day the generator's tests and the docs use: a search, a watch, a
  // page with a click, another watch, a later page whose click comes too
  // late, and the last watch.
  void UsualDay() {
    Add(10, LogEvent::kSearch, 0, 0, {7, 8});
    Add(20, LogEvent::kWatch, 0);
    Add(100, LogEvent::kImpression, 1);
    Add(100, LogEvent::kImpression, 2);
    Add(110, LogEvent::kClick, 1, 30);
    Add(130, LogEvent::kWatch, 1);
    Add(200, LogEvent::kImpression, 2);
    Add(200, LogEvent::kImpression, 0);
    Add(5000, LogEvent::kClick, 2, 9);  // 80 minutes later: answers nothing
    Add(6000, LogEvent::kWatch, 2);
  }
  UserEvents User() const { return {0, events_, tokens_}; }
  Capture Build(ExampleOptions o, double t_max_days = 1.0) {
    ExampleBuilder b(o, &log_);
    Capture c;
    EXPECT_OK(b.Build(User(), t_max_days, &c));
    counts_ = b.counts();
    return c;
  }

  InteractionLog log_;
  std::vector<LogEvent> events_;
  std::vector<uint64_t> tokens_;
  ExampleCounts counts_;
};

TEST_F(ExampleBuilderTest, CandidateExamplesAreNextWatches) {
  UsualDay();
  ExampleOptions o;
  o.clicks_are_watches = false;
  const Capture c = Build(o);
  ASSERT_EQ(c.candidate.size(), 2u);
  const CandidateExample& train = c.candidate[0].first;
  EXPECT_FALSE(c.candidate[0].second);
  EXPECT_EQ(train.label_video(), 1001u);
  EXPECT_THAT(train.watch_history(), ElementsAre(1000u));
  EXPECT_THAT(train.search_tokens(), ElementsAre(7u, 8u));
  EXPECT_EQ(train.region(), 77u);  // the user's home region: the event has none
  EXPECT_EQ(train.device(), 5u);
  EXPECT_FLOAT_EQ(train.age(), 0.25f);
  EXPECT_FLOAT_EQ(train.gender(), 1.0f);
  EXPECT_FLOAT_EQ(train.logged_in(), 1.0f);
  EXPECT_NEAR(train.time(), 130 / kDayS, 1e-12);
  EXPECT_NEAR(train.example_age(), 1.0 - 130 / kDayS, 1e-6);
  const CandidateExample& test = c.candidate[1].first;
  EXPECT_TRUE(c.candidate[1].second);  // the last watch
  EXPECT_EQ(test.label_video(), 1002u);
  EXPECT_THAT(test.watch_history(), ElementsAre(1000u, 1001u));
  EXPECT_EQ(counts_.watches, 3u);
  EXPECT_EQ(counts_.first_watches, 1u);
}

TEST_F(ExampleBuilderTest, ImpressionsAreRankingExamplesWithTheGeneratorsFeatures) {
  UsualDay();
  ExampleOptions o;
  o.clicks_are_watches = false;
  const Capture c = Build(o);
  ASSERT_EQ(c.ranking.size(), 4u);
  const RankingExample* a1 = c.Impression(1001, 100);
  const RankingExample* a2 = c.Impression(1002, 100);
  const RankingExample* b2 = c.Impression(1002, 200);
  const RankingExample* b0 = c.Impression(1000, 200);
  ASSERT_TRUE(a1 && a2 && b2 && b0);
  // Pages: the impressions of one instant.
  EXPECT_EQ(a1->page_id(), a2->page_id());
  EXPECT_EQ(b2->page_id(), b0->page_id());
  EXPECT_NE(a1->page_id(), b2->page_id());
  // Labels: the click 10 s later answers 1001; the click 80 minutes after
  // the second page answers nothing.
  EXPECT_TRUE(a1->clicked());
  EXPECT_FLOAT_EQ(a1->watch_time(), 30.0f);
  EXPECT_FALSE(a2->clicked());
  EXPECT_FALSE(b2->clicked());
  EXPECT_FLOAT_EQ(b2->watch_time(), 0.0f);
  EXPECT_EQ(counts_.clicked_impressions, 1u);
  EXPECT_EQ(counts_.unanswered_clicks, 1u);
  // Features from the user's earlier events.
  EXPECT_THAT(a1->watch_history(), ElementsAre(1000u));
  EXPECT_THAT(a1->search_tokens(), ElementsAre(7u, 8u));
  EXPECT_THAT(b2->watch_history(), ElementsAre(1000u, 1001u));
  EXPECT_FLOAT_EQ(a1->time_since_last_watch(), 365.0f);  // topic 2 never watched
  EXPECT_NEAR(a2->time_since_last_watch(), 80 / kDayS, 1e-6);  // topic 1 at 20 s
  EXPECT_FLOAT_EQ(a2->previous_impressions(), 0.0f);
  EXPECT_FLOAT_EQ(b2->previous_impressions(), 1.0f);  // shown on the first page
  EXPECT_NEAR(a1->video_age(), 1.0 + 100 / kDayS, 1e-6);
  EXPECT_FLOAT_EQ(a2->video_age(), 0.0f);  // upload time unknown
  EXPECT_FLOAT_EQ(a2->topic_watch_share(), 1.0f);
  EXPECT_FLOAT_EQ(b2->topic_watch_share(), 0.5f);
  EXPECT_FLOAT_EQ(a1->topic_watch_share(), 0.0f);
  EXPECT_EQ(a1->video_topic(), 2u);
  EXPECT_EQ(a1->region(), 77u);
  EXPECT_EQ(a1->device(), 5u);
  EXPECT_FLOAT_EQ(a1->age(), 0.25f);
  // last_watch: impressions from the last watch's instant on are held out:
  // none here.
  for (const auto& [r, test] : c.ranking) EXPECT_FALSE(test);
}

TEST_F(ExampleBuilderTest, LastDayHoldsOutEverythingFromItsStart) {
  UsualDay();
  ExampleOptions o;
  o.clicks_are_watches = false;
  o.split = TestSplit::kLastDay;
  o.test_from_ms = 150 * 1000;
  ExampleBuilder scan(o, &log_);
  EXPECT_EQ(scan.LatestTrainingWatch(User()), 130 * 1000);
  const Capture c = Build(o);
  ASSERT_EQ(c.candidate.size(), 2u);
  EXPECT_FALSE(c.candidate[0].second);
  EXPECT_TRUE(c.candidate[1].second);
  EXPECT_FALSE(c.Impression(1001, 100) == nullptr);
  for (const auto& [r, test] : c.ranking) EXPECT_EQ(test, r.time() * kDayS >= 150) << r.time();
}

TEST_F(ExampleBuilderTest, UsersSplitHoldsOutListedUsersOnly) {
  UsualDay();
  absl::flat_hash_set<uint64_t> held = {100};
  ExampleOptions o;
  o.clicks_are_watches = false;
  o.split = TestSplit::kUsers;
  o.test_users = &held;
  Capture c = Build(o);
  ASSERT_EQ(c.candidate.size(), 2u);
  EXPECT_TRUE(c.candidate[1].second);
  for (const auto& [r, test] : c.ranking) EXPECT_TRUE(test);  // all of a held-out user's
  held = {999};
  c = Build(o);
  ASSERT_EQ(c.candidate.size(), 2u);
  EXPECT_FALSE(c.candidate[0].second);
  EXPECT_FALSE(c.candidate[1].second);  // not held out: the last watch trains
  for (const auto& [r, test] : c.ranking) EXPECT_FALSE(test);
  ExampleBuilder scan(o, &log_);
  EXPECT_EQ(scan.LatestTrainingWatch(User()), 6000 * 1000);
}

TEST_F(ExampleBuilderTest, ClicksWithWatchTimeAreWatchesWhenAsked) {
  UsualDay();
  ExampleOptions o;  // clicks_are_watches
  const Capture c = Build(o);
  // Watches: 20, click 110, 130, click 5000, 6000.
  EXPECT_EQ(counts_.watches, 5u);
  ASSERT_EQ(c.candidate.size(), 4u);
  EXPECT_EQ(c.candidate[0].first.label_video(), 1001u);  // the click at 110
  EXPECT_THAT(c.candidate[1].first.watch_history(), ElementsAre(1000u, 1001u));
  // The click still labels its impression.
  EXPECT_TRUE(c.Impression(1001, 100)->clicked());
}

TEST_F(ExampleBuilderTest, ALogWithoutClicksLabelsImpressionsByWatches) {
  Add(20, LogEvent::kWatch, 0);
  Add(100, LogEvent::kImpression, 1);
  Add(100, LogEvent::kImpression, 2);
  Add(130, LogEvent::kWatch, 1, 42);
  Add(9000, LogEvent::kWatch, 2);  // too late for the page
  ExampleOptions o;
  o.labels_from_watches = true;
  const Capture c = Build(o);
  EXPECT_TRUE(c.Impression(1001, 100)->clicked());
  EXPECT_FLOAT_EQ(c.Impression(1001, 100)->watch_time(), 42.0f);
  EXPECT_FALSE(c.Impression(1002, 100)->clicked());
}

TEST_F(ExampleBuilderTest, AClickWithoutWatchTimeTakesItFromTheWatchAfterIt) {
  Add(20, LogEvent::kWatch, 0);
  Add(100, LogEvent::kImpression, 1);
  Add(101, LogEvent::kClick, 1);
  Add(102, LogEvent::kWatch, 1, 17);
  const Capture c = Build(ExampleOptions{});
  EXPECT_TRUE(c.Impression(1001, 100)->clicked());
  EXPECT_FLOAT_EQ(c.Impression(1001, 100)->watch_time(), 17.0f);
}

TEST_F(ExampleBuilderTest, RepeatedEventsAreCountedAndDroppedOrKept) {
  UsualDay();
  Add(6000, LogEvent::kWatch, 2);                // the last watch again
  Add(6000, LogEvent::kSearch, 0, 0, {7, 8});    // a search twice at one instant
  Add(6000, LogEvent::kSearch, 0, 0, {7, 8});
  Add(6000, LogEvent::kSearch, 0, 0, {7, 9});    // another query: not a repeat
  ExampleOptions o;
  o.clicks_are_watches = false;
  Capture c = Build(o);
  EXPECT_EQ(counts_.duplicate_events, 2u);
  EXPECT_EQ(c.candidate.size(), 2u);
  o.drop_duplicates = false;
  c = Build(o);
  EXPECT_EQ(counts_.duplicate_events, 2u);
  EXPECT_EQ(c.candidate.size(), 3u);
  EXPECT_EQ(counts_.rewatches, 1u);
}

TEST_F(ExampleBuilderTest, SubsamplingKeepsTestExamples) {
  for (int i = 0; i < 40; ++i) Add(100.0 * i, LogEvent::kWatch, static_cast<uint32_t>(i % 3));
  ExampleOptions o;
  o.max_examples_per_user = 5;
  const Capture c = Build(o);
  ASSERT_EQ(c.candidate.size(), 6u);
  EXPECT_TRUE(c.candidate.back().second);
  EXPECT_EQ(counts_.subsampled_out, 38u - 5u);
  for (size_t i = 1; i < c.candidate.size(); ++i) {
    EXPECT_LT(c.candidate[i - 1].first.time(), c.candidate[i].first.time());
  }
}

TEST_F(ExampleBuilderTest, AUserWithoutWatchesGivesRankingExamplesOnly) {
  Add(100, LogEvent::kImpression, 1);
  Add(110, LogEvent::kClick, 1, 3);
  ExampleOptions o;
  o.clicks_are_watches = false;
  const Capture c = Build(o);
  EXPECT_THAT(c.candidate, IsEmpty());
  ASSERT_EQ(c.ranking.size(), 1u);
  EXPECT_TRUE(c.ranking[0].first.clicked());
  EXPECT_FALSE(c.ranking[0].second);
  ExampleBuilder scan(o, &log_);
  EXPECT_EQ(scan.LatestTrainingWatch(User()), std::nullopt);
}

// Events before label_from are history only: the examples after it see them.
TEST_F(ExampleBuilderTest, EventsBeforeLabelFromAreHistoryOnly) {
  UsualDay();
  ExampleOptions o;
  o.clicks_are_watches = false;
  o.label_from_ms = 150 * 1000;  // after the first page and the watch at 130 s
  const Capture c = Build(o);
  ASSERT_EQ(c.candidate.size(), 1u);
  EXPECT_TRUE(c.candidate[0].second);  // the last watch, held out
  EXPECT_THAT(c.candidate[0].first.watch_history(), ElementsAre(1000u, 1001u));
  EXPECT_THAT(c.candidate[0].first.search_tokens(), ElementsAre(7u, 8u));
  ASSERT_EQ(c.ranking.size(), 2u);  // the second page only
  EXPECT_FLOAT_EQ(c.Impression(1002, 200)->previous_impressions(), 1.0f);
  EXPECT_EQ(c.Impression(1001, 100), nullptr);
  ExampleBuilder scan(o, &log_);
  EXPECT_EQ(scan.LatestTrainingWatch(User()), std::nullopt);  // 130 s is before it
  o.split = TestSplit::kLastDay;
  o.test_from_ms = 7000 * 1000;
  ExampleBuilder day(o, &log_);
  EXPECT_EQ(day.LatestTrainingWatch(User()), 6000 * 1000);
}

TEST(TestSplitTest, NamesRoundTrip) {
  for (TestSplit s : {TestSplit::kLastWatch, TestSplit::kLastDay, TestSplit::kUsers}) {
    ASSERT_OK_AND_ASSIGN(TestSplit back, ParseTestSplit(ToString(s)));
    EXPECT_EQ(back, s);
  }
  EXPECT_THAT(ParseTestSplit("tomorrow"),
              StatusIs(absl::StatusCode::kInvalidArgument, "last_watch, last_day, users"));
}

}  // namespace
}  // namespace vrec
