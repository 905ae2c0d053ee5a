#include "data/generator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/file_util.h"
#include "data/dataset.h"
#include "data/record_reader.h"
#include "testutil/testutil.h"

namespace vrec {
namespace {

WorldOptions TinyWorldOptions(uint64_t seed) {
  WorldOptions o;
  o.seed = seed;
  o.num_videos = 4000;
  o.num_users = 3000;
  o.num_tokens = 2000;
  o.num_topics = 20;
  o.num_days = 20;
  return o;
}

class MemorySink : public ExampleSink {
 public:
  Status AddCandidate(const CandidateExample& e, bool test) override {
    (test ? candidate_test : candidate_train).push_back(e);
    return absl::OkStatus();
  }
  Status AddRanking(const RankingExample& e, bool test) override {
    (test ? ranking_test : ranking_train).push_back(e);
    return absl::OkStatus();
  }
  std::vector<CandidateExample> candidate_train, candidate_test;
  std::vector<RankingExample> ranking_train, ranking_test;
};

class FailingSink : public ExampleSink {
 public:
  Status AddCandidate(const CandidateExample&, bool) override {
    return absl::UnavailableError("disk full");
  }
  Status AddRanking(const RankingExample&, bool) override { return absl::OkStatus(); }
};

struct Simulated {
  std::unique_ptr<World> world;
  GeneratorOptions options;
  MemorySink sink;
  OracleStats oracle;
  GenerationCounts counts;
};

std::unique_ptr<Simulated> SimulateAll(const WorldOptions& wo, const GeneratorOptions& go) {
  auto out = std::make_unique<Simulated>();
  auto world = World::Build(wo, 2);
  EXPECT_OK(world);
  out->world = std::move(world).value();
  out->options = go;
  const std::vector<bool> test = ChooseTestUsers(wo.seed, wo.num_users, go.test_users);
  UserSimulator sim(out->world.get(), go, &test);
  for (int64_t u = 0; u < wo.num_users; ++u) {
    EXPECT_OK(sim.Simulate(u, &out->sink, &out->oracle, &out->counts));
  }
  return out;
}

GeneratorOptions SmallGenerator() {
  GeneratorOptions g;
  g.test_users = 1500;
  g.max_examples_per_user = 5;
  g.page_rate = 0.2;
  return g;
}

// SmallGenerator writing `shards` files quietly and without fsync, 100
// held-out users: the GenerateDataset tests' options.
GeneratorOptions FileGenerator(int shards) {
  GeneratorOptions g = SmallGenerator();
  g.test_users = 100;
  g.shards = shards;
  g.sync = false;
  g.progress_interval_s = 0;
  return g;
}

// One simulation of the tiny world shared by the read-only tests below.
const Simulated& Shared() {
  static const Simulated* sim =
      SimulateAll(TinyWorldOptions(testing::TestSeed(41)), SmallGenerator()).release();
  return *sim;
}

TEST(ChooseTestUsersTest, ExactCountDeterministic) {
  const auto a = ChooseTestUsers(5, 1000, 100), b = ChooseTestUsers(5, 1000, 100);
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::count(a.begin(), a.end(), true), 100);
  EXPECT_NE(a, ChooseTestUsers(6, 1000, 100));
  const auto all = ChooseTestUsers(5, 10, 50);
  EXPECT_EQ(std::count(all.begin(), all.end(), true), 10);
  const auto none = ChooseTestUsers(5, 10, 0);
  EXPECT_EQ(std::count(none.begin(), none.end(), true), 0);
}

TEST(GeneratorOptionsTest, RejectsBadOptions) {
  GeneratorOptions g;
  g.page_size = 1;
  EXPECT_THAT(ValidateGeneratorOptions(g, WorldOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, "page_size"));
  g = GeneratorOptions();
  g.shards = 0;
  EXPECT_THAT(ValidateGeneratorOptions(g, WorldOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, "shards"));
  g = GeneratorOptions();
  g.max_examples_per_user = -1;
  EXPECT_THAT(ValidateGeneratorOptions(g, WorldOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_examples_per_user"));
  g = GeneratorOptions();
  g.page_rate = -0.1;
  EXPECT_THAT(ValidateGeneratorOptions(g, WorldOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, "page_rate"));
  EXPECT_OK(ValidateGeneratorOptions(GeneratorOptions(), WorldOptions()));
}

TEST(UserSimulatorTest, DeterministicPerUser) {
  auto world = World::Build(TinyWorldOptions(testing::TestSeed(42)), 1);
  ASSERT_OK(world);
  const std::vector<bool> test = ChooseTestUsers(1, 3000, 300);
  GeneratorOptions g = SmallGenerator();
  UserSimulator a(world->get(), g, &test), b(world->get(), g, &test);
  MemorySink sa, sb;
  OracleStats oa, ob;
  GenerationCounts ca, cb;
  // b simulates other users first: a user's output must not depend on that.
  for (int64_t u : {5, 9, 100}) ASSERT_OK(b.Simulate(u, &sb, &ob, &cb));
  sb = MemorySink();
  for (int64_t u = 0; u < 50; ++u) {
    ASSERT_OK(a.Simulate(u, &sa, &oa, &ca));
    ASSERT_OK(b.Simulate(u, &sb, &ob, &cb));
  }
  ASSERT_EQ(sa.candidate_train.size(), sb.candidate_train.size());
  ASSERT_GT(sa.candidate_train.size(), 50u);
  for (size_t i = 0; i < sa.candidate_train.size(); ++i) {
    EXPECT_EQ(sa.candidate_train[i].SerializeAsString(), sb.candidate_train[i].SerializeAsString());
  }
  ASSERT_EQ(sa.ranking_train.size(), sb.ranking_train.size());
  for (size_t i = 0; i < sa.ranking_train.size(); ++i) {
    EXPECT_EQ(sa.ranking_train[i].SerializeAsString(), sb.ranking_train[i].SerializeAsString());
  }
}

TEST(UserSimulatorTest, ZeroMaxExamplesKeepsEveryWatch) {
  auto world = World::Build(TinyWorldOptions(testing::TestSeed(45)), 1);
  ASSERT_OK(world);
  const std::vector<bool> test(3000, false);
  GeneratorOptions g = SmallGenerator();
  g.max_examples_per_user = 0;
  g.page_rate = 0;
  UserSimulator sim(world->get(), g, &test);
  for (int64_t u = 0; u < 100; ++u) {
    MemorySink sink;
    OracleStats o;
    GenerationCounts c;
    ASSERT_OK(sim.Simulate(u, &sink, &o, &c));
    // Every watch but the first is a training example.
    EXPECT_EQ(c.candidate_train, std::max<int64_t>(0, c.watches - 1)) << "user " << u;
  }
}

// Random held-out labels: the same examples (ids, labels, times), the test
// examples unchanged, and training histories that see the user's later
// watches too, but never a held-out user's test watch or what followed it.
TEST(UserSimulatorTest, RandomLabelsSeeTheWholeSequenceButNotTheTest) {
  auto world = World::Build(TinyWorldOptions(testing::TestSeed(46)), 1);
  ASSERT_OK(world);
  const std::vector<bool> test = ChooseTestUsers(1, 3000, 1500);
  GeneratorOptions g = SmallGenerator();
  g.page_rate = 0;
  g.max_examples_per_user = 0;
  GeneratorOptions r = g;
  r.random_labels = true;
  UserSimulator next(world->get(), g, &test), random(world->get(), r, &test);
  uint64_t longer = 0, compared = 0;
  for (int64_t u = 0; u < 200; ++u) {
    MemorySink a, b;
    OracleStats oa, ob;
    GenerationCounts ca, cb;
    ASSERT_OK(next.Simulate(u, &a, &oa, &ca));
    ASSERT_OK(random.Simulate(u, &b, &ob, &cb));
    ASSERT_EQ(a.candidate_test.size(), b.candidate_test.size());
    for (size_t i = 0; i < a.candidate_test.size(); ++i) {
      EXPECT_EQ(a.candidate_test[i].SerializeAsString(), b.candidate_test[i].SerializeAsString());
    }
    ASSERT_EQ(a.candidate_train.size(), b.candidate_train.size());
    // The user's visible sequence: the last training history in next-watch
    // mode plus its label is every watch before the test watch (or all).
    for (size_t i = 0; i < a.candidate_train.size(); ++i) {
      const CandidateExample &x = a.candidate_train[i], &y = b.candidate_train[i];
      EXPECT_EQ(x.example_id(), y.example_id());
      EXPECT_EQ(x.label_video(), y.label_video());
      EXPECT_EQ(x.time(), y.time());
      EXPECT_GE(y.watch_history_size(), std::min(x.watch_history_size(), g.max_history));
      longer += y.watch_history_size() > x.watch_history_size();
      ++compared;
    }
    if (!a.candidate_train.empty()) {
      // Every random-label history is drawn from the watches a next-watch
      // example of this user could see (the test watch is never among them
      // unless watched earlier too).
      std::multiset<uint64_t> visible;
      const CandidateExample& last = a.candidate_train.back();
      visible.insert(last.watch_history().begin(), last.watch_history().end());
      visible.insert(last.label_video());
      if (last.watch_history_size() < g.max_history) {
        for (const CandidateExample& y : b.candidate_train) {
          for (uint64_t v : y.watch_history()) EXPECT_TRUE(visible.count(v) > 0) << "user " << u;
        }
      }
    }
  }
  EXPECT_GT(longer, compared / 2);  // most examples see later watches too
}

TEST(UserSimulatorTest, SinkErrorsPropagate) {
  auto world = World::Build(TinyWorldOptions(1), 1);
  ASSERT_OK(world);
  const std::vector<bool> test(3000, false);
  UserSimulator sim(world->get(), SmallGenerator(), &test);
  FailingSink sink;
  OracleStats o;
  GenerationCounts c;
  Status s;
  for (int64_t u = 0; u < 20 && s.ok(); ++u) s = sim.Simulate(u, &sink, &o, &c);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, "disk full"));
}

TEST(GeneratorTest, CandidateExamplesAreWellFormed) {
  const Simulated& sim = Shared();
  const World& world = *sim.world;
  std::unordered_map<uint64_t, int64_t> user_index;
  for (int64_t u = 0; u < world.options().num_users; ++u) user_index[world.MakeUser(u).id] = u;
  std::unordered_map<uint64_t, int32_t> video_index;
  for (int32_t v = 0; v < static_cast<int32_t>(world.videos().size()); ++v) {
    video_index[world.videos()[v].id] = v;
  }
  std::unordered_map<uint64_t, int64_t> token_index;
  for (int64_t t = 0; t < world.options().num_tokens; ++t) token_index[world.TokenId(t)] = t;
  const int64_t tokens_per_topic = world.options().num_tokens / world.options().num_topics;

  std::map<uint64_t, int> per_user;
  std::set<uint64_t> ids;
  std::map<uint64_t, double> last_train_time;
  int with_tokens = 0;
  for (const CandidateExample& e : sim.sink.candidate_train) {
    ASSERT_TRUE(ids.insert(e.example_id()).second) << "duplicate example id";
    ASSERT_TRUE(user_index.count(e.user_id()));
    ASSERT_TRUE(video_index.count(e.label_video()));
    per_user[e.user_id()]++;
    last_train_time[e.user_id()] = std::max(last_train_time[e.user_id()], e.time());
    EXPECT_GE(e.watch_history_size(), 1);
    EXPECT_LE(e.watch_history_size(), 50);
    EXPECT_LE(e.search_tokens_size(), 50);
    EXPECT_NEAR(e.example_age(), world.t_max() - e.time(), 1e-4);
    EXPECT_GE(e.example_age(), 0);
    // The label must be uploaded by the day it is watched.
    EXPECT_LE(world.videos()[video_index[e.label_video()]].upload_time, world.DayOf(e.time()));
    // Search tokens come from the user's interest topics.
    const UserProfile user = world.MakeUser(user_index[e.user_id()]);
    for (uint64_t tok : e.search_tokens()) {
      ASSERT_TRUE(token_index.count(tok));
      const auto topic = static_cast<uint32_t>(token_index[tok] / tokens_per_topic);
      bool interest = false;
      for (int j = 0; j < user.num_interests; ++j) interest |= user.interest_topic[j] == topic;
      EXPECT_TRUE(interest) << "token of topic " << topic << " not among the user's interests";
    }
    with_tokens += e.search_tokens_size() > 0;
  }
  EXPECT_GT(with_tokens, 100);
  for (const auto& [user, n] : per_user) EXPECT_LE(n, sim.options.max_examples_per_user);
  // Heavy users are capped, not truncated to their first watches.
  EXPECT_GT(static_cast<int64_t>(sim.sink.candidate_train.size()), 2000);

  // One test example per held-out user, after all its training examples.
  std::set<uint64_t> test_users;
  for (const CandidateExample& e : sim.sink.candidate_test) {
    EXPECT_TRUE(test_users.insert(e.user_id()).second);
    if (last_train_time.count(e.user_id())) {
      EXPECT_GT(e.time(), last_train_time[e.user_id()]);
    }
  }
  EXPECT_GT(test_users.size(), 1300u);
  EXPECT_LE(test_users.size(), 1500u);
  EXPECT_EQ(sim.oracle.examples, static_cast<int64_t>(sim.sink.candidate_test.size()));
}

TEST(GeneratorTest, WatchPopularityIsHeavyTailed) {
  const Simulated& sim = Shared();
  std::unordered_map<uint64_t, int> watches;
  for (const CandidateExample& e : sim.sink.candidate_train) watches[e.label_video()]++;
  std::vector<int> counts;
  for (const auto& [v, n] : watches) counts.push_back(n);
  counts.resize(sim.world->videos().size(), 0);  // unwatched videos count as 0
  std::sort(counts.rbegin(), counts.rend());
  int64_t total = 0, top = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    total += counts[i];
    if (i < counts.size() / 100) top += counts[i];
  }
  // The top 1% of videos get far more than 1% of the watches.
  EXPECT_GT(static_cast<double>(top) / total, 0.15);
}

