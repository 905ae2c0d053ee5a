#include "models/metrics.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace vrec::models {

nlohmann::json RetrievalMetrics::ToJson() const {
  nlohmann::json j;
  for (size_t i = 0; i < kRecallKs.size(); ++i) {
    j[absl::StrCat("recall@", kRecallKs[i])] = recall_at[i];
  }
  j["map"] = map;
  j["examples"] = examples;
  j["missing_labels"] = missing_labels;
  return j;
}

void RetrievalCounts::AddRank(double rank) {
  ++examples;
  if (rank == kMissingRank) {
    ++missing_labels;
    return;
  }
  for (size_t i = 0; i < kRecallKs.size(); ++i) {
    if (rank <= kRecallKs[i]) ++hits[i];
  }
  sum_reciprocal_rank += 1.0 / rank;
}

void RetrievalCounts::Merge(const RetrievalCounts& other) {
  examples += other.examples;
  missing_labels += other.missing_labels;
  for (size_t i = 0; i < hits.size(); ++i) hits[i] += other.hits[i];
  sum_reciprocal_rank += other.sum_reciprocal_rank;
}

RetrievalMetrics RetrievalCounts::Metrics() const {
  RetrievalMetrics m;
  m.examples = examples;
  m.missing_labels = missing_labels;
  if (examples == 0) return m;
  const double n = static_cast<double>(examples);
  for (size_t i = 0; i < hits.size(); ++i) m.recall_at[i] = hits[i] / n;
  m.map = sum_reciprocal_rank / n;
  return m;
}

namespace {

// Eigen's allFinite() is several times slower than a memory pass; a float is
// finite iff its exponent bits are not all ones.
bool AllFinite(const float* data, int64_t size) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < size; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, sizeof(bits));
    bad |= static_cast<uint32_t>((~bits & 0x7f800000u) == 0);
  }
  return bad == 0;
}

// Hashes and compares corpus rows by content, through pointers to their first
// float. Content equality is bytewise; Create() normalises -0 to +0 first so
// that it agrees with float equality (there is no NaN).
struct RowHash {
  int64_t cols;
  size_t operator()(const float* row) const {
    return absl::Hash<absl::string_view>()(
        absl::string_view(reinterpret_cast<const char*>(row), cols * sizeof(float)));
  }
};
struct RowEq {
  int64_t cols;
  bool operator()(const float* a, const float* b) const {
    return std::memcmp(a, b, cols * sizeof(float)) == 0;
  }
};

}  // namespace

StatusOr<RetrievalEvaluator> RetrievalEvaluator::Create(absl::Span<const int64_t> ids,
                                                        RowMatrix<float> corpus, Options options) {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n == 0) return absl::InvalidArgumentError("retrieval corpus is empty");
  if (corpus.rows() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("retrieval corpus has ", corpus.rows(), " rows but ", n, " ids"));
  }
  const int64_t cols = corpus.cols();
  if (cols < 1) {
    return absl::InvalidArgumentError(
        "retrieval corpus has no columns; rows must be [w | b] (d + 1 >= 1 columns)");
  }
  if (options.block_rows < 1 || options.user_block < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("retrieval block sizes must be >= 1, got block_rows = ", options.block_rows,
                     ", user_block = ", options.user_block));
  }
  RetrievalEvaluator e;
  e.num_items_ = n;
  e.options_ = options;
  e.row_of_.reserve(n);  // id -> corpus row for now
  for (int64_t i = 0; i < n; ++i) {
    auto [it, inserted] = e.row_of_.try_emplace(ids[i], i);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          "duplicate video id ", ids[i], " in retrieval corpus rows ", it->second, " and ", i));
    }
  }
  if (!AllFinite(corpus.data(), corpus.size())) {
    for (int64_t i = 0; i < n; ++i) {
      if (!AllFinite(corpus.row(i).data(), cols)) {
        return absl::InvalidArgumentError(absl::StrCat("retrieval corpus row ", i, " (video id ",
                                                       ids[i], ") has a non-finite value"));
      }
    }
  }
  corpus = (corpus.array() == 0.0f).select(0.0f, corpus);  // -0 -> +0

  // Merge equal rows in place: distinct rows move up to rows [0, m), which
  // the index points into; rows >= m are never referenced again.
  std::vector<int64_t> distinct_of(n);  // corpus row -> distinct row
  absl::flat_hash_map<const float*, int64_t, RowHash, RowEq> index(static_cast<size_t>(n),
                                                                   RowHash{cols}, RowEq{cols});
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    auto it = index.find(corpus.row(i).data());
    if (it != index.end()) {
      distinct_of[i] = it->second;
      ++e.multiplicity_[it->second];
      continue;
    }
    if (m != i) corpus.row(m) = corpus.row(i);
    index.emplace(corpus.row(m).data(), m);
    distinct_of[i] = m;
    e.multiplicity_.push_back(1);
    ++m;
  }
  index.clear();
  if (m < n) corpus.conservativeResize(m, cols);
  e.rows_ = std::move(corpus);
  for (auto& [id, row] : e.row_of_) row = distinct_of[row];
  return e;
}

