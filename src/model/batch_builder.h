// Helpers that turn per-example id lists into the model's batch form: the
// batch's distinct ids per table (to pull from the parameter server) and CSR
// index lists into them; and the output-table candidates of the sampled
// softmax (the union of labels and shared negatives).
//
// Thread safety: IdDeduplicator is a value type; use one per thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "common/random.h"
#include "model/tensor.h"

namespace vrec::model {

// Assigns dense row indices 0, 1, ... to ids in order of first appearance.
// An open-addressing table (linear probing, at most half full) that keeps
// its arrays across Clear(): a training step dedupes ~50k ids a table, and
// a node-based map allocated a node for each (a third of the worker's batch
// building went to malloc). Clear() is O(1): a slot is live only if it
// carries the current generation.
class IdDeduplicator {
 public:
  void Clear() {
    ids_.clear();
    if (++generation_ == 0) {  // wrapped: every stamp is stale again
      std::fill(stamps_.begin(), stamps_.end(), 0);
      generation_ = 1;
    }
  }
  // The row of `id`, allocating the next one on first sight.
  int32_t Add(int64_t id) {
    if (2 * (ids_.size() + 1) > stamps_.size()) Grow();
    const size_t mask = stamps_.size() - 1;
    for (size_t i = Mix64(static_cast<uint64_t>(id)) & mask;; i = (i + 1) & mask) {
      if (stamps_[i] != generation_) {
        stamps_[i] = generation_;
        keys_[i] = id;
        rows_[i] = static_cast<int32_t>(ids_.size());
        ids_.push_back(id);
        return rows_[i];
      }
      if (keys_[i] == id) return rows_[i];
    }
  }
  // Appends one example's list of ids to *lists as row indices.
  void AddList(absl::Span<const int64_t> ids, IndexLists* lists) {
    for (int64_t id : ids) lists->indices.push_back(Add(id));
    lists->offsets.push_back(static_cast<int32_t>(lists->indices.size()));
  }
  // Distinct ids; ids()[row] is the id of that row.
  const std::vector<int64_t>& ids() const { return ids_; }

 private:
  // Doubles the table (at least 64 slots) and re-inserts the live ids.
  void Grow();

  std::vector<int64_t> ids_;
  std::vector<uint32_t> stamps_;  // generation_ = live slot; power-of-two size
  std::vector<int64_t> keys_;
  std::vector<int32_t> rows_;
  uint32_t generation_ = 1;
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