TEST(GeneratorTest, FreshUploadsAreWatchedMoreThanOlderOnes) {
  const Simulated& sim = Shared();
  const World& world = *sim.world;
  std::unordered_map<uint64_t, const Video*> by_id;
  for (const Video& v : world.videos()) by_id[v.id] = &v;
  // Videos uploaded in [0, 8) can be observed at ages [0, 2) and [8, 10).
  int64_t young = 0, old = 0;
  for (const CandidateExample& e : sim.sink.candidate_train) {
    const Video* v = by_id[e.label_video()];
    if (v->upload_time < 0 || v->upload_time >= 8 || v->series != 0) continue;
    const double age = e.time() - v->upload_time;
    young += age < 2;
    old += age >= 8 && age < 10;
  }
  ASSERT_GT(young, 100);
  // Freshness at ~1 day is ~0.72, at ~9 days ~0.09: expect a ratio near 8.
  EXPECT_GT(static_cast<double>(young), 3.0 * old) << "young " << young << " old " << old;
}

TEST(GeneratorTest, OracleHitRateAgreesWithRecall) {
  const Simulated& sim = Shared();
  const OracleStats& o = sim.oracle;
  ASSERT_GT(o.examples, 1000);
  for (size_t k = 0; k < kOracleKs.size(); ++k) {
    const double r = o.Recall(k);
    // Conservative standard error: sqrt(r (1 - r) / n) bounds the one of a
    // sum of independent Bernoulli(p_i) with mean r.
    const double se = std::sqrt(r * (1 - r) / o.examples);
    EXPECT_NEAR(o.hit_sum[k] / o.examples, r, 5 * se + 1e-9) << "K " << kOracleKs[k];
    if (k > 0) {
      EXPECT_LE(o.Recall(k - 1), r);
    }
  }
  EXPECT_GT(o.Recall(0), 0.0);
  EXPECT_LT(o.Recall(3), 1.0);
}

