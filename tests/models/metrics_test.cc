#include "models/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "common/random.h"
#include "testutil/testutil.h"

namespace vrec::models {
namespace {

using ::vrec::testing::TestSeed;
using ExcludeLists = std::vector<std::vector<int64_t>>;

// How test embeddings are drawn. The first two are exactly representable in
// float through every product and sum, so the evaluator must match the
// double-precision reference exactly whatever its GEMM's summation order.
enum class Values {
  kSmallIntegers,  // {-2, ..., 2}: many exact ties
  kDyadic,         // multiples of 1/64 in [-2, 2]: few ties
  kGaussian,       // N(0, 1): rounding differs from the reference
};

float Draw(Values kind, Rng* rng) {
  switch (kind) {
    case Values::kSmallIntegers:
      return static_cast<float>(static_cast<int>(rng->UniformInt(5)) - 2);
    case Values::kDyadic:
      return static_cast<float>(static_cast<int>(rng->UniformInt(257)) - 128) / 64.0f;
    case Values::kGaussian:
      return static_cast<float>(rng->Normal());
  }
  return 0;
}

struct Scenario {
  std::vector<int64_t> ids;
  RowMatrix<float> corpus;  // n x (d+1)
  RowMatrix<float> users;   // b x d
  std::vector<int64_t> labels;
  ExcludeLists exclude;
};

// Shuffled non-contiguous ids, some duplicated corpus rows (exact ties), ~15%
// of labels missing from the corpus, and exclusion lists that mix corpus ids,
// repeats, missing ids and sometimes the label itself.
Scenario MakeScenario(uint64_t seed, int n, int d, int b, Values kind) {
  Rng rng(seed);
  Scenario s;
  for (int i = 0; i < n; ++i) s.ids.push_back(3 * i + 5);
  std::shuffle(s.ids.begin(), s.ids.end(), rng);
  s.corpus.resize(n, d + 1);
  for (int i = 0; i < n; ++i) {
    if (i > 0 && rng.Bernoulli(0.1)) {
      s.corpus.row(i) = s.corpus.row(static_cast<int>(rng.UniformInt(i)));
      continue;
    }
    for (int k = 0; k <= d; ++k) s.corpus(i, k) = Draw(kind, &rng);
  }
  s.users.resize(b, d);
  for (int j = 0; j < b; ++j) {
    for (int k = 0; k < d; ++k) s.users(j, k) = Draw(kind, &rng);
  }
  const auto corpus_id = [&] { return s.ids[rng.UniformInt(n)]; };
  const auto missing_id = [&] { return 3 * static_cast<int64_t>(rng.UniformInt(n)) + 6; };
  for (int j = 0; j < b; ++j) {
    const int64_t label = rng.Bernoulli(0.15) ? missing_id() : corpus_id();
    s.labels.push_back(label);
    std::vector<int64_t> ex;
    const int size = static_cast<int>(rng.UniformInt(9));
    for (int e = 0; e < size; ++e) ex.push_back(rng.Bernoulli(0.2) ? missing_id() : corpus_id());
    if (!ex.empty() && rng.Bernoulli(0.5)) ex.push_back(ex.front());  // a repeat
    if (rng.Bernoulli(0.3)) ex.push_back(label);
    s.exclude.push_back(std::move(ex));
  }
  return s;
}

// The definition, in plain loops and double precision.
double ReferenceRank(const Scenario& s, int j, const std::vector<int64_t>* exclude) {
  const int64_t n = s.corpus.rows();
  const int64_t d = s.users.cols();
  const auto score = [&](int64_t v) {
    double sum = s.corpus(v, d);
    for (int64_t k = 0; k < d; ++k) {
      sum += static_cast<double>(s.corpus(v, k)) * static_cast<double>(s.users(j, k));
    }
    return sum;
  };
  int64_t label_row = -1;
  for (int64_t v = 0; v < n; ++v) {
    if (s.ids[v] == s.labels[j]) label_row = v;
  }
  if (label_row < 0) return kMissingRank;
  std::set<int64_t> excluded;
  if (exclude != nullptr) excluded.insert(exclude->begin(), exclude->end());
  const double label_score = score(label_row);
  double rank = 1;
  for (int64_t v = 0; v < n; ++v) {
    if (v == label_row || excluded.count(s.ids[v]) > 0) continue;
    const double sv = score(v);
    if (sv > label_score) rank += 1;
    if (sv == label_score) rank += 0.5;
  }
  return rank;
}

std::vector<double> ReferenceRanks(const Scenario& s, bool use_exclude) {
  std::vector<double> ranks;
  for (int j = 0; j < static_cast<int>(s.labels.size()); ++j) {
    ranks.push_back(ReferenceRank(s, j, use_exclude ? &s.exclude[j] : nullptr));
  }
  return ranks;
}

RetrievalMetrics ReferenceMetrics(const std::vector<double>& ranks) {
  RetrievalMetrics m;
  m.examples = static_cast<int64_t>(ranks.size());
  for (size_t i = 0; i < kRecallKs.size(); ++i) {
    int hits = 0;
    for (double r : ranks) hits += r <= kRecallKs[i];
    m.recall_at[i] = static_cast<double>(hits) / static_cast<double>(ranks.size());
  }
  double sum = 0;
  for (double r : ranks) {
    if (std::isinf(r)) {
      ++m.missing_labels;
    } else {
      sum += 1 / r;
    }
  }
  m.map = sum / static_cast<double>(ranks.size());
  return m;
}

void ExpectMetricsNear(const RetrievalMetrics& got, const RetrievalMetrics& want) {
  EXPECT_EQ(got.examples, want.examples);
  EXPECT_EQ(got.missing_labels, want.missing_labels);
  for (size_t i = 0; i < kRecallKs.size(); ++i) {
    EXPECT_NEAR(got.recall_at[i], want.recall_at[i], 1e-12) << "recall@" << kRecallKs[i];
  }
  EXPECT_NEAR(got.map, want.map, 1e-12);
}

StatusOr<RetrievalEvaluator> MakeEvaluator(const Scenario& s, int64_t block_rows,
                                           int64_t user_block) {
  RetrievalEvaluator::Options options;
  options.block_rows = block_rows;
  options.user_block = user_block;
  return RetrievalEvaluator::Create(s.ids, s.corpus, options);
}

// Splits rows [begin, end) of a scenario's batch off as its own batch.
Scenario Slice(const Scenario& s, int begin, int end) {
  Scenario part;
  part.users = s.users.middleRows(begin, end - begin);
  part.labels.assign(s.labels.begin() + begin, s.labels.begin() + end);
  part.exclude.assign(s.exclude.begin() + begin, s.exclude.begin() + end);
  return part;
}

TEST(RetrievalEvaluatorTest, MatchesBruteForceForEveryBlockSize) {
  const uint64_t seed = TestSeed(20160915);
  for (Values kind : {Values::kSmallIntegers, Values::kDyadic}) {
    const Scenario s = MakeScenario(seed, /*n=*/150, /*d=*/5, /*b=*/40, kind);
    for (bool use_exclude : {false, true}) {
      const std::vector<double> want = ReferenceRanks(s, use_exclude);
      const ExcludeLists* exclude = use_exclude ? &s.exclude : nullptr;
      for (int64_t block_rows : {1, 3, 16, 97, 150, 5000}) {
        for (int64_t user_block : {1, 4, 1000}) {
          SCOPED_TRACE(::testing::Message()
                       << "values " << static_cast<int>(kind) << " exclude " << use_exclude
                       << " block_rows " << block_rows << " user_block " << user_block);
          ASSERT_OK_AND_ASSIGN(auto evaluator, MakeEvaluator(s, block_rows, user_block));
          std::vector<double> got;
          ASSERT_OK(evaluator.Ranks(s.users, s.labels, exclude, &got));
          EXPECT_EQ(got, want);
          ASSERT_OK(evaluator.Add(s.users, s.labels, exclude));
          ExpectMetricsNear(evaluator.Metrics(), ReferenceMetrics(want));
        }
      }
    }
  }
}

TEST(RetrievalEvaluatorTest, TiesAndMissesAreExercised) {
  // Guards the scenario above against silently testing nothing.
  const Scenario s = MakeScenario(TestSeed(20160915), 150, 5, 40, Values::kSmallIntegers);
  const std::vector<double> ranks = ReferenceRanks(s, true);
  int half = 0, missing = 0;
  for (double r : ranks) {
    if (std::isinf(r)) {
      ++missing;
    } else if (r != std::floor(r)) {
      ++half;
    }
  }
  EXPECT_GT(half, 0);
  EXPECT_GT(missing, 0);
  EXPECT_LT(missing, static_cast<int>(ranks.size()));
}

// Competitors of example j (not excluded, with a row unequal to the label's)
// whose exact score is within `eps` of the label's: the only ones float
// rounding may misorder.
int NearTies(const Scenario& s, int j, double eps) {
  const int64_t d = s.users.cols();
  const auto score = [&](int64_t v) {
    double sum = s.corpus(v, d);
    for (int64_t k = 0; k < d; ++k) {
      sum += static_cast<double>(s.corpus(v, k)) * static_cast<double>(s.users(j, k));
    }
    return sum;
  };
  const auto label = std::find(s.ids.begin(), s.ids.end(), s.labels[j]);
  if (label == s.ids.end()) return 0;
  const int64_t label_row = label - s.ids.begin();
  const std::set<int64_t> excluded(s.exclude[j].begin(), s.exclude[j].end());
  int near = 0;
  for (int64_t v = 0; v < s.corpus.rows(); ++v) {
    if (excluded.count(s.ids[v]) > 0 || s.corpus.row(v) == s.corpus.row(label_row)) continue;
    near += std::abs(score(v) - score(label_row)) <= eps;
  }
  return near;
}

TEST(RetrievalEvaluatorTest, GaussianDataMatchesUpToRounding) {
  // With inexact sums only near-ties may flip, each moving the rank by at
  // most 1. Copies of the label's row (10% of rows are copies) still tie.
  const Scenario s = MakeScenario(TestSeed(7), 300, 16, 60, Values::kGaussian);
  const std::vector<double> want = ReferenceRanks(s, true);
  ASSERT_OK_AND_ASSIGN(auto evaluator, MakeEvaluator(s, 64, 16));
  EXPECT_LT(evaluator.distinct_rows(), evaluator.size());
  std::vector<double> got;
  ASSERT_OK(evaluator.Ranks(s.users, s.labels, &s.exclude, &got));
  ASSERT_EQ(got.size(), want.size());
  for (int j = 0; j < static_cast<int>(got.size()); ++j) {
    if (std::isinf(want[j])) {
      EXPECT_EQ(got[j], kMissingRank) << "example " << j;
    } else {
      EXPECT_LE(std::abs(got[j] - want[j]), NearTies(s, j, 1e-4)) << "example " << j;
    }
  }
}

TEST(RetrievalEvaluatorTest, EqualRowsTieExactlyAcrossBlocks) {
  // Copies of one Gaussian row spread over blocks and GEMM positions, where
  // float rounding alone could order them arbitrarily: they must all tie
  // with a label that has that row. The reference (double, row by row) ties
  // them too, so ranks agree up to near-ties between different rows.
  Rng rng(TestSeed(13));
  const int n = 500, d = 40;
  Scenario s;
  s.corpus.resize(n, d + 1);
  int twins = 0;  // rows equal to row 0, other than row 0
  for (int i = 0; i < n; ++i) {
    s.ids.push_back(1000 + i);
    if (i % 7 == 3) {
      s.corpus.row(i) = s.corpus.row(0);
      ++twins;
      continue;
    }
    for (int k = 0; k <= d; ++k) s.corpus(i, k) = static_cast<float>(rng.Normal());
  }
  s.corpus.row(1).head(d) = s.corpus.row(2).head(d);  // rows 1 and 2 equal up to
  s.corpus(1, d) = -0.0f;                             // the sign of a zero
  s.corpus(2, d) = 0.0f;
  s.users.resize(8, d);
  for (int j = 0; j < 8; ++j) {
    for (int k = 0; k < d; ++k) s.users(j, k) = static_cast<float>(rng.Normal());
    s.labels.push_back(s.ids[0]);
    // Even users exclude a twin (twice), a non-twin and their label.
    s.exclude.push_back(j % 2 ? std::vector<int64_t>{}
                              : std::vector<int64_t>{s.ids[3], s.ids[4], s.ids[3], s.ids[0]});
  }
  s.labels[7] = s.ids[1];
  s.exclude[7] = {s.ids[2]};  // the label's only twin
  for (int64_t block_rows : {7, 64, 5000}) {
    SCOPED_TRACE(::testing::Message() << "block_rows " << block_rows);
    ASSERT_OK_AND_ASSIGN(auto evaluator, MakeEvaluator(s, block_rows, 3));
    EXPECT_EQ(evaluator.distinct_rows(), n - twins - 1);
    std::vector<double> got;
    ASSERT_OK(evaluator.Ranks(s.users, s.labels, &s.exclude, &got));
    for (int j = 0; j < 8; ++j) {
      const int ties = j == 7 ? 0 : twins - (j % 2 ? 0 : 1);
      EXPECT_EQ(got[j] - std::floor(got[j]), (ties % 2) * 0.5) << "example " << j;
      EXPECT_LE(std::abs(got[j] - ReferenceRank(s, j, &s.exclude[j])), NearTies(s, j, 1e-4))
          << "example " << j;
    }
  }
}

TEST(RetrievalEvaluatorTest, HandWorkedExample) {
  // d = 1; rows [w | b]. For u = 1 the scores are 1, 2, 2, 1, -1; for u = -1
  // they are -1, -2, -2, 1, 1.
  RowMatrix<float> corpus(5, 2);
  corpus << 1, 0,  //
      2, 0,        //
      2, 0,        //
      0, 1,        //
      -1, 0;
  ASSERT_OK_AND_ASSIGN(auto evaluator,
                       RetrievalEvaluator::Create({10, 20, 30, 40, 50}, std::move(corpus)));
  EXPECT_EQ(evaluator.size(), 5);
  EXPECT_EQ(evaluator.dim(), 1);
  RowMatrix<float> users(6, 1);
  users << 1, 1, 1, 1, 1, -1;
  const std::vector<int64_t> labels = {10, 20, 20, 77, 50, 50};
  const ExcludeLists exclude = {{}, {30, 20, 99}, {}, {10}, {}, {}};
  std::vector<double> ranks;
  ASSERT_OK(evaluator.Ranks(users, labels, &exclude, &ranks));
  // 10: two above (20, 30), one tie (40). 20 excluding 30: alone on top.
  // 20: tied with 30. 77: not in the corpus. 50 (u = 1): last of five.
  // 50 (u = -1): tied with 40 on top.
  EXPECT_EQ(ranks, (std::vector<double>{3.5, 1, 1.5, kMissingRank, 5, 1.5}));

  ASSERT_OK(evaluator.Add(users, labels, &exclude));
  const RetrievalMetrics m = evaluator.Metrics();
  EXPECT_EQ(m.examples, 6);
  EXPECT_EQ(m.missing_labels, 1);
  EXPECT_DOUBLE_EQ(m.recall_at[0], 1.0 / 6);  // @1
  EXPECT_DOUBLE_EQ(m.recall_at[1], 5.0 / 6);  // @10
  const double map = (1 / 3.5 + 1 + 1 / 1.5 + 0 + 1 / 5.0 + 1 / 1.5) / 6;
  EXPECT_DOUBLE_EQ(m.map, map);

  const nlohmann::json j = m.ToJson();
  EXPECT_EQ(j.size(), 7u);
  EXPECT_DOUBLE_EQ(j.at("recall@1").get<double>(), 1.0 / 6);
  EXPECT_DOUBLE_EQ(j.at("recall@10").get<double>(), 5.0 / 6);
  EXPECT_DOUBLE_EQ(j.at("recall@50").get<double>(), 5.0 / 6);
  EXPECT_DOUBLE_EQ(j.at("recall@100").get<double>(), 5.0 / 6);
  EXPECT_DOUBLE_EQ(j.at("map").get<double>(), map);
  EXPECT_EQ(j.at("examples").get<int64_t>(), 6);
  EXPECT_EQ(j.at("missing_labels").get<int64_t>(), 1);
}

TEST(RetrievalEvaluatorTest, NoExamplesGiveZeros) {
  ASSERT_OK_AND_ASSIGN(auto evaluator,
                       RetrievalEvaluator::Create({1}, RowMatrix<float>::Zero(1, 3)));
  ASSERT_OK(evaluator.Add(RowMatrix<float>(0, 2), {}, nullptr));
  const RetrievalMetrics m = evaluator.Metrics();
  EXPECT_EQ(m.examples, 0);
  EXPECT_EQ(m.map, 0);
  for (double r : m.recall_at) EXPECT_EQ(r, 0);
  // A single-item corpus: the label has no competitor.
  std::vector<double> ranks;
  ASSERT_OK(evaluator.Ranks(RowMatrix<float>::Ones(2, 2), {1, 2}, nullptr, &ranks));
  EXPECT_EQ(ranks, (std::vector<double>{1, kMissingRank}));
}

TEST(RetrievalEvaluatorTest, MergeOfHalvesEqualsOnePass) {
  const Scenario s = MakeScenario(TestSeed(11), 120, 4, 50, Values::kSmallIntegers);
  const Scenario first = Slice(s, 0, 23), second = Slice(s, 23, 50);

  ASSERT_OK_AND_ASSIGN(auto whole, MakeEvaluator(s, 32, 8));
  ASSERT_OK(whole.Add(s.users, s.labels, &s.exclude));
  const RetrievalCounts& want = whole.counts();

  // Two evaluators (two workers), merged.
  ASSERT_OK_AND_ASSIGN(auto a, MakeEvaluator(s, 32, 8));
  ASSERT_OK_AND_ASSIGN(auto b, MakeEvaluator(s, 7, 3));
  ASSERT_OK(a.Add(first.users, first.labels, &first.exclude));
  ASSERT_OK(b.Add(second.users, second.labels, &second.exclude));
  a.Merge(b);
  EXPECT_EQ(a.counts().examples, want.examples);
  EXPECT_EQ(a.counts().missing_labels, want.missing_labels);
  EXPECT_EQ(a.counts().hits, want.hits);
  EXPECT_NEAR(a.counts().sum_reciprocal_rank, want.sum_reciprocal_rank, 1e-9);
  ExpectMetricsNear(a.Metrics(), whole.Metrics());

  // Two threads sharing one const evaluator, each with its own counts.
  ASSERT_OK_AND_ASSIGN(auto shared, MakeEvaluator(s, 32, 8));
  RetrievalCounts parts[2];
  Status status[2];
  const Scenario* halves[2] = {&first, &second};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double> ranks;
      status[t] = shared.Ranks(halves[t]->users, halves[t]->labels, &halves[t]->exclude, &ranks);
      parts[t].AddRanks(ranks);
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_OK(status[0]);
  ASSERT_OK(status[1]);
  shared.Merge(parts[0]);
  shared.Merge(parts[1]);
  ExpectMetricsNear(shared.Metrics(), whole.Metrics());
}

TEST(RetrievalEvaluatorTest, RejectsBadCorpus) {
  using absl::StatusCode;
  EXPECT_THAT(RetrievalEvaluator::Create({}, RowMatrix<float>(0, 3)),
              StatusIs(StatusCode::kInvalidArgument, "empty"));
  EXPECT_THAT(RetrievalEvaluator::Create({1, 2, 3}, RowMatrix<float>::Zero(2, 3)),
              StatusIs(StatusCode::kInvalidArgument, "2 rows but 3 ids"));
  EXPECT_THAT(RetrievalEvaluator::Create({1, 2}, RowMatrix<float>(2, 0)),
              StatusIs(StatusCode::kInvalidArgument, "no columns"));
  EXPECT_THAT(RetrievalEvaluator::Create({7, 8, 7}, RowMatrix<float>::Zero(3, 3)),
              StatusIs(StatusCode::kInvalidArgument,
                       "duplicate video id 7 in retrieval corpus rows 0 and 2"));
  RowMatrix<float> bad = RowMatrix<float>::Zero(3, 3);
  bad(1, 2) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(RetrievalEvaluator::Create({7, 8, 9}, bad),
              StatusIs(StatusCode::kInvalidArgument, "row 1 (video id 8) has a non-finite"));
  bad(1, 2) = std::numeric_limits<float>::infinity();
  EXPECT_THAT(RetrievalEvaluator::Create({7, 8, 9}, bad),
              StatusIs(StatusCode::kInvalidArgument, "non-finite"));
  RetrievalEvaluator::Options options;
  options.block_rows = 0;
  EXPECT_THAT(RetrievalEvaluator::Create({1}, RowMatrix<float>::Zero(1, 2), options),
              StatusIs(StatusCode::kInvalidArgument, "block_rows = 0"));
  options.block_rows = 1;
  options.user_block = -1;
  EXPECT_THAT(RetrievalEvaluator::Create({1}, RowMatrix<float>::Zero(1, 2), options),
              StatusIs(StatusCode::kInvalidArgument, "user_block = -1"));
}

TEST(RetrievalEvaluatorTest, RejectsBadBatchAndAddsNothing) {
  using absl::StatusCode;
  ASSERT_OK_AND_ASSIGN(auto evaluator,
                       RetrievalEvaluator::Create({1, 2, 3}, RowMatrix<float>::Ones(3, 4)));
  const RowMatrix<float> users = RowMatrix<float>::Ones(2, 3);
  EXPECT_THAT(evaluator.Add(RowMatrix<float>::Ones(2, 4), {1, 2}, nullptr),
              StatusIs(StatusCode::kInvalidArgument, "4 columns; the corpus expects d = 3"));
  EXPECT_THAT(evaluator.Add(users, {1, 2, 3}, nullptr),
              StatusIs(StatusCode::kInvalidArgument, "3 labels for 2 user vectors"));
  const ExcludeLists one_list = {{1}};
  EXPECT_THAT(evaluator.Add(users, {1, 2}, &one_list),
              StatusIs(StatusCode::kInvalidArgument, "1 exclusion lists for 2 user vectors"));
  RowMatrix<float> nan_user = users;
  nan_user(1, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(evaluator.Add(nan_user, {1, 2}, nullptr),
              StatusIs(StatusCode::kInvalidArgument, "user vector 1 (label 2) has a non-finite"));
  EXPECT_EQ(evaluator.counts().examples, 0);
}

// Brute force: every (positive, negative) pair.
double ReferenceAuc(const std::vector<double>& scores, const std::vector<uint8_t>& labels) {
  const auto key = [](double s) {
    return std::isnan(s) ? -std::numeric_limits<double>::infinity() : s;
  };
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!labels[i]) continue;
    for (size_t k = 0; k < scores.size(); ++k) {
      if (labels[k]) continue;
      pairs += 1;
      if (key(scores[i]) > key(scores[k])) wins += 1;
      if (key(scores[i]) == key(scores[k])) wins += 0.5;
    }
  }
  return pairs > 0 ? wins / pairs : 0.5;
}

TEST(AucTest, MatchesPairCountWithTies) {
  Rng rng(TestSeed(3));
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 1 + static_cast<int>(rng.UniformInt(300));
    const int levels = 1 + static_cast<int>(rng.UniformInt(10));  // few levels: many ties
    const double p_positive = rng.Uniform();
    std::vector<double> scores;
    std::vector<uint8_t> labels;
    for (int i = 0; i < n; ++i) {
      labels.push_back(rng.Bernoulli(p_positive) ? static_cast<uint8_t>(1 + rng.UniformInt(3)) : 0);
      // Positives drift up so the AUC is informative.
      scores.push_back(static_cast<double>(rng.UniformInt(levels)) + (labels.back() ? 0.5 : 0));
      if (rng.Bernoulli(0.3)) scores.back() = std::floor(scores.back());
      if (rng.Bernoulli(0.02)) scores.back() = std::numeric_limits<double>::quiet_NaN();
    }
    SCOPED_TRACE(::testing::Message() << "trial " << trial << " n " << n);
    EXPECT_NEAR(Auc(scores, labels), ReferenceAuc(scores, labels), 1e-12);
  }
}

