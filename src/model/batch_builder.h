// Helpers that turn per-example id lists into the model's batch form: the
// batch's distinct ids per table (to pull from the parameter server) and CSR
// index lists into them; and the output-table candidates of the sampled
// softmax (the union of labels and shared negatives).
//
// Thread safety: IdDeduplicator is a value type; use one per thread.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "absl/types/span.h"
#include "model/tensor.h"

namespace vrec::model {

// Assigns dense row indices 0, 1, ... to ids in order of first appearance.
class IdDeduplicator {
 public:
  void Clear() {
    ids_.clear();
    index_.clear();
  }
  // The row of `id`, allocating the next one on first sight.
  int32_t Add(int64_t id) {
    auto [it, inserted] = index_.try_emplace(id, static_cast<int32_t>(ids_.size()));
    if (inserted) ids_.push_back(id);
    return it->second;
  }
  // Appends one example's list of ids to *lists as row indices.
  void AddList(absl::Span<const int64_t> ids, IndexLists* lists) {
    for (int64_t id : ids) lists->indices.push_back(Add(id));
    lists->offsets.push_back(static_cast<int32_t>(lists->indices.size()));
  }
  // Distinct ids; ids()[row] is the id of that row.
  const std::vector<int64_t>& ids() const { return ids_; }

 private:
  std::vector<int64_t> ids_;
  std::unordered_map<int64_t, int32_t> index_;
};

// The output rows of a sampled-softmax batch.
struct OutputCandidates {
  std::vector<int64_t> ids;            // distinct ids of labels and negatives
  std::vector<int32_t> label_rows;     // per example: row of its label
  std::vector<int32_t> negative_rows;  // per negative: its row (duplicates share one)
};

OutputCandidates BuildOutputCandidates(absl::Span<const int64_t> labels,
                                       absl::Span<const int64_t> negatives);

}  // namespace vrec::model