// A world where the next watch is fully determined by the last action's
// topic (search: the searched topic; watch: the last video's topic): an
// oracle that reconstructed the wrong state would miss most labels.
TEST(GeneratorTest, OracleUsesTheExactStateOfEachTestExample) {
  WorldOptions wo = TinyWorldOptions(testing::TestSeed(44));
  wo.num_users = 1200;
  wo.search_probability = 0.5;
  wo.p_search = 1.0;
  wo.p_sticky = 1.0;
  wo.max_interests = 8;
  GeneratorOptions g = SmallGenerator();
  g.test_users = 1200;
  g.page_rate = 0;
  auto sim = SimulateAll(wo, g);
  const OracleStats& o = sim->oracle;
  ASSERT_GT(o.examples, 900);
  for (size_t k = 0; k < kOracleKs.size(); ++k) {
    const double r = o.Recall(k);
    const double se = std::sqrt(r * (1 - r) / o.examples);
    EXPECT_NEAR(o.hit_sum[k] / o.examples, r, 5 * se + 1e-9) << "K " << kOracleKs[k];
  }
  // Every label has positive probability under the reconstructed state.
  EXPECT_GT(o.log_prob_sum / o.examples, -50.0);
}

TEST(GeneratorTest, RankingPagesAreConsistent) {
  const Simulated& sim = Shared();
  ASSERT_GT(sim.sink.ranking_train.size(), 5000u);
  ASSERT_GT(sim.sink.ranking_test.size(), 500u);
  std::unordered_map<uint64_t, const Video*> by_id;
  for (const Video& v : sim.world->videos()) by_id[v.id] = &v;
  double clicks[2] = {0, 0}, shown[2] = {0, 0}, watch_frac[2] = {0, 0};
  double expected_watch = 0, realised_watch = 0;
  std::map<uint64_t, int> page_sizes;
  bool repeated_impression = false;
  for (const RankingExample& r : sim.sink.ranking_train) {
    const Video* v = by_id[r.impression_video()];
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(r.video_topic(), v->topic + 1);
    EXPECT_GE(r.topic_watch_share(), 0);
    EXPECT_LE(r.topic_watch_share(), 1);
    EXPECT_GE(r.video_age(), 0);
    EXPECT_GE(r.previous_impressions(), 0);
    repeated_impression |= r.previous_impressions() > 0;
    EXPECT_GE(r.time_since_last_watch(), 0);
    EXPECT_LE(r.watch_history_size(), 50);
    EXPECT_EQ(r.clicked(), r.watch_time() > 0);
    EXPECT_LE(r.watch_time(), v->duration * 1.0001);
    EXPECT_GT(r.true_click_prob(), 0);
    EXPECT_LT(r.true_click_prob(), 1);
    shown[v->clickbait] += 1;
    clicks[v->clickbait] += r.clicked();
    if (r.clicked()) watch_frac[v->clickbait] += r.watch_time() / v->duration;
    expected_watch += r.true_expected_watch_time();
    realised_watch += r.watch_time();
    page_sizes[r.page_id()]++;
  }
  EXPECT_TRUE(repeated_impression);
  for (const auto& [page, n] : page_sizes) EXPECT_LE(n, sim.options.page_size);
  // Clickbait: clicked more often, watched much less once clicked.
  ASSERT_GT(clicks[1], 50);
  EXPECT_GT(clicks[1] / shown[1], clicks[0] / shown[0]);
  EXPECT_LT(watch_frac[1] / clicks[1], 0.5 * watch_frac[0] / clicks[0]);
  // The stated expected watch time is the mean of the realised one (3%).
  EXPECT_NEAR(realised_watch / expected_watch, 1.0, 0.03);
  // The oracle ranks by true expected watch time: better than chance (0.5),
  // worse than perfect (clicks are random).
  const double loss = sim.oracle.ranking.Loss();
  EXPECT_GT(loss, 0.05);
  EXPECT_LT(loss, 0.45);
}