TEST(AucTest, EdgeCases) {
  EXPECT_EQ(Auc({}, {}), 0.5);
  EXPECT_EQ(Auc({1, 2, 3}, {1, 1, 1}), 0.5);  // one class only
  EXPECT_EQ(Auc({1, 2, 3}, {0, 0, 0}), 0.5);
  EXPECT_EQ(Auc({1, 2, 3, 4}, {0, 0, 1, 1}), 1.0);
  EXPECT_EQ(Auc({1, 2, 3, 4}, {1, 1, 0, 0}), 0.0);
  EXPECT_EQ(Auc({5, 5, 5, 5}, {1, 0, 1, 0}), 0.5);  // all tied
  // 1 beats 0.5 and ties 1; 2 beats both: (1.5 + 2) / 4.
  EXPECT_EQ(Auc({1, 2, 0.5, 1}, {1, 1, 0, 0}), 3.5 / 4);
  // NaN is -infinity: below the negative.
  EXPECT_EQ(Auc({std::numeric_limits<double>::quiet_NaN(), 0}, {1, 0}), 0.0);
}

TEST(PopularityTest, HandWorkedExample) {
  const absl::flat_hash_map<int64_t, int64_t> counts = {{1, 5}, {2, 3}, {3, 3}, {9, 100}};
  const std::vector<int64_t> corpus = {1, 2, 3, 4};  // 4 has no count: 0; 9 is not in it
  const std::vector<int64_t> labels = {2, 1, 4, 8, 3};
  const ExcludeLists exclude = {{}, {}, {}, {}, {1, 3, 3, 9}};
  // 2: below 1, tied with 3 -> 2.5. 1: top. 4: last of four. 8: missing.
  // 3 without 1: tied with 2 on top -> 1.5.
  ASSERT_OK_AND_ASSIGN(const RetrievalMetrics m,
                       PopularityMetrics(counts, corpus, labels, &exclude));
  EXPECT_EQ(m.examples, 5);
  EXPECT_EQ(m.missing_labels, 1);
  EXPECT_DOUBLE_EQ(m.recall_at[0], 1.0 / 5);
  EXPECT_DOUBLE_EQ(m.recall_at[1], 4.0 / 5);
  EXPECT_DOUBLE_EQ(m.map, (1 / 2.5 + 1 + 1 / 4.0 + 0 + 1 / 1.5) / 5);
  // Without exclusions the last example is 2.5 as well.
  ASSERT_OK_AND_ASSIGN(const RetrievalMetrics plain,
                       PopularityMetrics(counts, corpus, labels, nullptr));
  EXPECT_DOUBLE_EQ(plain.map, (1 / 2.5 + 1 + 1 / 4.0 + 0 + 1 / 2.5) / 5);
}

