// Offline evaluation metrics: exact top-K retrieval quality of a candidate
// generator, ROC AUC, and the "most popular videos" baseline.
//
// Retrieval. The candidate model of Covington et al. (2016) scores video v for
// a user vector u (length d) as w_v . u + b_v, where [w_v | b_v] is v's row of
// the output (softmax) layer. For each example (u, label) the evaluator ranks
// the label against the whole corpus, exactly:
//
//   rank = 1 + #{competitors scoring strictly higher than the label}
//            + 0.5 * #{competitors scoring exactly the same}
//
// Competitors are all corpus items except the label itself and the ids the
// example excludes (e.g. videos the user has already watched). Counting ties
// half makes the rank the expected rank under a random tie-break, so a model
// that scores everything equal gets the same figure as a random one instead
// of a perfect one. The rank is therefore a multiple of 0.5. An example whose
// label is not in the corpus is a miss: it counts as an example, is never in
// the top K and adds 0 to MAP (its rank is reported as kMissingRank).
//
//   recall@K = share of examples with rank <= K, K in kRecallKs
//   MAP      = mean of 1 / rank. Each example has exactly one relevant item,
//              so its average precision is the precision at the label's
//              rank, 1 / rank (the mean reciprocal rank).
//
// Items whose [w | b] rows are equal (say, videos never trained since their
// common initial value) are indistinguishable to the model and always tie
// exactly: the evaluator keeps each distinct row once with its multiplicity.
// Scores are float: one GEMM per (block of distinct rows, block of users),
// then a vectorisable pass counting the scores above and equal to the
// label's, so memory stays at block_rows * user_block floats whatever the
// corpus size. Rounding depends on a row's position inside the GEMM, so two
// different rows whose exact scores tie can come out an ulp apart (moving a
// rank by 0.5 each); with exactly representable inputs, as in the tests,
// every rank is exact.
//
// Thread safety: RetrievalCounts and RetrievalMetrics are value types.
// RetrievalEvaluator's corpus is immutable after Create: const methods (Ranks,
// Metrics, counts) may run concurrently; Add and Merge need external
// synchronisation. To evaluate on several threads, give each thread its own
// RetrievalCounts fed from Ranks(), then Merge them (Merge also combines the
// counts of several workers).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "model/tensor.h"
#include "nlohmann/json.hpp"
#include "vrec/status.h"

namespace vrec::models {

using model::RowMatrix;

// The cut-offs K of recall@K, in the order of RetrievalMetrics::recall_at.
inline constexpr std::array<int, 4> kRecallKs = {1, 10, 50, 100};

// The rank Ranks() reports for a label that is not in the corpus.
inline constexpr double kMissingRank = std::numeric_limits<double>::infinity();

struct RetrievalMetrics {
  int64_t examples = 0;
  int64_t missing_labels = 0;  // examples whose label is not in the corpus
  // recall_at[i] is recall@kRecallKs[i], in [0, 1].
  std::array<double, kRecallKs.size()> recall_at{};
  double map = 0;  // mean of 1 / rank, in [0, 1]

  // {"recall@1", "recall@10", "recall@50", "recall@100", "map", "examples",
  //  "missing_labels"}
  nlohmann::json ToJson() const;
};

// Mergeable sums behind RetrievalMetrics. Merge is order-independent up to
// floating-point rounding of sum_reciprocal_rank.
struct RetrievalCounts {
  int64_t examples = 0;
  int64_t missing_labels = 0;
  std::array<int64_t, kRecallKs.size()> hits{};  // examples with rank <= K
  double sum_reciprocal_rank = 0;

  // Adds one example of the given rank (>= 1, or kMissingRank for a miss).
  void AddRank(double rank);
  void AddRanks(absl::Span<const double> ranks) {
    for (double r : ranks) AddRank(r);
  }
  void Merge(const RetrievalCounts& other);
  // All zero when there are no examples.
  RetrievalMetrics Metrics() const;
};

class RetrievalEvaluator {
 public:
  struct Options {
    // Distinct corpus rows and users per GEMM. The score buffer holds
    // block_rows * user_block floats (16 MiB by default). Both must be >= 1.
    int64_t block_rows = 16384;
    int64_t user_block = 256;
  };