TEST(GenerateDatasetTest, WritesAShardedDatasetIdenticalForAnyThreadCount) {
  testing::ScratchDir scratch;
  WorldOptions wo = TinyWorldOptions(testing::TestSeed(43));
  wo.num_users = 600;
  auto world = World::Build(wo, 2);
  ASSERT_OK(world);
  GeneratorOptions g = FileGenerator(3);
  g.out_dir = scratch.File("a");
  g.threads = 1;
  ASSERT_OK_AND_ASSIGN(GenerationSummary a, GenerateDataset(**world, g));
  g.out_dir = scratch.File("b");
  g.threads = 3;
  ASSERT_OK_AND_ASSIGN(GenerationSummary b, GenerateDataset(**world, g));
  EXPECT_EQ(a.oracle.ToJson().dump(), b.oracle.ToJson().dump());

  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(scratch.File("a")));
  EXPECT_EQ(m.source(), "datagen");
  EXPECT_EQ(m.num_videos(), 4000u);
  EXPECT_EQ(m.t_max(), 20.0);
  ASSERT_EQ(m.candidate_train_size(), 3);
  ASSERT_EQ(m.ranking_test_size(), 3);
  uint64_t train_records = 0;
  for (const auto& list :
       {m.candidate_train(), m.candidate_test(), m.ranking_train(), m.ranking_test()}) {
    for (const ShardInfo& shard : list) {
      ASSERT_OK_AND_ASSIGN(std::string x, ReadFileToString(scratch.File("a/" + shard.path())));
      ASSERT_OK_AND_ASSIGN(std::string y, ReadFileToString(scratch.File("b/" + shard.path())));
      EXPECT_EQ(x, y) << shard.path() << " differs between 1 and 3 threads";
      EXPECT_EQ(x.size(), shard.bytes());
    }
  }
  for (const ShardInfo& shard : m.candidate_train()) train_records += shard.records();
  EXPECT_EQ(train_records, static_cast<uint64_t>(a.counts.candidate_train));

  // Read one shard back through the record reader.
  ASSERT_OK_AND_ASSIGN(auto reader,
                       RecordReader::Open(scratch.File("a/" + m.candidate_train(0).path())));
  CandidateExample e;
  uint64_t n = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(bool more, reader->NextMessage(&e));
    if (!more) break;
    ++n;
  }
  EXPECT_EQ(n, m.candidate_train(0).records());

  ASSERT_OK_AND_ASSIGN(std::string truth_text, ReadFileToString(scratch.File("a/truth.json")));
  const nlohmann::json truth = nlohmann::json::parse(truth_text);
  for (const char* key :
       {"recall@1", "recall@10", "recall@50", "recall@100", "weighted_per_user_loss"}) {
    ASSERT_TRUE(truth["oracle"].contains(key)) << key;
  }
  EXPECT_EQ(truth["world"]["num_videos"].get<int64_t>(), 4000);
  EXPECT_TRUE(PathExists(scratch.File("a/videos.rec")));
}