Status RetrievalEvaluator::Ranks(const RowMatrix<float>& users, absl::Span<const int64_t> labels,
                                 const std::vector<std::vector<int64_t>>* exclude,
                                 std::vector<double>* ranks) const {
  const int64_t b = users.rows();
  if (users.cols() != dim()) {
    return absl::InvalidArgumentError(absl::StrCat("user vectors have ", users.cols(),
                                                   " columns; the corpus expects d = ", dim()));
  }
  if (static_cast<int64_t>(labels.size()) != b) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", labels.size(), " labels for ", b, " user vectors"));
  }
  if (exclude != nullptr && static_cast<int64_t>(exclude->size()) != b) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", exclude->size(), " exclusion lists for ", b, " user vectors"));
  }
  if (!AllFinite(users.data(), users.size())) {
    for (int64_t j = 0; j < b; ++j) {
      if (!AllFinite(users.row(j).data(), users.cols())) {
        return absl::InvalidArgumentError(
            absl::StrCat("user vector ", j, " (label ", labels[j], ") has a non-finite value"));
      }
    }
  }
  ranks->assign(b, kMissingRank);

  // Only users whose label is in the corpus are scored. Each gets its label's
  // score as the threshold, the ties with the label's own row (its equal
  // items, less excluded ones), and a sorted "take back" list of (distinct
  // row, items): the block pass counts every item, then takes back the label
  // row entirely and each excluded item, judged by the same GEMM output.
  const int64_t cols = rows_.cols();
  std::vector<int64_t> user_of;  // scored user -> row of `users`
  std::vector<int64_t> label_row;
  for (int64_t j = 0; j < b; ++j) {
    auto it = row_of_.find(labels[j]);
    if (it == row_of_.end()) continue;
    user_of.push_back(j);
    label_row.push_back(it->second);
  }
  const int64_t m = static_cast<int64_t>(user_of.size());
  if (m == 0) return Status();

  RowMatrix<float> augmented(m, cols);  // [u | 1]: the bias rides in the product
  std::vector<float> threshold(m);
  std::vector<int64_t> label_ties(m);
  std::vector<size_t> back_begin(m + 1, 0);
  std::vector<std::pair<int64_t, int64_t>> back;  // (distinct row, items)
  std::vector<int64_t> scratch;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t label = labels[user_of[i]];
    const int64_t lr = label_row[i];
    augmented.row(i).head(cols - 1) = users.row(user_of[i]);
    augmented(i, cols - 1) = 1.0f;
    threshold[i] = augmented.row(i).dot(rows_.row(lr));
    back_begin[i] = back.size();
    back.emplace_back(lr, multiplicity_[lr]);
    int64_t excluded_twins = 0;  // excluded items sharing the label's row
    if (exclude != nullptr) {
      scratch.clear();
      for (int64_t id : (*exclude)[user_of[i]]) {
        if (id != label && row_of_.contains(id)) scratch.push_back(id);
      }
      std::sort(scratch.begin(), scratch.end());
      scratch.erase(std::unique(scratch.begin(), scratch.end()), scratch.end());
      for (int64_t& id : scratch) id = row_of_.at(id);  // now distinct rows
      std::sort(scratch.begin(), scratch.end());
      for (size_t k = 0; k < scratch.size();) {
        size_t end = k;
        while (end < scratch.size() && scratch[end] == scratch[k]) ++end;
        const int64_t items = static_cast<int64_t>(end - k);
        if (scratch[k] == lr) {
          excluded_twins = items;
        } else {
          back.emplace_back(scratch[k], items);
        }
        k = end;
      }
      std::sort(back.begin() + static_cast<std::ptrdiff_t>(back_begin[i]), back.end());
    }
    label_ties[i] = multiplicity_[lr] - 1 - excluded_twins;
  }
  back_begin[m] = back.size();

  std::vector<int64_t> above(m, 0), tied(m, 0);
  std::vector<size_t> next_back(back_begin.begin(), back_begin.end() - 1);
  RowMatrix<float> scores;
  const int64_t n = rows_.rows();
  for (int64_t start = 0; start < n; start += options_.block_rows) {
    const int64_t rows = std::min(options_.block_rows, n - start);
    const auto block = rows_.middleRows(start, rows);
    const int64_t* items = multiplicity_.data() + start;
    for (int64_t u0 = 0; u0 < m; u0 += options_.user_block) {
      const int64_t ub = std::min(options_.user_block, m - u0);
      scores.resize(ub, rows);
      scores.noalias() = augmented.middleRows(u0, ub) * block.transpose();
      for (int64_t k = 0; k < ub; ++k) {
        const int64_t i = u0 + k;
        const float t = threshold[i];
        const float* s = scores.row(k).data();  // row-major: contiguous
        int64_t gt = 0, eq = 0;
        for (int64_t r = 0; r < rows; ++r) {
          gt += s[r] > t ? items[r] : 0;
          eq += s[r] == t ? items[r] : 0;
        }
        size_t& next = next_back[i];
        for (; next < back_begin[i + 1] && back[next].first < start + rows; ++next) {
          const float v = s[back[next].first - start];
          gt -= v > t ? back[next].second : 0;
          eq -= v == t ? back[next].second : 0;
        }
        above[i] += gt;
        tied[i] += eq;
      }
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    (*ranks)[user_of[i]] =
        1.0 + static_cast<double>(above[i]) + 0.5 * static_cast<double>(tied[i] + label_ties[i]);
  }
  return Status();
}

