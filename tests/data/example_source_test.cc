// Example sources: worker slices of record files, the generator streamed on
// the fly, and positions that a checkpointed worker resumes from.
#include "data/example_source.h"

#include <functional>
#include <set>

#include "data/dataset.h"
#include "data/generator_source.h"
#include "glog/logging.h"
#include "testutil/testutil.h"
#include "testutil/tiny_world.h"

namespace vrec {
namespace {

using testing::TinyDataset;

// Every worker's slice, by example id, for `workers` workers.
std::vector<std::vector<uint64_t>> Slices(const std::vector<std::string>& files, int workers,
                                          int epochs) {
  std::vector<std::vector<uint64_t>> out(workers);
  for (int w = 0; w < workers; ++w) {
    auto stream = ExampleStream<CandidateExample>::Open(files, w, workers, epochs);
    CHECK(stream.ok()) << stream.status();
    CandidateExample e;
    while (true) {
      auto more = (*stream)->Next(&e);
      CHECK(more.ok()) << more.status();
      if (!*more) break;
      out[w].push_back(e.example_id());
    }
  }
  return out;
}

TEST(ExampleStreamTest, WorkerSlicesAreDisjointAndCoverTheData) {
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(TinyDataset()));
  const auto files = ShardPaths(TinyDataset(), m.candidate_train());
  ASSERT_EQ(files.size(), 3u);
  const auto all = Slices(files, 1, 1)[0];
  ASSERT_GT(all.size(), 100u);
  for (int workers : {2, 3, 5}) {  // by file (2, 3) and by record (5)
    std::multiset<uint64_t> seen;
    for (const auto& s : Slices(files, workers, 1)) {
      EXPECT_FALSE(s.empty()) << workers;
      seen.insert(s.begin(), s.end());
    }
    EXPECT_EQ(seen, std::multiset<uint64_t>(all.begin(), all.end())) << workers << " workers";
  }
  EXPECT_EQ(Slices(files, 2, 2)[1].size(), 2 * Slices(files, 2, 1)[1].size());
}

// The generator streamed on the fly yields exactly the training examples the
// dataset's files hold, split over the workers, epoch after epoch.
TEST(GeneratorSourceTest, StreamsTheSameExamplesAsTheFiles) {
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(TinyDataset()));
  const auto files = Slices(ShardPaths(TinyDataset(), m.candidate_train()), 1, 1)[0];
  ASSERT_OK_AND_ASSIGN(auto world, GeneratedWorld::Load(TinyDataset(), m));
  std::multiset<uint64_t> streamed;
  size_t first_worker = 0;
  for (int w = 0; w < 2; ++w) {
    GeneratorSource<CandidateExample> source(world, w, 2, /*epochs=*/2);
    CandidateExample e;
    size_t n = 0;
    while (true) {
      ASSERT_OK_AND_ASSIGN(bool more, source.Next(&e));
      if (!more) break;
      if (source.epoch() == 0) streamed.insert(e.example_id());
      ++n;
    }
    EXPECT_EQ(source.epoch(), 2);
    if (w == 0) first_worker = n;
  }
  EXPECT_EQ(streamed, std::multiset<uint64_t>(files.begin(), files.end()));
  EXPECT_GT(first_worker, 0u);

  // Ranking examples too.
  const auto rfiles = ShardPaths(TinyDataset(), m.ranking_train());
  std::multiset<uint64_t> want, got;
  {
    auto stream = ExampleStream<RankingExample>::Open(rfiles, 0, 1, 1);
    ASSERT_OK(stream.status());
    RankingExample r;
    while (true) {
      ASSERT_OK_AND_ASSIGN(bool more, (*stream)->Next(&r));
      if (!more) break;
      want.insert(r.example_id());
    }
  }
  GeneratorSource<RankingExample> rsource(world, 0, 1, 1);
  RankingExample r;
  while (true) {
    ASSERT_OK_AND_ASSIGN(bool more, rsource.Next(&r));
    if (!more) break;
    got.insert(r.example_id());
  }
  EXPECT_EQ(got, want);
}