// Reads every message of a shard list.
template <typename M>
std::vector<M> ReadAllShards(const std::string& dir,
                             const google::protobuf::RepeatedPtrField<ShardInfo>& shards) {
  std::vector<M> out;
  for (const ShardInfo& s : shards) {
    auto reader = RecordReader::Open(JoinPath(dir, s.path()));
    EXPECT_OK(reader);
    if (!reader.ok()) return out;
    M m;
    while (true) {
      auto more = (*reader)->NextMessage(&m);
      EXPECT_OK(more);
      if (!more.ok() || !*more) break;
      out.push_back(m);
    }
  }
  return out;
}

// --write_train=false: the same held-out files as a full dataset, no
// training files, and what training needs from them (counts, label counts,
// a uniform sample of the ranking examples) in the manifest and videos.rec.
TEST(GenerateDatasetTest, WithoutTrainingFilesKeepsTheirCountsAndASample) {
  testing::ScratchDir scratch;
  WorldOptions wo = TinyWorldOptions(testing::TestSeed(47));
  wo.num_users = 800;
  auto world = World::Build(wo, 2);
  ASSERT_OK(world);
  GeneratorOptions g = FileGenerator(3);
  g.out_dir = scratch.File("full");
  ASSERT_OK_AND_ASSIGN(GenerationSummary full, GenerateDataset(**world, g));
  g.out_dir = scratch.File("held_out");
  g.write_train = false;
  ASSERT_OK_AND_ASSIGN(GenerationSummary held, GenerateDataset(**world, g));
  EXPECT_EQ(full.oracle.ToJson().dump(), held.oracle.ToJson().dump());

  ASSERT_OK_AND_ASSIGN(DatasetManifest f, ReadManifest(scratch.File("full")));
  ASSERT_OK_AND_ASSIGN(DatasetManifest h, ReadManifest(scratch.File("held_out")));
  EXPECT_FALSE(f.train_streamed());
  EXPECT_TRUE(h.train_streamed());
  EXPECT_EQ(h.candidate_train_size(), 0);
  EXPECT_EQ(h.ranking_train_size(), 0);
  EXPECT_FALSE(PathExists(scratch.File("held_out/" + f.candidate_train(0).path())));
  EXPECT_FALSE(PathExists(scratch.File("held_out/" + f.ranking_train(0).path())));
  // The held-out files are byte for byte the full dataset's.
  ASSERT_EQ(h.candidate_test_size(), 3);
  for (const auto& [a, b] : {std::pair(&f.candidate_test(), &h.candidate_test()),
                             std::pair(&f.ranking_test(), &h.ranking_test())}) {
    for (int i = 0; i < a->size(); ++i) {
      ASSERT_OK_AND_ASSIGN(std::string x,
                           ReadFileToString(scratch.File("full/" + a->Get(i).path())));
      ASSERT_OK_AND_ASSIGN(std::string y,
                           ReadFileToString(scratch.File("held_out/" + b->Get(i).path())));
      EXPECT_EQ(x, y) << a->Get(i).path();
    }
  }

  // Counts and per-video label counts equal those of the full training files.
  const auto train = ReadAllShards<CandidateExample>(scratch.File("full"), f.candidate_train());
  const auto ranking = ReadAllShards<RankingExample>(scratch.File("full"), f.ranking_train());
  EXPECT_EQ(h.candidate_train_examples(), train.size());
  EXPECT_EQ(h.ranking_train_examples(), ranking.size());
  std::map<uint64_t, uint64_t> labels;
  for (const CandidateExample& e : train) ++labels[e.label_video()];
  VideoInfo v;
  ASSERT_OK_AND_ASSIGN(auto videos, RecordReader::Open(scratch.File("held_out/videos.rec")));
  uint64_t videos_read = 0, labelled = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(bool more, videos->NextMessage(&v));
    if (!more) break;
    ++videos_read;
    const auto it = labels.find(v.video_id());
    ASSERT_EQ(v.train_label_count(), it == labels.end() ? 0 : it->second) << v.video_id();
    labelled += v.train_label_count();
  }
  EXPECT_EQ(videos_read, 4000u);
  EXPECT_EQ(labelled, train.size());

  // The ranking sample: all of them when fewer than kRankingTrainSample (as
  // here), each one a training example of the full dataset.
  const auto sample =
      ReadAllShards<RankingExample>(scratch.File("held_out"), h.ranking_train_sample());
  ASSERT_LT(ranking.size(), static_cast<size_t>(kRankingTrainSample));
  ASSERT_EQ(sample.size(), ranking.size());
  std::set<uint64_t> ids;
  for (const RankingExample& e : ranking) ids.insert(e.example_id());
  for (const RankingExample& e : sample) EXPECT_TRUE(ids.count(e.example_id())) << e.example_id();
}