TEST(PopularityTest, MatchesEvaluatorWithCountsAsBiases) {
  // Popularity is the retrieval model with d = 0 and b_v = count(v).
  const uint64_t seed = TestSeed(5);
  Scenario s = MakeScenario(seed, 200, 0, 80, Values::kSmallIntegers);
  Rng rng(seed + 1);
  absl::flat_hash_map<int64_t, int64_t> counts;
  for (int i = 0; i < 200; ++i) {
    const int64_t c = static_cast<int64_t>(rng.UniformInt(12));  // many ties
    if (c > 0) counts[s.ids[i]] = c;
    s.corpus(i, 0) = static_cast<float>(c);
  }
  counts[-42] = 7;  // not in the corpus: ignored
  ASSERT_OK_AND_ASSIGN(auto evaluator, MakeEvaluator(s, 64, 16));
  ASSERT_OK(evaluator.Add(s.users, s.labels, &s.exclude));
  ASSERT_OK_AND_ASSIGN(const RetrievalCounts got,
                       PopularityCounts(counts, s.ids, s.labels, &s.exclude));
  EXPECT_EQ(got.examples, evaluator.counts().examples);
  EXPECT_EQ(got.missing_labels, evaluator.counts().missing_labels);
  EXPECT_EQ(got.hits, evaluator.counts().hits);
  EXPECT_DOUBLE_EQ(got.sum_reciprocal_rank, evaluator.counts().sum_reciprocal_rank);
}

TEST(PopularityTest, RejectsBadInput) {
  using absl::StatusCode;
  const absl::flat_hash_map<int64_t, int64_t> counts = {{1, 2}};
  EXPECT_THAT(PopularityMetrics(counts, {}, {1}, nullptr),
              StatusIs(StatusCode::kInvalidArgument, "empty"));
  EXPECT_THAT(PopularityMetrics(counts, {1, 2, 1}, {1}, nullptr),
              StatusIs(StatusCode::kInvalidArgument, "duplicate video id 1"));
  EXPECT_THAT(
      PopularityMetrics({{3, -1}}, {1, 2}, {1}, nullptr),
      StatusIs(StatusCode::kInvalidArgument, "negative popularity count -1 for video id 3"));
  const ExcludeLists two = {{}, {}};
  EXPECT_THAT(PopularityMetrics(counts, {1, 2}, {1}, &two),
              StatusIs(StatusCode::kInvalidArgument, "2 exclusion lists for 1 labels"));
}

}  // namespace
}  // namespace vrec::models