// Reads up to n example ids.
template <typename Example>
std::vector<uint64_t> Take(ExampleSource<Example>* source, size_t n) {
  std::vector<uint64_t> ids;
  Example e;
  while (ids.size() < n) {
    auto more = source->Next(&e);
    EXPECT_OK(more.status());
    if (!more.ok() || !*more) break;
    ids.push_back(e.example_id());
  }
  return ids;
}

// A source put at another's position goes on with exactly the examples the
// other would have returned, for every kind of source and across epochs.
TEST(SourcePositionTest, SeekContinuesExactlyWhereThePositionWasTaken) {
  ASSERT_OK_AND_ASSIGN(DatasetManifest m, ReadManifest(TinyDataset()));
  const auto files = ShardPaths(TinyDataset(), m.candidate_train());
  ASSERT_OK_AND_ASSIGN(auto world, GeneratedWorld::Load(TinyDataset(), m));
  std::vector<CandidateExample> memory(50);
  for (size_t i = 0; i < memory.size(); ++i) memory[i].set_example_id(1000 + i);
  using Factory = std::function<std::unique_ptr<ExampleSource<CandidateExample>>()>;
  const std::vector<std::pair<std::string, Factory>> kinds = {
      {"files by file",
       [&] { return std::move(ExampleStream<CandidateExample>::Open(files, 1, 2, 3).value()); }},
      {"files by record",
       [&] { return std::move(ExampleStream<CandidateExample>::Open(files, 3, 5, 3).value()); }},
      {"generator",
       [&] { return std::make_unique<GeneratorSource<CandidateExample>>(world, 1, 3, 3); }},
      {"memory", [&] { return std::make_unique<MemoryExamples<CandidateExample>>(&memory, 1, 4); }},
  };
  for (const auto& [name, make] : kinds) {
    SCOPED_TRACE(name);
    auto whole = make();
    const std::vector<uint64_t> all = Take(whole.get(), 100000);
    ASSERT_GT(all.size(), 40u);
    for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, all.size() / 2, all.size() - 1}) {
      auto a = make();
      const std::vector<uint64_t> head = Take(a.get(), cut);
      const SourcePosition at = a->Position();
      auto b = make();
      ASSERT_OK(b->Seek(at));
      EXPECT_EQ(b->epoch(), a->epoch());
      std::vector<uint64_t> joined = head;
      const std::vector<uint64_t> tail = Take(b.get(), all.size() - cut);
      joined.insert(joined.end(), tail.begin(), tail.end());
      EXPECT_EQ(joined, all) << "cut at " << cut;
    }
  }
  // Positions of another slice are refused.
  GeneratorSource<CandidateExample> g(world, 0, 3, 1);
  SourcePosition p;
  p.set_next_user(1);
  EXPECT_THAT(g.Seek(p), StatusIs(absl::StatusCode::kInvalidArgument, "not one of worker 0 of 3"));
  auto stream = ExampleStream<CandidateExample>::Open(files, 0, 1, 1).value();
  p.set_shard(9);
  EXPECT_THAT(stream->Seek(p), StatusIs(absl::StatusCode::kInvalidArgument, "outside"));
}

TEST(GeneratorSourceTest, ADatasetWithoutTruthIsAClearError) {
  testing::ScratchDir dir;
  DatasetManifest m;  // e.g. from vrec convert: no truth.json
  auto world = GeneratedWorld::Load(dir.path(), m);
  ASSERT_FALSE(world.ok());
  EXPECT_EQ(world.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(world.status().message(), ::testing::HasSubstr("--stream"));
}

TEST(ExampleStreamTest, BadWorkerIndexIsAnError) {
  EXPECT_FALSE(ExampleStream<CandidateExample>::Open({"x"}, 2, 2, 1).ok());
  EXPECT_FALSE(ExampleStream<CandidateExample>::Open({}, 0, 1, 1).ok());
}

}  // namespace
}  // namespace vrec