// Above kRankingTrainSample, the sample has exactly that size, an equal part
// drawn (by reservoir) from each shard's users.
TEST(GenerateDatasetTest, RankingSampleIsBoundedAndSpreadOverShards) {
  testing::ScratchDir scratch;
  WorldOptions wo = TinyWorldOptions(testing::TestSeed(53));
  auto world = World::Build(wo, 2);
  ASSERT_OK(world);
  GeneratorOptions g = FileGenerator(4);
  g.page_rate = 0.3;
  g.write_train = false;
  g.out_dir = scratch.File("d");
  ASSERT_OK_AND_ASSIGN(GenerationSummary s, GenerateDataset(**world, g));
  ASSERT_GT(s.counts.ranking_train, 2 * kRankingTrainSample) << "world too small for the test";
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(scratch.File("d")));
  uint64_t sampled = 0;
  for (const ShardInfo& shard : m.ranking_train_sample()) {
    EXPECT_EQ(shard.records(), static_cast<uint64_t>(kRankingTrainSample / 4)) << shard.path();
    sampled += shard.records();
  }
  EXPECT_EQ(sampled, static_cast<uint64_t>(kRankingTrainSample));
  EXPECT_EQ(m.ranking_train_examples(), static_cast<uint64_t>(s.counts.ranking_train));
}

TEST(GenerateDatasetTest, UnwritableFolderIsAnError) {
  auto world = World::Build(TinyWorldOptions(1), 1);
  ASSERT_OK(world);
  GeneratorOptions g = SmallGenerator();
  g.out_dir = "/proc/vrec_cannot_write_here";
  g.progress_interval_s = 0;
  EXPECT_FALSE(GenerateDataset(**world, g).ok());
}

}  // namespace
}  // namespace vrec
