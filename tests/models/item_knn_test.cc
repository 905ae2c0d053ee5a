// The item-kNN baseline against a case computed by hand.
#include "models/item_knn.h"

#include <cmath>

#include "testutil/testutil.h"

namespace vrec::models {
namespace {

CandidateExample Watch(uint64_t user, uint64_t label, std::vector<uint64_t> history) {
  CandidateExample e;
  e.set_user_id(user);
  e.set_label_video(label);
  for (uint64_t h : history) e.add_watch_history(h);
  return e;
}

// Videos A..E = 1..5. User 1 watched {A, B}, user 2 {A, C}, user 3 {B, C, D};
// nobody E. So U_A = {1, 2}, U_B = {1, 3}, U_C = {2, 3}, U_D = {3}.
std::vector<CandidateExample> Training() {
  return {Watch(1, 1, {}), Watch(1, 2, {1}), Watch(2, 1, {}),    Watch(2, 3, {1}),
          Watch(3, 2, {}), Watch(3, 3, {2}), Watch(3, 4, {2, 3})};
}

const std::vector<int64_t> kCorpus = {1, 2, 3, 4, 5};

TEST(ItemKnnTest, ScoresAreSumsOfCosineCoOccurrence) {
  auto train = Training();
  MemoryExamples<CandidateExample> source(&train, 0, 1);
  ASSERT_OK_AND_ASSIGN(ItemKnn knn, ItemKnn::Fit(&source, kCorpus, ItemKnn::Options()));
  std::vector<double> s;
  knn.Scores({1}, &s);  // H = {A}: cos(A, j)
  EXPECT_DOUBLE_EQ(s[0], 1.0);
  EXPECT_DOUBLE_EQ(s[1], 0.5);  // |{1}| / sqrt(2 * 2)
  EXPECT_DOUBLE_EQ(s[2], 0.5);
  EXPECT_DOUBLE_EQ(s[3], 0.0);
  EXPECT_DOUBLE_EQ(s[4], 0.0);
  knn.Scores({7, 2, 3}, &s);  // H = {B, C}; 7 is not in the corpus
  EXPECT_DOUBLE_EQ(s[0], 0.5 + 0.5);
  EXPECT_DOUBLE_EQ(s[3], 2 / std::sqrt(2.0));  // D: |{3}| / sqrt(2 * 1), twice
  // Only the last `recent` videos count.
  ItemKnn::Options recent;
  recent.recent = 1;
  MemoryExamples<CandidateExample> again(&train, 0, 1);
  ASSERT_OK_AND_ASSIGN(ItemKnn last, ItemKnn::Fit(&again, kCorpus, recent));
  last.Scores({2, 1}, &s);  // H = {A}
  EXPECT_DOUBLE_EQ(s[0], 1.0);
}

TEST(ItemKnnTest, RanksAreExactWithTiesHalfAndExclusions) {
  auto train = Training();
  MemoryExamples<CandidateExample> source(&train, 0, 1);
  ASSERT_OK_AND_ASSIGN(ItemKnn knn, ItemKnn::Fit(&source, kCorpus, ItemKnn::Options()));
  // C after {A}: A above, B tied -> rank 2.5; with A excluded -> 1.5.
  // D after {B}: B (1) above D (0.707) -> rank 2. Video 99: not in the corpus.
  const std::vector<std::vector<int64_t>> histories = {{1}, {1}, {2}, {1}};
  const std::vector<int64_t> labels = {3, 3, 4, 99};
  const std::vector<std::vector<int64_t>> exclude = {{}, {1}, {}, {}};
  ASSERT_OK_AND_ASSIGN(RetrievalMetrics m, knn.Evaluate(histories, labels, &exclude));
  EXPECT_EQ(m.examples, 4);
  EXPECT_EQ(m.missing_labels, 1);
  EXPECT_DOUBLE_EQ(m.recall_at[0], 0.0);   // @1
  EXPECT_DOUBLE_EQ(m.recall_at[1], 0.75);  // @10
  EXPECT_NEAR(m.map, (1 / 2.5 + 1 / 1.5 + 1 / 2.0) / 4, 1e-12);
  EXPECT_FALSE(knn.Evaluate(histories, {3}, nullptr).ok());
}

TEST(ItemKnnTest, TooLargeIsRefusedSayingSo) {
  auto train = Training();
  MemoryExamples<CandidateExample> source(&train, 0, 1);
  ItemKnn::Options small;
  small.max_items = 4;
  EXPECT_THAT(ItemKnn::Fit(&source, kCorpus, small),
              StatusIs(absl::StatusCode::kResourceExhausted, "more than 4"));
  small.max_items = 100;
  small.max_interactions = 5;
  EXPECT_THAT(ItemKnn::Fit(&source, kCorpus, small),
              StatusIs(absl::StatusCode::kResourceExhausted, "(user, video) pairs"));
}

}  // namespace
}  // namespace vrec::models
