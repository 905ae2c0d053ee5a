#include "model/batch_builder.h"

#include "model/layers.h"

#include <map>
#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::model {
namespace {

// Against a std::map reference: rows in order of first appearance, the same
// row for a repeated id, across growth and many Clear()s (the table keeps
// its arrays; stale slots must not answer).
TEST(IdDeduplicatorTest, RowsInOrderOfFirstAppearanceAcrossClears) {
  const uint64_t seed = testing::TestSeed(3);
  Rng rng(seed, 0);
  IdDeduplicator d;
  for (int round = 0; round < 50; ++round) {
    d.Clear();
    std::map<int64_t, int32_t> want;
    std::vector<int64_t> order;
    const int n = static_cast<int>(rng.UniformInt(round % 7 == 0 ? 20000 : 300));
    for (int i = 0; i < n; ++i) {
      // Small ranges repeat ids; a few negative and huge ids too.
      int64_t id = static_cast<int64_t>(rng.UniformInt(1 + n / 2));
      if (i % 97 == 0) id = -id - 1;
      if (i % 89 == 0) id += int64_t{1} << 60;
      auto [it, inserted] = want.emplace(id, static_cast<int32_t>(order.size()));
      if (inserted) order.push_back(id);
      ASSERT_EQ(d.Add(id), it->second) << "round " << round << " id " << id;
    }
    ASSERT_EQ(d.ids(), order) << "round " << round;
  }
}

TEST(IdDeduplicatorTest, AddListAppendsOneListOfRows) {
  IdDeduplicator d;
  IndexLists lists;
  d.AddList({7, 9, 7}, &lists);
  d.AddList({9, 4}, &lists);
  EXPECT_EQ(lists.indices, (std::vector<int32_t>{0, 1, 0, 1, 2}));
  EXPECT_EQ(lists.offsets, (std::vector<int32_t>{0, 3, 5}));
  EXPECT_EQ(d.ids(), (std::vector<int64_t>{7, 9, 4}));
}

TEST(BuildOutputCandidatesTest, LabelsThenNegativesShareRows) {
  OutputCandidates c = BuildOutputCandidates({5, 6, 5}, {6, 8, 8, 1});
  EXPECT_EQ(c.ids, (std::vector<int64_t>{5, 6, 8, 1}));
  EXPECT_EQ(c.label_rows, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_EQ(c.negative_rows, (std::vector<int32_t>{1, 2, 2, 3}));
}

// The transposed lists scatter bag gradients exactly as EmbeddingBagBackward
// does: same uses, same order, same arithmetic, bit for bit.
TEST(EmbeddingBagUsesTest, ScatteringThroughTheUsesEqualsTheBackwardPass) {
  const uint64_t seed = testing::TestSeed(4);
  Rng rng(seed, 1);
  constexpr int kRows = 30, kBatch = 40, kDim = 19;
  IndexLists lists;
  for (int i = 0; i < kBatch; ++i) {
    std::vector<int32_t> list(rng.UniformInt(12));  // some empty
    for (int32_t& r : list) r = static_cast<int32_t>(rng.UniformInt(kRows));
    lists.Append(list.begin(), list.end());
  }
  RowMatrix<float> grad_out(kBatch, kDim);
  for (int i = 0; i < kBatch; ++i) {
    for (int d = 0; d < kDim; ++d) grad_out(i, d) = static_cast<float>(rng.Uniform() - 0.5);
  }
  RowMatrix<float> want = RowMatrix<float>::Zero(kRows, kDim);
  EmbeddingBagBackward(grad_out, lists, &want);
  std::vector<uint32_t> offsets, examples;
  std::vector<float> weights;
  EmbeddingBagUses(lists, kRows, &offsets, &examples, &weights);
  ASSERT_EQ(offsets.size(), kRows + 1u);
  ASSERT_EQ(examples.size(), lists.indices.size());
  for (int r = 0; r < kRows; ++r) {
    std::vector<float> g(kDim, 0.f);
    for (uint32_t u = offsets[r]; u < offsets[r + 1]; ++u) {
      AddScaled(g.data(), weights[u], grad_out.row(examples[u]).data(), kDim);
    }
    for (int d = 0; d < kDim; ++d) ASSERT_EQ(g[d], want(r, d)) << "row " << r << " element " << d;
  }
}

}  // namespace
}  // namespace vrec::model