Status RetrievalEvaluator::Add(const RowMatrix<float>& users, absl::Span<const int64_t> labels,
                               const std::vector<std::vector<int64_t>>* exclude) {
  std::vector<double> ranks;
  VREC_RETURN_IF_ERROR(Ranks(users, labels, exclude, &ranks));
  counts_.AddRanks(ranks);
  return Status();
}

double Auc(absl::Span<const double> scores, absl::Span<const uint8_t> labels) {
  CHECK_EQ(scores.size(), labels.size()) << "Auc needs one label per score";
  std::vector<std::pair<double, bool>> sorted(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    const double s = std::isnan(scores[i]) ? -std::numeric_limits<double>::infinity() : scores[i];
    sorted[i] = {s, labels[i] != 0};
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // Walk groups of equal scores upwards: each positive beats every negative
  // below its group and ties with the negatives inside it.
  double wins = 0;
  double negatives_below = 0;
  double positives = 0;
  for (size_t i = 0; i < sorted.size();) {
    size_t end = i;
    double pos = 0, neg = 0;
    for (; end < sorted.size() && sorted[end].first == sorted[i].first; ++end) {
      (sorted[end].second ? pos : neg) += 1;
    }
    wins += pos * negatives_below + 0.5 * pos * neg;
    negatives_below += neg;
    positives += pos;
    i = end;
  }
  const double negatives = negatives_below;
  if (positives == 0 || negatives == 0) return 0.5;
  return wins / (positives * negatives);
}

StatusOr<RetrievalCounts> PopularityCounts(const absl::flat_hash_map<int64_t, int64_t>& counts,
                                           absl::Span<const int64_t> corpus_ids,
                                           absl::Span<const int64_t> labels,
                                           const std::vector<std::vector<int64_t>>* exclude) {
  if (corpus_ids.empty()) return absl::InvalidArgumentError("popularity corpus is empty");
  if (exclude != nullptr && exclude->size() != labels.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("got ", exclude->size(), " exclusion lists for ", labels.size(), " labels"));
  }
  for (const auto& [id, count] : counts) {
    if (count < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative popularity count ", count, " for video id ", id));
    }
  }
  absl::flat_hash_map<int64_t, int64_t> count_of;  // corpus id -> count
  count_of.reserve(corpus_ids.size());
  std::vector<int64_t> sorted;  // ascending
  sorted.reserve(corpus_ids.size());
  for (size_t i = 0; i < corpus_ids.size(); ++i) {
    auto it = counts.find(corpus_ids[i]);
    const int64_t c = it == counts.end() ? 0 : it->second;
    if (!count_of.try_emplace(corpus_ids[i], c).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate video id ", corpus_ids[i],
                                                     " in popularity corpus (position ", i, ")"));
    }
    sorted.push_back(c);
  }
  std::sort(sorted.begin(), sorted.end());

  RetrievalCounts result;
  std::vector<int64_t> skipped;
  for (size_t j = 0; j < labels.size(); ++j) {
    auto it = count_of.find(labels[j]);
    if (it == count_of.end()) {
      result.AddRank(kMissingRank);
      continue;
    }
    const int64_t c = it->second;
    const auto lo = std::lower_bound(sorted.begin(), sorted.end(), c);
    const auto hi = std::upper_bound(lo, sorted.end(), c);
    int64_t above = sorted.end() - hi;
    int64_t tied = (hi - lo) - 1;  // not the label itself
    if (exclude != nullptr) {
      skipped.clear();
      for (int64_t id : (*exclude)[j]) {
        if (id != labels[j] && count_of.contains(id)) skipped.push_back(id);
      }
      std::sort(skipped.begin(), skipped.end());
      skipped.erase(std::unique(skipped.begin(), skipped.end()), skipped.end());
      for (int64_t id : skipped) {
        const int64_t e = count_of.at(id);
        above -= e > c;
        tied -= e == c;
      }
    }
    result.AddRank(1.0 + static_cast<double>(above) + 0.5 * static_cast<double>(tied));
  }
  return result;
}

StatusOr<RetrievalMetrics> PopularityMetrics(const absl::flat_hash_map<int64_t, int64_t>& counts,
                                             absl::Span<const int64_t> corpus_ids,
                                             absl::Span<const int64_t> labels,
                                             const std::vector<std::vector<int64_t>>* exclude) {
  VREC_ASSIGN_OR_RETURN(RetrievalCounts result,
                        PopularityCounts(counts, corpus_ids, labels, exclude));
  return result.Metrics();
}

}  // namespace vrec::models