  // `ids` are the n distinct video ids of the corpus; `corpus` is n x (d+1),
  // row i = [w | b] of ids[i] (taken over: equal rows are merged in place,
  // -0 becomes +0). kInvalidArgument for an empty corpus, a row count other
  // than ids.size(), no columns, a duplicate id or a non-finite value (each
  // names the id and row), or bad options.
  static StatusOr<RetrievalEvaluator> Create(absl::Span<const int64_t> ids, RowMatrix<float> corpus,
                                             Options options);
  static StatusOr<RetrievalEvaluator> Create(absl::Span<const int64_t> ids,
                                             RowMatrix<float> corpus) {
    return Create(ids, std::move(corpus), Options());
  }

  // Holds the whole corpus: move, don't copy.
  RetrievalEvaluator(RetrievalEvaluator&&) = default;
  RetrievalEvaluator& operator=(RetrievalEvaluator&&) = default;
  RetrievalEvaluator(const RetrievalEvaluator&) = delete;
  RetrievalEvaluator& operator=(const RetrievalEvaluator&) = delete;

  int64_t size() const { return num_items_; }             // n
  int64_t distinct_rows() const { return rows_.rows(); }  // <= n
  int64_t dim() const { return rows_.cols() - 1; }        // d

  // Replaces *ranks with the rank of labels[j] for user row j of `users`
  // (b x d), excluding the ids in (*exclude)[j] from its competitors when
  // `exclude` is not null (ids absent from the corpus, repeats and the label
  // itself are ignored there). kInvalidArgument, leaving *ranks unspecified,
  // if users.cols() != dim(), labels or *exclude do not have one entry per
  // user, or a user vector is not finite.
  Status Ranks(const RowMatrix<float>& users, absl::Span<const int64_t> labels,
               const std::vector<std::vector<int64_t>>* exclude, std::vector<double>* ranks) const;

  // Ranks() and adds the result to this evaluator's counts; on error adds
  // nothing.
  Status Add(const RowMatrix<float>& users, absl::Span<const int64_t> labels,
             const std::vector<std::vector<int64_t>>* exclude);

  // Adds partial results: counts from other threads' Ranks(), or another
  // evaluator's (another worker's, over the same corpus).
  void Merge(const RetrievalCounts& other) { counts_.Merge(other); }
  void Merge(const RetrievalEvaluator& other) { counts_.Merge(other.counts_); }

  const RetrievalCounts& counts() const { return counts_; }
  RetrievalMetrics Metrics() const { return counts_.Metrics(); }

 private:
  RetrievalEvaluator() = default;

  // Constant after construction.
  int64_t num_items_ = 0;
  RowMatrix<float> rows_;                         // the distinct [w | b] rows, in corpus order
  std::vector<int64_t> multiplicity_;             // items sharing each distinct row (>= 1)
  absl::flat_hash_map<int64_t, int64_t> row_of_;  // video id -> distinct row
  Options options_;

  RetrievalCounts counts_;
};

// ROC AUC of `scores` for binary `labels` (non-zero = positive): the
// probability that a random positive scores above a random negative, ties
// counting half. O(n log n). Returns 0.5 when there is no positive or no
// negative (the AUC is undefined; 0.5 is what a constant scorer gets). A NaN
// score counts as -infinity. REQUIRES: scores.size() == labels.size().
double Auc(absl::Span<const double> scores, absl::Span<const uint8_t> labels);

// The "recommend the most popular videos" baseline: the same counts as
// RetrievalEvaluator for a ranker that scores every user's candidates by
// counts[id] (0 for ids without a count), with the same rank definition
// (ties half: the expected rank when equally popular videos are ordered at
// random). Labels missing from `corpus_ids` are misses; ids in `counts` but
// not in the corpus are ignored. kInvalidArgument for an empty corpus, a
// duplicate corpus id, a negative count, or an `exclude` without one list
// per label.
StatusOr<RetrievalCounts> PopularityCounts(const absl::flat_hash_map<int64_t, int64_t>& counts,
                                           absl::Span<const int64_t> corpus_ids,
                                           absl::Span<const int64_t> labels,
                                           const std::vector<std::vector<int64_t>>* exclude);

// PopularityCounts(...).Metrics().
StatusOr<RetrievalMetrics> PopularityMetrics(const absl::flat_hash_map<int64_t, int64_t>& counts,
                                             absl::Span<const int64_t> corpus_ids,
                                             absl::Span<const int64_t> labels,
                                             const std::vector<std::vector<int64_t>>* exclude);

}  // namespace vrec::models
