// Space-Saving heavy-hitters sketch (Metwally, Agrawal, El Abbadi 2005).
//
// Keeps at most `capacity` (key, count, error) counters. Any key whose true
// count exceeds total/capacity is guaranteed to be present, and for every
// reported key: count - error <= true count <= count.
//
// Thread safety: thread-compatible; callers serialise access (the store
// keeps one per partition under the partition mutex).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace vrec::ps {

struct HeavyHitter {
  uint64_t key = 0;
  uint64_t count = 0;  // upper bound on the true count
  uint64_t error = 0;  // count - error is a lower bound
};

class SpaceSaving {
 public:
  explicit SpaceSaving(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
    // Size stays <= 25/32 of the table's capacity, so erase+insert cycles
    // rehash in place and the index never reallocates (MemoryBytes is fixed).
    index_.reserve(capacity_ * 32 / 25 + 1);
    counters_.reserve(capacity_);
  }

  void Offer(uint64_t key, uint64_t weight = 1);

  // Up to n counters, largest count first (ties by key).
  std::vector<HeavyHitter> Top(size_t n) const;

  uint64_t total() const { return total_; }
  size_t capacity() const { return capacity_; }
  // Bytes held, for memory accounting.
  size_t MemoryBytes() const {
    return counters_.capacity() * sizeof(HeavyHitter) +
           index_.capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
  }

 private:
  size_t capacity_;
  uint64_t total_ = 0;
  std::vector<HeavyHitter> counters_;
  absl::flat_hash_map<uint64_t, uint32_t> index_;  // key -> position in counters_
};

// Merges per-partition tops (disjoint key sets) into one list of at most n.
std::vector<HeavyHitter> MergeTop(std::vector<HeavyHitter> all, size_t n);

}  // namespace vrec::ps
